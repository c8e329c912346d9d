#include "common/scenario.h"

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/input_file.h"
#include "common/limits.h"
#include "common/units.h"
#include "common/yaml_document.h"

namespace pipecast::ir {
namespace {

using YAML::Node;

// Bounds on integers a scenario may give. They are far above any real pipeline and exist so that
// absurd values fail with a message instead of exhausting memory later.
constexpr int64_t kMaxStages = kMaxCount;
constexpr int64_t kMaxMicrobatches = kMaxCount;
constexpr int64_t kMaxModelDimension = 1 << 24;  // hidden, heads, sequence
// Layers are partitioned by an O(stages * layers^2) dynamic program (common/partition.h); real
// models have at most a few hundred blocks.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxVocabulary = 1'000'000'000;
// Text of a value shown in a message is cut here, so fuzzed input keeps messages short.
constexpr size_t kMaxShown = 60;

std::string Shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxShown)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (text.size() > kMaxShown) out += "...";
  return out;
}

std::string DescribeNode(const Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", Shown(node.Scalar()));
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// A map's entries by key, with the key nodes kept for their positions.
struct Entry {
  Node key;
  Node value;
};
using Fields = std::map<std::string, Entry, std::less<>>;

Result<int64_t> ParseInteger(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) {
    return InvalidArgument(fmt::format("expected a whole number, got '{}'", Shown(text)));
  }
  return value;
}

Result<double> ParseNumber(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty() || !std::isfinite(value)) {
    return InvalidArgument(fmt::format("expected a number, got '{}'", Shown(text)));
  }
  return value;
}

// The parser of one file. Methods return the first error found; positions come from yaml-cpp
// marks (0-based, printed 1-based).
class ScenarioParser {
 public:
  explicit ScenarioParser(std::string_view file) : file_(file.empty() ? "<scenario>" : file) {}

  Result<Scenario> Parse(std::string_view text);

 private:
  std::string Where(const YAML::Mark& mark) const { return internal::WhereIs(file_, mark); }
  Status Error(const Node& at, std::string_view message) const {
    return InvalidArgument(fmt::format("{}: {}", Where(at.Mark()), message));
  }

  // Checks that `node` (the value of `path`, "" for the top level) is a map whose keys are
  // unique plain names from `allowed`, and returns its entries.
  Result<Fields> ReadMap(const Node& node, std::string_view path,
                         std::initializer_list<std::string_view> allowed) const;
  Status Missing(const Node& map, std::string_view path, std::string_view key,
                 std::string_view hint = "") const {
    return Error(map, fmt::format("{} is required{}", Join(path, key), hint));
  }
  static std::string Join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }

  // The scalar text of a value, or an error saying what `path` expected (`what`).
  Result<std::string> Scalar(const Node& value, std::string_view path, std::string_view what) const;
  // Parses a scalar with `parse` (a units parser or number parser); errors name `path`.
  template <typename T, typename ParseFn>
  Result<T> ReadValue(const Node& value, std::string_view path, std::string_view what,
                      ParseFn parse) const;
  Result<int32_t> ReadCount(const Node& value, std::string_view path, int64_t min,
                            int64_t max) const;
  Result<bool> ReadBool(const Node& value, std::string_view path) const;
  // The index of the value among `choices`, or an error listing them ("did you mean").
  Result<int> ReadChoice(const Node& value, std::string_view path,
                         std::initializer_list<std::string_view> choices) const;

  // A per-stage cost: a scalar (broadcast) or a list of exactly `stages` values.
  template <typename ParseFn>
  Status ReadPerStage(const Fields& fields, std::string_view path, std::string_view key,
                      std::string_view what, ParseFn parse, std::vector<int64_t>* out) const;

  Status ParsePipeline(const Node& node, PipelineSpec* out) const;
  Status ParseCosts(const Node& node, ExplicitCosts* out) const;
  Status ParseNetwork(const Node& node, Scenario* out) const;
  // The collective link's latency and bandwidth from `f`, keys named `prefix` + what they set
  // ("network.collective_" + latency / bandwidth, or "cluster.collective_link." + ...).
  Status ParseCollectiveLink(const Fields& f, const std::string& prefix, Scenario* out) const;
  Status ParseDevice(const Node& node, Scenario* out) const;
  // Reads whichever of speed, peak_flops, efficiency, memory and memory_bandwidth `f` has into
  // `out` (the keys' paths are `path`.KEY); the others are left as they are.
  Status ReadHardware(const Fields& f, std::string_view path, DeviceHardware* out) const;
  // `devices:` / `cluster.devices:`: entries of `count` equal devices (default 1), each key
  // left out taken from `defaults`; the counts must add up to pipeline.stages.
  Status ParseDeviceList(const Node& node, std::string_view path, const DeviceHardware& defaults,
                         Scenario* out) const;
  Status ParseModel(const Node& node, TransformerSpec* out) const;
  Status ParseCluster(const Node& node, Scenario* out) const;
  Status ParseMethods(const Node& node, std::vector<MethodSpec>* out) const;
  Status ParseBubbleWork(const Node& node, std::vector<BubbleWorkItem>* out) const;

  std::string file_;
  int32_t stages_ = 0;  // pipeline.stages, once parsed
  int32_t copies_ = 1;  // pipeline.data_parallel, once parsed
};

