#include "common/format_json.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "common/format_text.h"
#include "common/generators.h"
#include "common/schedule_source.h"
#include "common/validate.h"

namespace pipecast::ir {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kFormatName = "pipecast-schedule";
constexpr int64_t kFormatVersion = 1;
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

const std::vector<std::string_view>& TopLevelKeys() {
  static const std::vector<std::string_view> keys = {
      "format",          "version",           "method",
      "params",          "devices",           "stages",
      "placement",       "microbatches",      "minibatches",
      "microbatch_size", "max_live_versions", "programs",
      "replicas",        "microbatch_replica"};
  return keys;
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Reads a Json document into a Program, checking types, ranges and sizes as it goes.
class JsonReader {
 public:
  explicit JsonReader(std::string_view filename) : filename_(filename) {}

  Result<Program> Read(const Json& root) {
    if (!root.is_object()) return Error("(top level)", "expected a JSON object");
    for (const auto& [key, value] : root.items()) {
      const auto& keys = TopLevelKeys();
      if (std::find(keys.begin(), keys.end(), key) == keys.end())
        return Error(key, "unknown key" + DidYouMeanSuffix(key, keys));
    }
    const Json* format = Find(root, "format");
    if (format == nullptr) return Error("format", "missing (expected \"pipecast-schedule\")");
    if (!format->is_string() || format->get<std::string>() != kFormatName)
      return Error("format", "expected \"pipecast-schedule\", got " + format->dump());
    const Json* version = Find(root, "version");
    if (version == nullptr) return Error("version", "missing (expected 1)");
    if (!version->is_number_integer() || version->get<int64_t>() != kFormatVersion)
      return Error("version",
                   "unsupported version " + version->dump() + " (this pipecast reads 1)");

    Program p;
    if (const Json* method = Find(root, "method")) {
      if (!method->is_string()) return Error("method", "expected a string");
      p.method = method->get<std::string>();
    }
    if (const Json* params = Find(root, "params")) {
      if (!params->is_object()) return Error("params", "expected an object");
      for (const auto& [key, value] : params->items()) {
        if (value.is_string()) {
          p.params[key] = value.get<std::string>();
        } else if (value.is_number() || value.is_boolean()) {
          p.params[key] = value.dump();
        } else {
          return Error("params." + key, "expected a string, number or boolean");
        }
      }
    }
    auto options = MethodOptionsFor(p.method, p.params);
    if (!options.ok()) return Error("params", options.status().message());
    p.options = *options;
    PIPECAST_RETURN_IF_ERROR(ReadInt(root, "devices", true, 1, kMaxCount, p.num_devices));
    p.num_stages = p.num_devices;
    PIPECAST_RETURN_IF_ERROR(ReadInt(root, "stages", false, 1, kMaxCount, p.num_stages));
    PIPECAST_RETURN_IF_ERROR(ReadInt(root, "microbatches", true, 1, kMaxCount, p.microbatches));
    PIPECAST_RETURN_IF_ERROR(ReadInt(root, "minibatches", false, 1, kMaxCount, p.minibatches));
    PIPECAST_RETURN_IF_ERROR(
        ReadInt(root, "microbatch_size", false, 1, kMaxMicrobatchSize, p.microbatch_size));
    const int64_t total = static_cast<int64_t>(p.microbatches) * p.minibatches;
    if (total > kMaxCount || total * p.num_stages > kMaxCells) {
      return Error("microbatches", "schedule too large: " + std::to_string(p.num_stages) +
                                       " stages x " + std::to_string(total) +
                                       " microbatches exceeds the limits");
    }
    PIPECAST_RETURN_IF_ERROR(ReadInt(root, "replicas", false, 1, kMaxCount, p.replicas));
    if (static_cast<int64_t>(p.replicas) * p.num_stages > kMaxCount)
      return Error("replicas", "replicas x stages exceeds " + std::to_string(kMaxCount));
    p.placement = RoundRobinPlacement(p.num_stages, p.num_devices);
    if (const Json* placement = Find(root, "placement")) {
      PIPECAST_RETURN_IF_ERROR(ReadIntList(*placement, "placement",
                                           p.num_stages * p.replicas, 0,
                                           p.num_devices - 1, p.placement));
    } else if (p.replicas > 1) {
      return Error("placement", "required with replicas > 1: replicas x stages devices");
    }
    if (const Json* mr = Find(root, "microbatch_replica")) {
      if (!mr->is_array() || !mr->empty()) {
        PIPECAST_RETURN_IF_ERROR(ReadIntList(*mr, "microbatch_replica", p.microbatches, 0,
                                             p.replicas - 1, p.microbatch_replica));
      }
    }
    if (const Json* live = Find(root, "max_live_versions")) {
      if (!live->is_array() || !live->empty()) {
        PIPECAST_RETURN_IF_ERROR(ReadIntList(*live, "max_live_versions", p.num_devices, 1,
                                             kMaxCount, p.max_live_versions));
      }
    }
    const Json* programs = Find(root, "programs");
    if (programs == nullptr) return Error("programs", "missing");
    if (!programs->is_array() || programs->size() != static_cast<size_t>(p.num_devices)) {
      return Error("programs", "expected an array of " + std::to_string(p.num_devices) +
                                   " device programs (one per device)");
    }
    p.devices.assign(static_cast<size_t>(p.num_devices), {});
    const std::vector<int32_t> implicit = ImplicitStages(p);
    for (int32_t d = 0; d < p.num_devices; ++d) {
      const std::string path = Index("programs", d);
      const Json& tokens = (*programs)[d];
      if (!tokens.is_array()) return Error(path, "expected an array of action tokens");
      const TokenContext context{p.num_stages, p.total_microbatches(), implicit[d]};
      std::vector<Action>& program = p.devices[d];
      program.reserve(tokens.size());
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (!tokens[i].is_string()) return Error(Index(path, i), "expected a token string");
        const std::string& token = tokens[i].get_ref<const std::string&>();
        Result<Action> action = ParseActionToken(token, context);
        if (!action.ok()) {
          return Error(Index(path, i), "token '" + token + "': " + action.status().message());
        }
        program.push_back(*action);
      }
      ResolveSplitBackwards(program);
    }
    return p;
  }

 private:
  Status Error(const std::string& path, const std::string& message) const {
    return ParseError(std::string(filename_) + ": " + path + ": " + message);
  }

  static const Json* Find(const Json& object, const char* key) {
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
  }

  Status ReadNumber(const Json& value, const std::string& path, int64_t lo, int64_t hi,
                    int32_t& out) const {
    bool in_range = false;
    if (value.is_number_unsigned()) {
      const uint64_t v = value.get<uint64_t>();
      in_range = lo <= 0 ? v <= static_cast<uint64_t>(hi)
                         : v >= static_cast<uint64_t>(lo) && v <= static_cast<uint64_t>(hi);
      if (in_range) out = static_cast<int32_t>(v);
    } else if (value.is_number_integer()) {
      const int64_t v = value.get<int64_t>();
      in_range = v >= lo && v <= hi;
      if (in_range) out = static_cast<int32_t>(v);
    }
    if (!in_range) {
      return Error(path, "expected an integer in [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "], got " + value.dump());
    }
    return Status::Ok();
  }

  Status ReadInt(const Json& root, const char* key, bool required, int64_t lo, int64_t hi,
                 int32_t& out) const {
    const Json* value = Find(root, key);
    if (value == nullptr) return required ? Error(key, "missing") : Status::Ok();
    return ReadNumber(*value, key, lo, hi, out);
  }

  Status ReadIntList(const Json& value, const std::string& path, int32_t count, int64_t lo,
                     int64_t hi, std::vector<int32_t>& out) const {
    if (!value.is_array() || value.size() != static_cast<size_t>(count)) {
      return Error(path, "expected an array of " + std::to_string(count) + " integers");
    }
    out.resize(static_cast<size_t>(count));
    for (int32_t i = 0; i < count; ++i)
      PIPECAST_RETURN_IF_ERROR(ReadNumber(value[i], Index(path, i), lo, hi, out[i]));
    return Status::Ok();
  }

  std::string_view filename_;
};

std::string IntList(const std::vector<int32_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

}  // namespace

std::string ProgramToJson(const Program& p) {
  // Hand-assembled so each device program stays on one line; nlohmann escapes the strings.
  Json params = Json::object();
  for (const auto& [key, value] : p.params) params[key] = value;
  std::string out = "{\n";
  out += "  \"format\": " + Json(std::string(kFormatName)).dump() + ",\n";
  out += "  \"version\": " + std::to_string(kFormatVersion) + ",\n";
  out += "  \"method\": " + Json(p.method).dump(-1, ' ', false, Json::error_handler_t::replace) +
         ",\n";
  out += "  \"params\": " + params.dump(-1, ' ', false, Json::error_handler_t::replace) + ",\n";
  out += "  \"devices\": " + std::to_string(p.num_devices) + ",\n";
  out += "  \"stages\": " + std::to_string(p.num_stages) + ",\n";
  if (p.replicas != 1) out += "  \"replicas\": " + std::to_string(p.replicas) + ",\n";
  out += "  \"placement\": " + IntList(p.placement) + ",\n";
  if (!p.microbatch_replica.empty())
    out += "  \"microbatch_replica\": " + IntList(p.microbatch_replica) + ",\n";
  out += "  \"microbatches\": " + std::to_string(p.microbatches) + ",\n";
  out += "  \"minibatches\": " + std::to_string(p.minibatches) + ",\n";
  out += "  \"microbatch_size\": " + std::to_string(p.microbatch_size) + ",\n";
  out += "  \"max_live_versions\": " + IntList(p.max_live_versions) + ",\n";
  out += "  \"programs\": [";
  const std::vector<int32_t> implicit = ImplicitStages(p);
  for (size_t d = 0; d < p.devices.size(); ++d) {
    out += d ? ",\n    [" : "\n    [";
    const std::vector<std::string> tokens = DeviceTokens(p.devices[d], implicit[d], true);
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? ", \"" : "\"") + tokens[i] + "\"";
    out += "]";
  }
  out += p.devices.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

Result<Program> ParseProgramJson(std::string_view json, std::string_view filename,
                                 ScheduleSource* source) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {
    return ParseError(std::string(filename) + ": invalid JSON: " + e.what());
  }
  Result<Program> p = JsonReader(filename).Read(root);
  if (p.ok() && source != nullptr) {
    source->format = ScheduleSource::Format::kJson;
    source->file = std::string(filename);
    for (const auto& [key, value] : root.items()) source->keys[key] = {};
  }
  return p;
}

}  // namespace pipecast::ir
