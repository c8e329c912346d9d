#include "common/plan_space.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <functional>

#include "common/check.h"
#include "common/generators.h"
#include "common/limits.h"
#include "common/suggest.h"
#include "common/units.h"
#include "common/yaml_document.h"

namespace pipecast::ir {
namespace {

using YAML::Node;

constexpr std::string_view kPlanKeys[] = {
    "objective",          "target_loss",     "convergence",  "dataset", "memory_cap",
    "max_gradient_delay", "max_version_gap", "global_batch", "stages",  "microbatch_sizes",
    "recompute",          "partitions",      "methods",      "data_parallel"};
constexpr std::string_view kPartitionNames[] = {"balanced", "even", "megatron-core"};
constexpr PartitionRule kPartitionRules[] = {PartitionRule::kBalanced, PartitionRule::kEven,
                                             PartitionRule::kMegatronCore};

// Reads the `plan:` map: every value checked, every error at its key or value.
class PlanReader {
 public:
  explicit PlanReader(std::string_view file) : file_(file) {}

  Result<PlanSpace> Read(const Node& plan);

 private:
  Status Error(const Node& at, const std::string& message) const {
    return InvalidArgument(internal::WhereIs(file_, at.Mark()) + ": " + message);
  }
  Result<std::string> Text(const Node& n, const std::string& key, const char* what) const {
    if (n.IsScalar()) return n.Scalar();
    return Error(n, fmt::format("plan.{}: expected {}", key, what));
  }
  Result<int64_t> Integer(const Node& n, const std::string& key, int64_t min, int64_t max) const;
  Result<bool> Bool(const Node& n, const std::string& key) const;
  // A scalar or a non-empty list of scalars, each read by `one`.
  template <typename T, typename Fn>
  Result<std::vector<T>> List(const Node& n, const std::string& key, Fn one) const;
  Status ReadEntry(const std::string& key, const Node& key_node, const Node& value,
                   PlanSpace* out) const;
  Status ReadLimits(const std::string& key, const Node& value, PlanSpace* out) const;
  Status ReadGrids(const std::string& key, const Node& value, PlanSpace* out) const;
  Result<MethodGrid> ReadMethod(const Node& entry, size_t index) const;