Result<Fields> ScenarioParser::ReadMap(const Node& node, std::string_view path,
                                       std::initializer_list<std::string_view> allowed) const {
  if (!node.IsMap()) {
    if (path.empty()) {
      return Error(node, fmt::format("a scenario must be a map of keys (pipeline:, costs: or "
                                     "model:, methods:, ...), got {}",
                                     DescribeNode(node)));
    }
    return Error(node, fmt::format("{} must be a map of keys, got {}", path, DescribeNode(node)));
  }
  const std::vector<std::string_view> candidates(allowed);
  Fields fields;
  for (const auto& kv : node) {
    const Node& key = kv.first;
    if (!key.IsScalar()) {
      return Error(key,
                   fmt::format("keys{} must be plain names, got {}",
                               path.empty() ? "" : fmt::format(" in {}", path), DescribeNode(key)));
    }
    const std::string& name = key.Scalar();
    if (std::find(candidates.begin(), candidates.end(), name) == candidates.end()) {
      std::string message = fmt::format("unknown key '{}'{}", Shown(name),
                                        path.empty() ? "" : fmt::format(" in {}", path));
      const std::string suggestion = ClosestMatch(name, candidates);
      if (!suggestion.empty()) {
        message += fmt::format("; did you mean '{}'?", suggestion);
      } else {
        message += " (known keys:";
        for (std::string_view c : candidates) message += fmt::format(" {}", c);
        message += ")";
      }
      return Error(key, message);
    }
    if (fields.count(name) != 0) {
      return Error(key, fmt::format("duplicate key '{}'", Join(path, name)));
    }
    // yaml-cpp places an empty value at the start of the next line; point at the key instead.
    if (kv.second.IsNull()) return Error(key, fmt::format("{} has no value", Join(path, name)));
    fields.emplace(name, Entry{key, kv.second});
  }
  return fields;
}

Result<std::string> ScenarioParser::Scalar(const Node& value, std::string_view path,
                                           std::string_view what) const {
  if (value.IsScalar()) return value.Scalar();
  return Error(value, fmt::format("{}: expected {}, got {}", path, what, DescribeNode(value)));
}

template <typename T, typename ParseFn>
Result<T> ScenarioParser::ReadValue(const Node& value, std::string_view path, std::string_view what,
                                    ParseFn parse) const {
  Result<std::string> text = Scalar(value, path, what);
  if (!text.ok()) return text.status();
  auto parsed = parse(*text);
  if (!parsed.ok()) return Error(value, fmt::format("{}: {}", path, parsed.status().message()));
  return static_cast<T>(*parsed);
}

Result<int32_t> ScenarioParser::ReadCount(const Node& value, std::string_view path, int64_t min,
                                          int64_t max) const {
  const std::string what = fmt::format("a whole number from {} to {}", min, max);
  Result<int64_t> n = ReadValue<int64_t>(value, path, what, ParseInteger);
  if (!n.ok()) return n.status();
  if (*n < min || *n > max) {
    return Error(value, fmt::format("{} must be from {} to {}, got {}", path, min, max, *n));
  }
  return static_cast<int32_t>(*n);
}

Result<int> ScenarioParser::ReadChoice(const Node& value, std::string_view path,
                                       std::initializer_list<std::string_view> choices) const {
  std::string list;
  for (std::string_view c : choices) list += list.empty() ? std::string(c) : ", " + std::string(c);
  Result<std::string> text = Scalar(value, path, "one of " + list);
  if (!text.ok()) return text.status();
  int index = 0;
  for (std::string_view c : choices) {
    if (*text == c) return index;
    ++index;
  }
  std::string message = fmt::format("{} must be one of {}, got '{}'", path, list, Shown(*text));
  const std::string guess = ClosestMatch(*text, std::vector<std::string_view>(choices));
  if (!guess.empty()) message += fmt::format("; did you mean '{}'?", guess);
  return Error(value, message);
}

Result<bool> ScenarioParser::ReadBool(const Node& value, std::string_view path) const {
  Result<std::string> text = Scalar(value, path, "true or false");
  if (!text.ok()) return text.status();
  std::string lower = *text;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return Error(value, fmt::format("{}: expected true or false, got '{}'", path, Shown(*text)));
}

template <typename ParseFn>
Status ScenarioParser::ReadPerStage(const Fields& fields, std::string_view path,
                                    std::string_view key, std::string_view what, ParseFn parse,
                                    std::vector<int64_t>* out) const {
  const auto it = fields.find(key);
  if (it == fields.end()) return Status::Ok();
  const std::string full = Join(path, key);
  const Node& value = it->second.value;
  if (value.IsSequence()) {
    if (value.size() != static_cast<size_t>(stages_)) {
      return Error(value, fmt::format("{} has {} value{} but pipeline.stages is {}", full,
                                      value.size(), value.size() == 1 ? "" : "s", stages_));
    }
    out->clear();
    for (size_t i = 0; i < value.size(); ++i) {
      Result<int64_t> v = ReadValue<int64_t>(value[i], fmt::format("{}[{}]", full, i), what, parse);
      if (!v.ok()) return v.status();
      out->push_back(*v);
    }
    return Status::Ok();
  }
  if (!value.IsScalar()) {
    return Error(value, fmt::format("{}: expected {} (one for every stage) or a list of one per "
                                    "stage, got {}",
                                    full, what, DescribeNode(value)));
  }
  Result<int64_t> v = ReadValue<int64_t>(value, full, what, parse);
  if (!v.ok()) return v.status();
  out->assign(static_cast<size_t>(stages_), *v);
  return Status::Ok();
}

