// Reading the JSON files `pipecast report` takes, field by field, without exceptions: each
// accessor returns the value at a key, or a default after recording the first problem, which
// names the file and the key's full path (`results[2].stages[0].busy_s`) and what was expected.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pipecast::cli {

using Json = nlohmann::json;

class FieldReader {
 public:
  // `file` is named in messages; `fix` ends each message (how to get a good file).
  FieldReader(std::string file, std::string fix);

  // Required values of `object`, whose own path is `path` ("" for the root).
  int64_t Int(const Json& object, std::string_view key, const std::string& path);
  double Number(const Json& object, std::string_view key, const std::string& path);
  std::string String(const Json& object, std::string_view key, const std::string& path);
  bool Bool(const Json& object, std::string_view key, const std::string& path);
  const Json& Array(const Json& object, std::string_view key, const std::string& path);
  const Json& Object(const Json& object, std::string_view key, const std::string& path);
  // Optional values: absent or null gives nullopt; present with another type is a problem.
  std::optional<double> OptionalNumber(const Json& object, std::string_view key,
                                       const std::string& path);
  std::optional<int64_t> OptionalInt(const Json& object, std::string_view key,
                                     const std::string& path);
  std::optional<std::string> OptionalString(const Json& object, std::string_view key,
                                            const std::string& path);

  // Records a problem at `path` (the first one is kept).
  void Fail(const std::string& path, const std::string& problem);
  const Status& status() const { return status_; }
  bool ok() const { return status_.ok(); }
  const std::string& file() const { return file_; }

 private:
  // The value at `key`, or null after recording that it is missing or `object` is no object.
  const Json* Find(const Json& object, std::string_view key, const std::string& path);

  std::string file_;
  std::string fix_;
  Status status_;
};

// "results[2]" from "results" and 2; "stages" from "" and "stages".
std::string JsonPath(const std::string& path, std::string_view key);
std::string JsonPath(const std::string& path, size_t index);

// What a JSON value is, for messages: "a string", "an integer", "null", ...
std::string JsonKind(const Json& value);

}  // namespace pipecast::cli