  std::string file_;
};

Result<int64_t> PlanReader::Integer(const Node& n, const std::string& key, int64_t min,
                                    int64_t max) const {
  Result<std::string> text = Text(n, key, "a whole number");
  if (!text.ok()) return text.status();
  int64_t v = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, v);
  if (ec != std::errc() || ptr != end || v < min || v > max) {
    return Error(n, fmt::format("plan.{} must be a whole number from {} to {}, got '{}'", key, min,
                                max, *text));
  }
  return v;
}

Result<bool> PlanReader::Bool(const Node& n, const std::string& key) const {
  Result<std::string> text = Text(n, key, "true or false");
  if (!text.ok()) return text.status();
  std::string lower = *text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return Error(n, fmt::format("plan.{}: expected true or false, got '{}'", key, *text));
}

template <typename T, typename Fn>
Result<std::vector<T>> PlanReader::List(const Node& n, const std::string& key, Fn one) const {
  std::vector<T> out;
  if (n.IsScalar()) {
    Result<T> v = one(n);
    if (!v.ok()) return v.status();
    out.push_back(*v);
    return out;
  }
  if (!n.IsSequence() || n.size() == 0) {
    return Error(n, fmt::format("plan.{} must be a value or a non-empty list of values (an "
                                "empty list leaves nothing to search)",
                                key));
  }
  for (size_t i = 0; i < n.size(); ++i) {
    Result<T> v = one(n[i]);
    if (!v.ok()) return v.status();
    if (std::find(out.begin(), out.end(), *v) != out.end()) {
      return Error(n[i], fmt::format("plan.{} lists the same value twice", key));
    }
    out.push_back(*v);
  }
  return out;
}

Status PlanReader::ReadLimits(const std::string& key, const Node& value, PlanSpace* out) const {
  if (key == "objective") {
    Result<std::string> v = Text(value, key, "time_per_sample or time_to_loss");
    if (!v.ok()) return v.status();
    if (*v != "time_per_sample" && *v != "time_to_loss") {
      return Error(value, fmt::format("plan.objective must be time_per_sample or time_to_loss, "
                                      "got '{}'",
                                      *v));
    }
    out->objective =
        *v == "time_to_loss" ? PlanObjective::kTimeToLoss : PlanObjective::kTimePerSample;
  } else if (key == "target_loss") {
    Result<std::string> v = Text(value, key, "a loss such as 2.1");
    if (!v.ok()) return v.status();
    double loss = 0;
    const char* end = v->data() + v->size();
    const auto [ptr, ec] = std::from_chars(v->data(), end, loss);
    if (ec != std::errc() || ptr != end || !std::isfinite(loss) || loss <= 0) {
      return Error(value, fmt::format("plan.target_loss must be a positive number (a test "
                                      "loss in nats), got '{}'",
                                      *v));
    }
    out->target_loss = loss;
  } else if (key == "memory_cap") {
    Result<std::string> v = Text(value, key, "a size such as 40GiB, or none");
    if (!v.ok()) return v.status();
    if (*v == "none") {
      out->memory_cap_bytes = 0;
    } else if (Result<int64_t> b = ParseBytes(*v); !b.ok() || *b <= 0) {
      return Error(value, fmt::format("plan.memory_cap: expected a size such as 40GiB, or none "
                                      "for no cap, got '{}'",
                                      *v));
    } else {
      out->memory_cap_bytes = *b;
    }
  } else if (key == "max_gradient_delay" || key == "max_version_gap") {
    Result<int64_t> v = Integer(value, key, 0, kMaxCount);
    if (!v.ok()) return v.status();
    (key == "max_gradient_delay" ? out->max_gradient_delay : out->max_version_gap) =
        static_cast<int32_t>(*v);
  } else if (key == "convergence" || key == "dataset") {
    Result<std::string> v = Text(value, key, "a file name");
    if (!v.ok()) return v.status();
    (key == "convergence" ? out->convergence : out->dataset) = *v;
  } else if (key == "global_batch") {
    Result<int64_t> v = Integer(value, key, 1, kMaxCount);
    if (!v.ok()) return v.status();
    out->global_batch = *v;
  }
  return Status::Ok();
}

Status PlanReader::ReadGrids(const std::string& key, const Node& value, PlanSpace* out) const {
  if (key == "stages" || key == "microbatch_sizes" || key == "data_parallel") {
    const int64_t max = key == "microbatch_sizes" ? kMaxMicrobatchSize : kMaxCount;
    auto v = List<int32_t>(value, key, [&](const Node& n) -> Result<int32_t> {
      Result<int64_t> i = Integer(n, key, 1, max);
      if (!i.ok()) return i.status();
      return static_cast<int32_t>(*i);
    });
    if (!v.ok()) return v.status();
    (key == "stages"             ? out->stages
     : key == "microbatch_sizes" ? out->microbatch_sizes
                                 : out->data_parallel) = *v;
  } else if (key == "recompute") {
    auto v = List<bool>(value, key, [&](const Node& n) { return Bool(n, key); });
    if (!v.ok()) return v.status();
    out->recompute = *v;
  } else if (key == "partitions") {
    auto v = List<PartitionRule>(value, key, [&](const Node& n) -> Result<PartitionRule> {
      Result<std::string> t = Text(n, key, "balanced, even or megatron-core");
      if (!t.ok()) return t.status();
      for (size_t i = 0; i < std::size(kPartitionNames); ++i) {
        if (*t == kPartitionNames[i]) return kPartitionRules[i];
      }
      return Error(n, fmt::format("plan.partitions: '{}' is not a partition rule (balanced, "
                                  "even, megatron-core)",
                                  *t));
    });
    if (!v.ok()) return v.status();
    out->partitions = *v;
  } else if (key == "methods") {
    if (!value.IsSequence() || value.size() == 0) {
      return Error(value,
                   "plan.methods must be a non-empty list of methods, e.g. [1f1b, {name: "
                   "paci, accumulation: [4, 8]}]");
    }
    for (size_t i = 0; i < value.size(); ++i) {
      Result<MethodGrid> m = ReadMethod(value[i], i);
      if (!m.ok()) return m.status();
      out->methods.push_back(std::move(*m));
    }
  }
  return Status::Ok();
}

Result<MethodGrid> PlanReader::ReadMethod(const Node& entry, size_t index) const {
  const std::string path = fmt::format("methods[{}]", index);
  MethodGrid grid;
  grid.line = entry.Mark().is_null() ? 0 : entry.Mark().line + 1;
  if (entry.IsScalar()) {
    grid.name = entry.Scalar();
  } else if (entry.IsMap()) {
    for (const auto& kv : entry) {
      const std::string k = kv.first.IsScalar() ? kv.first.Scalar() : "";
      if (k == "name") {
        Result<std::string> name = Text(kv.second, path + ".name", "a method name");
        if (!name.ok()) return name.status();
        grid.name = *name;
        continue;
      }
      auto values = List<std::string>(kv.second, path + "." + k, [&](const Node& n) {
        return Text(n, path + "." + k, "a parameter value");
      });
      if (!values.ok()) return values.status();
      if (!grid.params.emplace(k, *values).second) {
        return Error(kv.first, fmt::format("plan.{}.{} is given twice", path, k));
      }
    }
  } else {
    return Error(entry, fmt::format("plan.{}: expected a method name or a map such as {{name: "
                                    "paci, accumulation: [4, 8]}}",
                                    path));
  }
  if (grid.name.empty()) {
    return Error(entry, fmt::format("plan.{} has no name (write {{name: paci, ...}})", path));
  }
  const MethodInfo* info = FindMethod(grid.name);
  if (info == nullptr) {
    std::vector<std::string> names;
    for (const MethodInfo& m : Methods()) names.push_back(m.name);
    const std::string guess = DidYouMean(grid.name, names);
    return Error(entry,
                 fmt::format("plan.{}: unknown method '{}'{} (pipecast methods lists them)", path,
                             grid.name, guess.empty() ? "" : "; did you mean '" + guess + "'?"));
  }
  for (const auto& [key, values] : grid.params) {
    const auto it = std::find_if(info->params.begin(), info->params.end(),
                                 [&](const ParamInfo& p) { return p.name == key; });
    if (it == info->params.end()) {
      return Error(entry, fmt::format("plan.{}: method '{}' has no parameter '{}' (pipecast "
                                      "methods lists its parameters)",
                                      path, grid.name, key));
    }
    for (const std::string& v : values) {
      if (Result<MethodOptions> o = MethodOptionsFor(grid.name, {{key, v}}); !o.ok()) {
        return Error(entry, fmt::format("plan.{}: {}", path, o.status().message()));
      }
    }
  }
  return grid;
}

Status PlanReader::ReadEntry(const std::string& key, const Node& key_node, const Node& value,
                             PlanSpace* out) const {
  const std::vector<std::string_view> known(std::begin(kPlanKeys), std::end(kPlanKeys));
  if (std::find(known.begin(), known.end(), key) == known.end()) {
    const std::string guess = ClosestMatch(key, known);
    return Error(key_node, fmt::format("unknown key '{}' in plan{}", key,
                                       guess.empty() ? " (docs/plan.md lists the keys)"
                                                     : "; did you mean '" + guess + "'?"));
  }
  if (out->positions.count(key) != 0) {
    return Error(key_node, fmt::format("duplicate key 'plan.{}'", key));
  }
  if (value.IsNull()) return Error(key_node, fmt::format("plan.{} has no value", key));
  const YAML::Mark mark = key_node.Mark();
  out->positions[key] = {mark.line + 1, mark.column + 1};
  PIPECAST_RETURN_IF_ERROR(ReadLimits(key, value, out));
  return ReadGrids(key, value, out);
}

Result<PlanSpace> PlanReader::Read(const Node& plan) {
  if (!plan.IsMap()) {
    return Error(plan,
                 "plan must be a map of keys (objective:, memory_cap:, stages:, methods:, "
                 "...; docs/plan.md)");
  }
  PlanSpace space;
  for (const auto& kv : plan) {
    if (!kv.first.IsScalar()) return Error(kv.first, "keys in plan must be plain names");
    PIPECAST_RETURN_IF_ERROR(ReadEntry(kv.first.Scalar(), kv.first, kv.second, &space));
  }
  return space;
}

}  // namespace