Status ScenarioParser::ParsePipeline(const Node& node, PipelineSpec* out) const {
  Result<Fields> f =
      ReadMap(node, "pipeline",
              {"stages", "microbatches", "minibatches", "microbatch_size", "data_parallel"});
  if (!f.ok()) return f.status();
  struct Field {
    std::string_view key;
    int32_t* target;
    int64_t max;
    bool required;
  };
  const Field kFields[] = {
      {"stages", &out->stages, kMaxStages, true},
      {"microbatches", &out->microbatches, kMaxMicrobatches, true},
      {"minibatches", &out->minibatches, kMaxMicrobatches, false},
      {"microbatch_size", &out->microbatch_size, kMaxMicrobatchSize, false},
      {"data_parallel", &out->data_parallel, kMaxStages, false},
  };
  for (const Field& field : kFields) {
    const auto it = f->find(field.key);
    if (it == f->end()) {
      if (field.required) return Missing(node, "pipeline", field.key);
      continue;
    }
    Result<int32_t> n = ReadCount(it->second.value, Join("pipeline", field.key), 1, field.max);
    if (!n.ok()) return n.status();
    *field.target = *n;
  }
  const int64_t total = static_cast<int64_t>(out->microbatches) * out->minibatches;
  if (total > kMaxCount) {
    const auto it = f->find("minibatches");
    return Error(it->second.value,
                 fmt::format("pipeline.microbatches x pipeline.minibatches is {}, more than the "
                             "{} microbatches pipecast simulates in one run",
                             total, kMaxCount));
  }
  return Status::Ok();
}

constexpr std::string_view kDurationWhat = "a duration such as 1.5ms or 200us";
constexpr std::string_view kBytesWhat = "a size such as 64MiB or 1.5GB";
constexpr std::string_view kBandwidthWhat = "a bandwidth such as 25GB/s or 100Gbit/s";
constexpr std::string_view kFlopsWhat = "a compute throughput such as 312TFLOPS";

Status ScenarioParser::ParseCosts(const Node& node, ExplicitCosts* out) const {
  Result<Fields> f =
      ReadMap(node, "costs",
              {"forward", "backward", "backward_input", "backward_weight", "optimizer_step",
               "optimizer_rollback", "activation_bytes", "activation_bytes_after_input_grad", "message_bytes",
               "weight_bytes", "gradient_bytes", "optimizer_state_bytes", "all_reduce",
               "average"});
  if (!f.ok()) return f.status();
  const auto duration = [](std::string_view t) { return ParseDuration(t); };
  const auto bytes = [](std::string_view t) { return ParseBytes(t); };
  struct Field {
    std::string_view key;
    std::vector<int64_t>* target;
    bool is_time;
  };
  const Field kFields[] = {
      {"forward", &out->forward_ns, true},
      {"backward", &out->backward_ns, true},
      {"backward_input", &out->backward_input_ns, true},
      {"backward_weight", &out->backward_weight_ns, true},
      {"optimizer_step", &out->optimizer_step_ns, true},
      {"optimizer_rollback", &out->optimizer_rollback_ns, true},
      {"all_reduce", &out->all_reduce_ns, true},
      {"average", &out->average_ns, true},
      {"activation_bytes", &out->activation_bytes, false},
      {"activation_bytes_after_input_grad", &out->activation_bytes_after_input_grad, false},
      {"message_bytes", &out->message_bytes, false},
      {"weight_bytes", &out->weight_bytes, false},
      {"gradient_bytes", &out->gradient_bytes, false},
      {"optimizer_state_bytes", &out->optimizer_state_bytes, false},
  };
  for (const Field& field : kFields) {
    const Status s =
        field.is_time ? ReadPerStage(*f, "costs", field.key, kDurationWhat, duration, field.target)
                      : ReadPerStage(*f, "costs", field.key, kBytesWhat, bytes, field.target);
    PIPECAST_RETURN_IF_ERROR(s);
  }
  if (out->forward_ns.empty()) return Missing(node, "costs", "forward");
  const bool has_input = !out->backward_input_ns.empty();
  const bool has_weight = !out->backward_weight_ns.empty();
  if (has_input != has_weight) {
    const std::string_view given = has_input ? "backward_input" : "backward_weight";
    const std::string_view missing = has_input ? "backward_weight" : "backward_input";
    return Error(f->at(std::string(given)).key,
                 fmt::format("costs.{} is required when costs.{} is given (a split backward "
                             "needs both)",
                             missing, given));
  }
  if (!out->backward_ns.empty() && has_input) {
    // Which of the two a method would use is not the user's intent to guess: the split methods
    // would time I and W, the others B, and the two need not agree.
    return Error(f->at("backward_input").key,
                 "costs.backward conflicts with costs.backward_input and costs.backward_weight: "
                 "give the full backward or its split (the full backward is then their sum), "
                 "not both");
  }
  if (out->backward_ns.empty()) {
    if (!has_input) {
      return Missing(node, "costs", "backward",
                     " (or costs.backward_input and costs.backward_weight for a split backward)");
    }
    out->backward_ns.resize(out->backward_input_ns.size());
    for (size_t k = 0; k < out->backward_ns.size(); ++k) {
      if (out->backward_input_ns[k] > INT64_MAX - out->backward_weight_ns[k]) {
        return Error(f->at("backward_input").value,
                     fmt::format("costs.backward_input + costs.backward_weight of stage {} is "
                                 "too large",
                                 k));
      }
      out->backward_ns[k] = out->backward_input_ns[k] + out->backward_weight_ns[k];
    }
  }
  return Status::Ok();
}

