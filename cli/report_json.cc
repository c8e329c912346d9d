#include "cli/report_json.h"

#include <string>
#include <utility>

namespace pipecast::cli {
namespace {

const Json& EmptyArray() {
  static const Json kEmpty = Json::array();
  return kEmpty;
}

const Json& EmptyObject() {
  static const Json kEmpty = Json::object();
  return kEmpty;
}

}  // namespace

std::string JsonPath(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string JsonPath(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string JsonKind(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "an integer";
    case Json::value_t::number_float:
      return "a number";
    default:
      return "something else";
  }
}

FieldReader::FieldReader(std::string file, std::string fix)
    : file_(std::move(file)), fix_(std::move(fix)) {}

void FieldReader::Fail(const std::string& path, const std::string& problem) {
  if (!status_.ok()) return;
  status_ =
      InvalidArgument(file_ + ": " + (path.empty() ? "" : path + ": ") + problem + "; " + fix_);
}

const Json* FieldReader::Find(const Json& object, std::string_view key, const std::string& path) {
  if (!object.is_object()) {
    Fail(path, "expected an object, got " + JsonKind(object));
    return nullptr;
  }
  const auto it = object.find(key);
  if (it == object.end()) {
    Fail(JsonPath(path, key), "missing");
    return nullptr;
  }
  return &*it;
}

int64_t FieldReader::Int(const Json& object, std::string_view key, const std::string& path) {
  const Json* v = Find(object, key, path);
  if (v == nullptr) return 0;
  if (v->is_number_integer()) return v->get<int64_t>();
  Fail(JsonPath(path, key), "expected an integer, got " + JsonKind(*v));
  return 0;
}

double FieldReader::Number(const Json& object, std::string_view key, const std::string& path) {
  const Json* v = Find(object, key, path);
  if (v == nullptr) return 0;
  if (v->is_number()) return v->get<double>();
  Fail(JsonPath(path, key), "expected a number, got " + JsonKind(*v));
  return 0;
}

std::string FieldReader::String(const Json& object, std::string_view key, const std::string& path) {
  const Json* v = Find(object, key, path);
  if (v == nullptr) return "";
  if (v->is_string()) return v->get<std::string>();
  Fail(JsonPath(path, key), "expected a string, got " + JsonKind(*v));
  return "";
}

bool FieldReader::Bool(const Json& object, std::string_view key, const std::string& path) {
  const Json* v = Find(object, key, path);
  if (v == nullptr) return false;
  if (v->is_boolean()) return v->get<bool>();
  Fail(JsonPath(path, key), "expected true or false, got " + JsonKind(*v));
  return false;
}

const Json& FieldReader::Array(const Json& object, std::string_view key, const std::string& path) {
  const Json* v = Find(object, key, path);
  if (v == nullptr) return EmptyArray();
  if (v->is_array()) return *v;
  Fail(JsonPath(path, key), "expected an array, got " + JsonKind(*v));
  return EmptyArray();
}

const Json& FieldReader::Object(const Json& object, std::string_view key, const std::string& path) {
  const Json* v = Find(object, key, path);
  if (v == nullptr) return EmptyObject();
  if (v->is_object()) return *v;
  Fail(JsonPath(path, key), "expected an object, got " + JsonKind(*v));
  return EmptyObject();
}

std::optional<double> FieldReader::OptionalNumber(const Json& object, std::string_view key,
                                                  const std::string& path) {
  if (!object.is_object() || !object.contains(key) || object.at(key).is_null()) return {};
  return Number(object, key, path);
}

std::optional<int64_t> FieldReader::OptionalInt(const Json& object, std::string_view key,
                                                const std::string& path) {
  if (!object.is_object() || !object.contains(key) || object.at(key).is_null()) return {};
  return Int(object, key, path);
}

std::optional<std::string> FieldReader::OptionalString(const Json& object, std::string_view key,
                                                       const std::string& path) {
  if (!object.is_object() || !object.contains(key) || object.at(key).is_null()) return {};
  return String(object, key, path);
}

}  // namespace pipecast::cli