const char* PlanObjectiveName(PlanObjective objective) {
  return objective == PlanObjective::kTimeToLoss ? "time_to_loss" : "time_per_sample";
}

const char* PartitionRuleName(PartitionRule rule) {
  for (size_t i = 0; i < std::size(kPartitionRules); ++i) {
    if (kPartitionRules[i] == rule) return kPartitionNames[i].data();
  }
  return "balanced";
}

int32_t SimulatedMinibatches(int32_t scenario_minibatches, int32_t stages, int32_t microbatches) {
  const int64_t fill = (int64_t{kSteadyStateDepths} * stages + microbatches - 1) / microbatches;
  const int64_t most = kMaxCount / microbatches;
  return static_cast<int32_t>(std::max<int64_t>(scenario_minibatches, std::min(fill, most)));
}

Scenario ConfiguredScenario(const Scenario& base, const PlanConfig& config) {
  Scenario s = base;
  s.pipeline.stages = config.stages;
  s.pipeline.microbatches = config.microbatches;
  s.pipeline.microbatch_size = config.microbatch_size;
  s.pipeline.minibatches = config.minibatches;
  s.pipeline.data_parallel = config.data_parallel;
  if (s.model) {
    s.model->recompute = config.recompute;
    s.model->partition = config.partition;
  }
  s.methods = {MethodSpec{config.method, config.params, 0, 0}};
  if (!s.devices.empty()) {
    // R copies of D stages run on the first D x R devices, copy r on devices rD .. rD + D - 1
    // (EnumerateSpace checks there are that many).
    const size_t used = static_cast<size_t>(config.stages) * config.data_parallel;
    PIPECAST_CHECK(used <= s.devices.size()) << used << " devices of " << s.devices.size();
    s.devices.resize(used);
  }
  return s;
}

std::string WherePlanKey(const Scenario& scenario, const PlanSpace& space, const std::string& key) {
  const auto it = space.positions.find(key);
  if (it == space.positions.end() || it->second.line == 0) return "plan." + key;
  return fmt::format("{}:{}:{}: plan.{}", scenario.source, it->second.line, it->second.column, key);
}

Result<std::optional<PlanSpace>> ParsePlanSection(std::string_view yaml_text,
                                                  std::string_view filename) {
  const std::string file(filename.empty() ? "<scenario>" : filename);
  try {
    Result<Node> root = internal::LoadOneDocument(yaml_text, file, "a scenario");
    if (!root.ok()) return root.status();
    if (!root->IsMap() || !(*root)["plan"]) return std::optional<PlanSpace>();
    PlanReader reader(file);
    Result<PlanSpace> space = reader.Read((*root)["plan"]);
    if (!space.ok()) return space.status();
    return std::optional<PlanSpace>(std::move(*space));
  } catch (const std::exception& e) {
    return ParseError(fmt::format("{}: invalid plan section: {}", file, e.what()));
  }
}

}  // namespace pipecast::ir