Status ScenarioParser::ParseNetwork(const Node& node, Scenario* out) const {
  Result<Fields> f =
      ReadMap(node, "network", {"latency", "bandwidth", "send_overhead", "recv_overhead",
                                "collective_latency", "collective_bandwidth", "collectives"});
  if (!f.ok()) return f.status();
  const std::pair<const char*, int64_t*> durations[] = {
      {"latency", &out->network_latency_ns},
      {"send_overhead", &out->network_send_overhead_ns},
      {"recv_overhead", &out->network_recv_overhead_ns}};
  for (const auto& [key, field] : durations) {
    auto it = f->find(key);
    if (it == f->end()) continue;
    Result<int64_t> v =
        ReadValue<int64_t>(it->second.value, std::string("network.") + key, kDurationWhat,
                           [](std::string_view t) { return ParseDuration(t); });
    if (!v.ok()) return v.status();
    *field = *v;
  }
  if (auto it = f->find("bandwidth"); it != f->end()) {
    Result<double> v = ReadValue<double>(it->second.value, "network.bandwidth", kBandwidthWhat,
                                         [](std::string_view t) { return ParseBandwidth(t); });
    if (!v.ok()) return v.status();
    out->network_bandwidth = *v;
  }
  if (auto it = f->find("collectives"); it != f->end()) {
    const std::string v = it->second.value.IsScalar() ? it->second.value.Scalar() : "";
    if (v != "blocking" && v != "overlapped") {
      return Error(it->second.value,
                   "network.collectives must be blocking or overlapped, got '" + v + "'");
    }
    out->blocking_collectives = v == "blocking";
  }
  return ParseCollectiveLink(*f, "network.collective_", out);
}

Status ScenarioParser::ParseCollectiveLink(const Fields& f, const std::string& prefix,
                                           Scenario* out) const {
  const bool short_keys = prefix.back() == '.';  // cluster.collective_link.latency
  const std::string latency = short_keys ? "latency" : "collective_latency";
  const std::string bandwidth = short_keys ? "bandwidth" : "collective_bandwidth";
  if (auto it = f.find(latency); it != f.end()) {
    Result<int64_t> v =
        ReadValue<int64_t>(it->second.value, prefix + "latency", kDurationWhat,
                           [](std::string_view t) { return ParseDuration(t); });
    if (!v.ok()) return v.status();
    out->collective_latency_ns = *v;
  }
  if (auto it = f.find(bandwidth); it != f.end()) {
    Result<double> v = ReadValue<double>(it->second.value, prefix + "bandwidth", kBandwidthWhat,
                                         [](std::string_view t) { return ParseBandwidth(t); });
    if (!v.ok()) return v.status();
    out->collective_bandwidth = *v;
  }
  return Status::Ok();
}

Status ScenarioParser::ParseDevice(const Node& node, Scenario* out) const {
  Result<Fields> f = ReadMap(node, "device", {"memory", "memory_bandwidth"});
  if (!f.ok()) return f.status();
  DeviceHardware hardware;
  PIPECAST_RETURN_IF_ERROR(ReadHardware(*f, "device", &hardware));
  out->device_memory_bytes = hardware.memory_bytes;
  out->device_memory_bandwidth = hardware.memory_bandwidth;
  return Status::Ok();
}

Status ScenarioParser::ReadHardware(const Fields& f, std::string_view path,
                                    DeviceHardware* out) const {
  const auto at = [&](std::string_view key) -> const Node* {
    const auto it = f.find(key);
    return it == f.end() ? nullptr : &it->second.value;
  };
  if (const Node* v = at("speed")) {
    const std::string key = Join(path, "speed");
    Result<double> x = ReadValue<double>(*v, key, "a relative speed such as 0.5 or 2", ParseNumber);
    if (!x.ok()) return x.status();
    if (!(*x > 0)) {
      return Error(*v, fmt::format("{} must be greater than 0 (1 = the speed costs: are given "
                                   "for, 0.5 = half as fast), got {}",
                                   key, *x));
    }
    out->speed = *x;
  }
  if (const Node* v = at("peak_flops")) {
    const std::string key = Join(path, "peak_flops");
    Result<double> x =
        ReadValue<double>(*v, key, kFlopsWhat, [](std::string_view t) { return ParseFlops(t); });
    if (!x.ok()) return x.status();
    if (*x <= 0) return Error(*v, fmt::format("{} must be greater than 0", key));
    out->peak_flops = *x;
  }
  if (const Node* v = at("efficiency")) {
    const std::string key = Join(path, "efficiency");
    // A fraction, or a percentage such as "45%".
    const auto parse = [](std::string_view t) -> Result<double> {
      const bool percent = !t.empty() && t.back() == '%';
      Result<double> x = ParseNumber(percent ? t.substr(0, t.size() - 1) : t);
      if (!x.ok()) return x.status();
      return percent ? *x / 100 : *x;
    };
    Result<double> x = ReadValue<double>(*v, key, "a fraction such as 0.5 or 50%", parse);
    if (!x.ok()) return x.status();
    if (!(*x > 0 && *x <= 1)) {
      return Error(*v, fmt::format("{} must be in (0, 1], got {}", key, *x));
    }
    out->efficiency = *x;
  }
  if (const Node* v = at("memory")) {
    Result<int64_t> x = ReadValue<int64_t>(*v, Join(path, "memory"), kBytesWhat,
                                           [](std::string_view t) { return ParseBytes(t); });
    if (!x.ok()) return x.status();
    out->memory_bytes = *x;
  }
  if (const Node* v = at("memory_bandwidth")) {
    Result<double> x = ReadValue<double>(*v, Join(path, "memory_bandwidth"), kBandwidthWhat,
                                         [](std::string_view t) { return ParseBandwidth(t); });
    if (!x.ok()) return x.status();
    out->memory_bandwidth = *x;
  }
  return Status::Ok();
}

Status ScenarioParser::ParseDeviceList(const Node& node, std::string_view path,
                                       const DeviceHardware& defaults, Scenario* out) const {
  const bool model = out->model.has_value();
  if (!node.IsSequence() || node.size() == 0) {
    return Error(node,
                 fmt::format("{} must be a non-empty list of devices such as {}, got {}", path,
                             model ? "{count: 3, peak_flops: 312TFLOPS, memory: 80GiB}"
                                   : "{count: 3, speed: 0.5, memory: 16GiB}",
                             DescribeNode(node)));
  }
  std::vector<DeviceHardware> devices;
  std::string counts;  // "1 + 3", for the message
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string entry = fmt::format("{}[{}]", path, i);
    Result<Fields> f =
        model
            ? ReadMap(node[i], entry,
                      {"count", "peak_flops", "efficiency", "memory", "memory_bandwidth", "speed"})
            : ReadMap(node[i], entry, {"count", "speed", "memory", "memory_bandwidth"});
    if (!f.ok()) return f.status();
    if (const auto it = f->find("speed"); model && it != f->end()) {
      return Error(it->second.key,
                   fmt::format("{}.speed is for explicit costs; with model: give the device's "
                               "peak_flops (and efficiency), from which its speed follows",
                               entry));
    }
    int32_t count = 1;
    if (const auto it = f->find("count"); it != f->end()) {
      Result<int32_t> n = ReadCount(it->second.value, Join(entry, "count"), 1, kMaxStages);
      if (!n.ok()) return n.status();
      count = *n;
    }
    DeviceHardware hardware = defaults;
    PIPECAST_RETURN_IF_ERROR(ReadHardware(*f, entry, &hardware));
    counts += fmt::format("{}{}", counts.empty() ? "" : " + ", count);
    if (static_cast<int64_t>(devices.size()) + count > static_cast<int64_t>(stages_) * copies_) {
      if (copies_ == 1) {
        return Error(node[i], fmt::format("{} describes more than the {} devices of "
                                          "pipeline.stages ({} so far); the counts must add up to "
                                          "pipeline.stages",
                                          path, stages_, counts));
      }
      return Error(node[i], fmt::format("{} describes more than the {} devices of "
                                        "pipeline.stages x data_parallel ({} so far); the counts "
                                        "must add up to pipeline.stages (one copy, repeated) or "
                                        "to every copy's devices",
                                        path, static_cast<int64_t>(stages_) * copies_, counts));
    }
    devices.insert(devices.end(), static_cast<size_t>(count), hardware);
  }
  if (devices.size() != static_cast<size_t>(stages_) &&
      devices.size() != static_cast<size_t>(stages_) * copies_) {
    return Error(
        node, fmt::format("{} describes {} device{} ({}) but pipeline.stages is {}; give "
                          "one entry per device, or count: N for N equal devices",
                          path, devices.size(), devices.size() == 1 ? "" : "s", counts, stages_));
  }
  out->devices = std::move(devices);
  return Status::Ok();
}

Status ScenarioParser::ParseModel(const Node& node, TransformerSpec* out) const {
  Result<Fields> f =
      ReadMap(node, "model",
              {"type", "layers", "hidden", "heads", "sequence", "vocabulary",
               "bytes_per_activation", "weight_bytes_per_param", "optimizer_bytes_per_param",
               "grad_bytes_per_param", "recompute", "attention", "partition"});
  if (!f.ok()) return f.status();
  if (auto it = f->find("type"); it != f->end()) {
    Result<std::string> type = Scalar(it->second.value, "model.type", "a model type (gpt)");
    if (!type.ok()) return type.status();
    if (*type != "gpt") {
      return Error(
          it->second.value,
          fmt::format("model.type '{}' is not supported; the only type is gpt", Shown(*type)));
    }
    out->type = *type;
  }
  struct Count {
    std::string_view key;
    int32_t* target;
    int64_t max;
  };
  const Count kCounts[] = {
      {"layers", &out->layers, kMaxLayers},
      {"hidden", &out->hidden, kMaxModelDimension},
      {"heads", &out->heads, kMaxModelDimension},
      {"sequence", &out->sequence, kMaxModelDimension},
      {"vocabulary", &out->vocabulary, kMaxVocabulary},
  };
  for (const Count& c : kCounts) {
    const auto it = f->find(c.key);
    if (it == f->end()) return Missing(node, "model", c.key);
    Result<int32_t> n = ReadCount(it->second.value, Join("model", c.key), 1, c.max);
    if (!n.ok()) return n.status();
    *c.target = *n;
  }
  if (out->hidden % out->heads != 0) {
    return Error(f->at("heads").value,
                 fmt::format("model.hidden ({}) must be divisible by model.heads ({})", out->hidden,
                             out->heads));
  }
  struct Ratio {
    std::string_view key;
    double* target;
    bool positive;  // must be > 0 (else >= 0)
  };
  const Ratio kRatios[] = {
      {"bytes_per_activation", &out->bytes_per_activation, true},
      {"weight_bytes_per_param", &out->weight_bytes_per_param, true},
      {"optimizer_bytes_per_param", &out->optimizer_bytes_per_param, false},
      {"grad_bytes_per_param", &out->grad_bytes_per_param, false},
  };
  for (const Ratio& r : kRatios) {
    const auto it = f->find(r.key);
    if (it == f->end()) continue;
    const std::string path = Join("model", r.key);
    Result<double> v = ReadValue<double>(it->second.value, path, "a number of bytes", ParseNumber);
    if (!v.ok()) return v.status();
    if (*v < 0 || (r.positive && *v == 0) || *v > 1024) {
      return Error(it->second.value, fmt::format("{} must be {} 0 and at most 1024, got {}", path,
                                                 r.positive ? "greater than" : "at least", *v));
    }
    *r.target = *v;
  }
  if (auto it = f->find("recompute"); it != f->end()) {
    Result<bool> v = ReadBool(it->second.value, "model.recompute");
    if (!v.ok()) return v.status();
    out->recompute = *v;
  }
  if (auto it = f->find("attention"); it != f->end()) {
    Result<int> v = ReadChoice(it->second.value, "model.attention", {"standard", "flash"});
    if (!v.ok()) return v.status();
    out->attention = *v == 0 ? AttentionKind::kStandard : AttentionKind::kFlash;
  }
  if (auto it = f->find("partition"); it != f->end()) {
    Result<int> v =
        ReadChoice(it->second.value, "model.partition", {"balanced", "even", "megatron-core"});
    if (!v.ok()) return v.status();
    constexpr PartitionRule kRules[] = {PartitionRule::kBalanced, PartitionRule::kEven,
                                        PartitionRule::kMegatronCore};
    out->partition = kRules[*v];
  }
  return Status::Ok();
}

Status ScenarioParser::ParseCluster(const Node& node, Scenario* out) const {
  Result<Fields> f = ReadMap(node, "cluster", {"device", "devices", "link", "collective_link"});
  if (!f.ok()) return f.status();
  ClusterSpec cluster;
  const auto device_it = f->find("device");
  if (device_it == f->end()) {
    return Missing(node, "cluster", "device", " (it gives peak_flops)");
  }
  const Node& device = device_it->second.value;
  Result<Fields> d =
      ReadMap(device, "cluster.device", {"peak_flops", "efficiency", "memory", "memory_bandwidth"});
  if (!d.ok()) return d.status();
  if (d->find("peak_flops") == d->end()) return Missing(device, "cluster.device", "peak_flops");
  DeviceHardware hardware;
  hardware.efficiency = cluster.efficiency;
  PIPECAST_RETURN_IF_ERROR(ReadHardware(*d, "cluster.device", &hardware));
  cluster.peak_flops = hardware.peak_flops;
  cluster.efficiency = hardware.efficiency;
  out->device_memory_bytes = hardware.memory_bytes;
  out->device_memory_bandwidth = hardware.memory_bandwidth;
  if (auto link_it = f->find("link"); link_it != f->end()) {
    Result<Fields> l = ReadMap(link_it->second.value, "cluster.link", {"latency", "bandwidth"});
    if (!l.ok()) return l.status();
    if (auto it = l->find("latency"); it != l->end()) {
      Result<int64_t> v =
          ReadValue<int64_t>(it->second.value, "cluster.link.latency", kDurationWhat,
                             [](std::string_view t) { return ParseDuration(t); });
      if (!v.ok()) return v.status();
      out->network_latency_ns = *v;
    }
    if (auto it = l->find("bandwidth"); it != l->end()) {
      Result<double> v =
          ReadValue<double>(it->second.value, "cluster.link.bandwidth", kBandwidthWhat,
                            [](std::string_view t) { return ParseBandwidth(t); });
      if (!v.ok()) return v.status();
      out->network_bandwidth = *v;
    }
  }
  if (auto c = f->find("collective_link"); c != f->end()) {
    Result<Fields> l =
        ReadMap(c->second.value, "cluster.collective_link", {"latency", "bandwidth"});
    if (!l.ok()) return l.status();
    PIPECAST_RETURN_IF_ERROR(ParseCollectiveLink(*l, "cluster.collective_link.", out));
  }
  out->cluster = cluster;
  if (const auto it = f->find("devices"); it != f->end()) {
    PIPECAST_RETURN_IF_ERROR(ParseDeviceList(it->second.value, "cluster.devices", hardware, out));
  }
  return Status::Ok();
}

Status ScenarioParser::ParseMethods(const Node& node, std::vector<MethodSpec>* out) const {
  if (!node.IsSequence()) {
    return Error(node, fmt::format("methods must be a list of method names or maps such as "
                                   "{{name: pipeoptim, horizon: code}}, got {}",
                                   DescribeNode(node)));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const Node& entry = node[i];
    const std::string path = fmt::format("methods[{}]", i);
    MethodSpec spec;
    const YAML::Mark mark = entry.Mark();
    spec.line = mark.is_null() ? 0 : mark.line + 1;
    spec.column = mark.is_null() ? 0 : mark.column + 1;
    if (entry.IsScalar()) {
      spec.name = entry.Scalar();
    } else if (entry.IsMap()) {
      bool has_name = false;
      for (const auto& kv : entry) {
        const Node& key = kv.first;
        if (!key.IsScalar()) {
          return Error(
              key, fmt::format("keys in {} must be plain names, got {}", path, DescribeNode(key)));
        }
        const std::string& k = key.Scalar();
        const std::string full = fmt::format("{}.{}", path, Shown(k));
        if ((k == "name" && has_name) || spec.params.count(k) != 0) {
          return Error(key, fmt::format("duplicate key '{}'", full));
        }
        if (kv.second.IsNull()) return Error(key, fmt::format("{} has no value", full));
        if (!kv.second.IsScalar()) {
          return Error(kv.second, fmt::format("{}: expected a value such as 'code' or '4', got {}",
                                              full, DescribeNode(kv.second)));
        }
        if (k == "name") {
          spec.name = kv.second.Scalar();
          has_name = true;
        } else {
          spec.params.emplace(k, kv.second.Scalar());
        }
      }
      if (!has_name) {
        return Error(entry, fmt::format("{} has no name (write {{name: pipeoptim, ...}})", path));
      }
    } else {
      return Error(entry, fmt::format("{}: expected a method name or a map such as {{name: "
                                      "pipeoptim, horizon: code}}, got {}",
                                      path, DescribeNode(entry)));
    }
    if (spec.name.empty()) return Error(entry, fmt::format("{} has an empty name", path));
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

Status ScenarioParser::ParseBubbleWork(const Node& node, std::vector<BubbleWorkItem>* out) const {
  if (!node.IsSequence()) {
    return Error(node, fmt::format("bubble_work: expected a list of items such as {{name: "
                                   "curvature, duration: 2ms, per: backward}}, got {}",
                                   DescribeNode(node)));
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string path = fmt::format("bubble_work[{}]", i);
    Result<Fields> f = ReadMap(node[i], path, {"name", "duration", "per"});
    if (!f.ok()) return f.status();
    BubbleWorkItem item;
    item.name = fmt::format("work {}", i);
    if (const auto it = f->find("name"); it != f->end()) {
      Result<std::string> v = Scalar(it->second.value, Join(path, "name"), "a name");
      if (!v.ok()) return v.status();
      item.name = *v;
    }
    if (!f->count("duration")) {
      return Missing(node[i], path, "duration", " (the device time of one item, e.g. 2ms)");
    }
    PIPECAST_RETURN_IF_ERROR(
        ReadPerStage(*f, path, "duration", kDurationWhat,
                     [](std::string_view t) { return ParseDuration(t); }, &item.duration_ns));
    if (const auto it = f->find("per"); it != f->end()) {
      Result<int> v = ReadChoice(it->second.value, Join(path, "per"), {"step", "backward"});
      if (!v.ok()) return v.status();
      item.per_backward = *v == 1;
    }
    out->push_back(std::move(item));
  }
  return Status::Ok();
}

Result<Scenario> ScenarioParser::Parse(std::string_view text) {
  Result<Node> loaded = internal::LoadOneDocument(text, file_, "a scenario");
  if (!loaded.ok()) return loaded.status();
  const Node root = *loaded;
  if (root.IsNull()) {
    return InvalidArgument(fmt::format(
        "{}: the scenario is empty; expected pipeline: with costs: or model: and cluster:", file_));
  }
  Result<Fields> top = ReadMap(root, "",
                               {"name", "description", "pipeline", "costs", "network", "device",
                                "devices", "model", "cluster", "methods", "bubble_work", "plan"});
  if (!top.ok()) return top.status();
  const Fields& f = *top;
  auto find = [&](std::string_view key) -> const Entry* {
    const auto it = f.find(key);
    return it == f.end() ? nullptr : &it->second;
  };

  Scenario scenario;
  scenario.source = file_;
  // The default name is the file name without directory and extension.
  scenario.name = std::filesystem::path(file_).stem().string();
  if (const Entry* e = find("name")) {
    Result<std::string> v = Scalar(e->value, "name", "a name");
    if (!v.ok()) return v.status();
    scenario.name = *v;
  }
  if (const Entry* e = find("description")) {
    Result<std::string> v = Scalar(e->value, "description", "a text");
    if (!v.ok()) return v.status();
    scenario.description = *v;
  }

  const Entry* pipeline = find("pipeline");
  if (pipeline == nullptr) return Missing(root, "", "pipeline");
  PIPECAST_RETURN_IF_ERROR(ParsePipeline(pipeline->value, &scenario.pipeline));
  stages_ = scenario.pipeline.stages;
  copies_ = scenario.pipeline.data_parallel;

  const Entry* costs = find("costs");
  const Entry* model = find("model");
  const Entry* cluster = find("cluster");
  if (costs != nullptr && model != nullptr) {
    return Error(model->key,
                 "give either costs: (explicit per-stage costs) or model: with cluster: (costs "
                 "derived from a transformer), not both");
  }
  if (costs == nullptr && model == nullptr) {
    return Error(root,
                 "the scenario needs costs: (explicit per-stage costs) or model: and cluster: "
                 "(costs derived from a transformer)");
  }
  if (costs != nullptr) {
    if (cluster != nullptr) {
      return Error(cluster->key,
                   "cluster: is only used with model:; with explicit costs give device: and "
                   "network:");
    }
    ExplicitCosts c;
    PIPECAST_RETURN_IF_ERROR(ParseCosts(costs->value, &c));
    scenario.costs = std::move(c);
    if (const Entry* e = find("network"))
      PIPECAST_RETURN_IF_ERROR(ParseNetwork(e->value, &scenario));
    if (const Entry* e = find("device")) PIPECAST_RETURN_IF_ERROR(ParseDevice(e->value, &scenario));
    if (const Entry* e = find("devices")) {
      const DeviceHardware defaults{1, 0, 0, scenario.device_memory_bytes,
                                    scenario.device_memory_bandwidth};
      PIPECAST_RETURN_IF_ERROR(ParseDeviceList(e->value, "devices", defaults, &scenario));
    }
  } else {
    for (std::string_view key : {"network", "device", "devices"}) {
      if (const Entry* e = find(key)) {
        return Error(e->key, fmt::format("{}: is only used with explicit costs; with model: give "
                                         "cluster.{}",
                                         key, key == "network" ? "link" : key));
      }
    }
    if (cluster == nullptr) {
      return Error(model->key,
                   "cluster is required with model (cluster.device.peak_flops gives the compute "
                   "speed)");
    }
    TransformerSpec m;
    PIPECAST_RETURN_IF_ERROR(ParseModel(model->value, &m));
    scenario.model = m;
    PIPECAST_RETURN_IF_ERROR(ParseCluster(cluster->value, &scenario));
  }

  if (const Entry* e = find("methods")) {
    PIPECAST_RETURN_IF_ERROR(ParseMethods(e->value, &scenario.methods));
  }
  if (const Entry* e = find("bubble_work")) {
    PIPECAST_RETURN_IF_ERROR(ParseBubbleWork(e->value, &scenario.bubble_work));
  }
  // `plan:` is pipecast plan's (common/plan_space.h: ParsePlanSection); other commands ignore it.
  return scenario;
}

}  // namespace

namespace {
void CheckDevice(const Scenario& scenario, int32_t d) {
  PIPECAST_CHECK(d >= 0 && d < scenario.pipeline.stages * scenario.pipeline.data_parallel &&
                 (scenario.devices.empty() || static_cast<size_t>(d) < scenario.devices.size()))
      << "device " << d << " of " << scenario.pipeline.stages << " (" << scenario.devices.size()
      << " described)";
}
}  // namespace

double DeviceSpeed(const Scenario& scenario, int32_t d) {
  CheckDevice(scenario, d);
  if (scenario.devices.empty()) return 1;
  const DeviceHardware& h = scenario.devices[static_cast<size_t>(d)];
  if (!scenario.cluster) return h.speed;
  return h.peak_flops * h.efficiency /
         (scenario.cluster->peak_flops * scenario.cluster->efficiency);
}

int64_t DeviceMemoryBytes(const Scenario& scenario, int32_t d) {
  CheckDevice(scenario, d);
  return scenario.devices.empty() ? scenario.device_memory_bytes
                                  : scenario.devices[static_cast<size_t>(d)].memory_bytes;
}

double DeviceMemoryBandwidth(const Scenario& scenario, int32_t d) {
  CheckDevice(scenario, d);
  return scenario.devices.empty() ? scenario.device_memory_bandwidth
                                  : scenario.devices[static_cast<size_t>(d)].memory_bandwidth;
}

Result<Scenario> ParseScenario(std::string_view yaml_text, std::string_view filename) {
  ScenarioParser parser(filename);
  try {
    return parser.Parse(yaml_text);
  } catch (const YAML::Exception& e) {
    // Node accessors can throw on shapes the parser did not expect; report, never crash.
    return ParseError(fmt::format("{}: invalid scenario: {}", filename, e.what()));
  } catch (const std::exception& e) {
    return ParseError(fmt::format("{}: invalid scenario: {}", filename, e.what()));
  }
}

Result<Scenario> LoadScenarioFile(const std::string& path) {
  Result<std::string> text = ReadInputFile(path, "scenario file");
  if (!text.ok()) return text.status();
  return ParseScenario(*text, InputName(path));
}

Result<Scenario> DefaultScenario() {
  return ParseScenario(DefaultScenarioYaml(), "<built-in default.yaml>");
}

}  // namespace pipecast::ir
