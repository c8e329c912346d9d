// Method registry, parameter checking and dispatch to the per-method builders.
#include "common/generators.h"

#include <algorithm>
#include <charconv>
#include <functional>

#include "common/generators_internal.h"
#include "common/suggest.h"

namespace pipecast::ir {
namespace {

using Builder = std::function<Result<Program>(const internal::BuildContext&)>;

struct MethodEntry {
  MethodInfo info;
  Builder build;
};

const std::vector<MethodEntry>& Registry() {
  static const std::vector<MethodEntry> kRegistry = [] {
    using namespace internal;
    std::vector<MethodEntry> r;
    r.push_back({{"gpipe", "GPipe: all forwards, then all backwards, flush every minibatch", false,
                  {}},
                 BuildGpipe});
    r.push_back({{"1f1b",
                  "1F1B with a flush every minibatch (PipeDream-Flush, DAPPLE, Megatron)", false,
                  {}},
                 BuildOneFOneB});
    r.push_back({{"interleaved", "Interleaved 1F1B (Megatron-LM): v chunks per device", false,
                  {{"chunks", "2", "model chunks (virtual stages) per device, >= 1",
                    ParamType::kPositiveInt, {}}}},
                 BuildInterleaved});
    r.push_back({{"zb-h1", "Zero Bubble H1: split backward, 1F1B memory", false, {}},
                 BuildZbH1});
    r.push_back({{"zb-h2", "Zero Bubble H2: split backward, more warm-up, zero bubble", false,
                  {}},
                 BuildZbH2});
    r.push_back({{"pipedream", "PipeDream: asynchronous 1F1B with weight stashing", true,
                  {{"vertical_sync", "false",
                    "every stage uses the weight version stage 0 used for the input",
                    ParamType::kChoice, {"true", "false"}}}},
                 BuildPipeDream});
    r.push_back({{"pipedream-2bw",
                  "PipeDream-2BW: double-buffered weights, one step per minibatch", true, {}},
                 BuildPipeDream2BW});
    r.push_back({{"spectrain", "SpecTrain: momentum-based weight prediction", true,
                  {{"variant", "v1",
                    "v1: predict in F and B with the paper's two horizons; v2: predict once "
                    "with s = D-k-1 and reuse in B",
                    ParamType::kChoice, {"v1", "v2"}}}},
                 BuildSpecTrain});
    r.push_back({{"xpipe", "XPipe: Adam-based prediction for a bellwether per minibatch", true,
                  {{"horizon", "schedule",
                    "schedule: s reaches the version sequential training uses for the "
                    "minibatch (matches the paper's figure); formula: the seed closed forms",
                    ParamType::kChoice, {"schedule", "formula"}},
                   {"rounding", "half_even", "rounding of the formula horizons",
                    ParamType::kChoice, {"half_even", "half_up"}}}},
                 BuildXPipe});
    r.push_back({{"pipemare",
                  "PipeMare: asynchronous, learning-rate rescheduling and discrepancy "
                  "correction",
                  true,
                  {{"correction", "true", "backward uses weights corrected toward the "
                                          "forward's (T2)",
                    ParamType::kChoice, {"true", "false"}},
                   {"lr_warmup_steps", "0", "K of the T1 learning-rate rescheduling (executor)",
                    ParamType::kNonNegativeInt, {}},
                   {"decay", "0.5", "velocity decay constant of the correction (executor)",
                    ParamType::kFraction, {}}}},
                 BuildPipeMare});
    r.push_back({{"pipeoptim", "PipeOptim: optimizer-dependent weight prediction", true,
                  {{"horizon", "paper", "paper: s = D-k-1; code: s = D-k (official code)",
                    ParamType::kChoice, {"paper", "code"}},
                   {"optimizer", "sgdm", "optimizer whose update rule gives dW (executor)",
                    ParamType::kChoice, {"sgdm", "adam", "adamw"}},
                   {"delta", "paper",
                    "paper: Table I; exact: the last applied step incl. decoupled weight "
                    "decay; code: the official code's look-ahead",
                    ParamType::kChoice, {"paper", "exact", "code"}}}},
                 BuildPipeOptim});
    r.push_back({{"paci", "PACI: local gradient accumulation bounds version drift", true,
                  {{"accumulation", "",
                    "backwards per optimizer step a (default: microbatches)",
                    ParamType::kPositiveInt, {}},
                   {"allowed_lagging", "auto",
                    "in-flight forward cap per stage: auto = D-k, or an integer for all stages",
                    ParamType::kPositiveIntOrAuto, {}}}},
                 BuildPaci});
    return r;
  }();
  return kRegistry;
}

bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  return ec == std::errc() && ptr == end;
}


// Ok if `value` is what `info` accepts; else a message naming the method, key and what is valid.
Status CheckValue(const std::string& method, const ParamInfo& info, const std::string& value) {
  const std::string where = "parameter '" + info.name + "' of method '" + method + "'";
  constexpr int64_t kMax = 1 << 20;
  int64_t v = 0;
  switch (info.type) {
    case ParamType::kChoice: {
      if (std::find(info.choices.begin(), info.choices.end(), value) != info.choices.end())
        return Status::Ok();
      std::string msg = where + " must be one of";
      for (const auto& c : info.choices) msg += " " + c;
      return InvalidArgument(msg + ", got '" + value + "'");
    }
    case ParamType::kPositiveIntOrAuto:
      if (value == "auto") return Status::Ok();
      [[fallthrough]];
    case ParamType::kPositiveInt:
      if (ParseInt(value, &v) && v >= 1 && v <= kMax) return Status::Ok();
      return InvalidArgument(where + " must be a positive integer" +
                             (info.type == ParamType::kPositiveIntOrAuto ? " or auto" : "") +
                             ", got '" + value + "'");
    case ParamType::kNonNegativeInt:
      if (ParseInt(value, &v) && v >= 0 && v <= kMax) return Status::Ok();
      return InvalidArgument(where + " must be a non-negative integer, got '" + value + "'");
    case ParamType::kFraction: {
      char* end = nullptr;
      const double d = std::strtod(value.c_str(), &end);
      if (!value.empty() && *end == '\0' && d >= 0.0 && d < 1.0) return Status::Ok();
      return InvalidArgument(where + " must be a number in [0, 1), got '" + value + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

const std::vector<MethodInfo>& Methods() {
  static const std::vector<MethodInfo> kMethods = [] {
    std::vector<MethodInfo> m;
    for (const auto& e : Registry()) m.push_back(e.info);
    return m;
  }();
  return kMethods;
}

const MethodInfo* FindMethod(const std::string& name) {
  for (const auto& m : Methods())
    if (m.name == name) return &m;
  return nullptr;
}

std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates) {
  return ClosestMatch(word, std::vector<std::string_view>(candidates.begin(), candidates.end()));
}

namespace internal {

int32_t BuildContext::IntParam(const std::string& key) const {
  int64_t v = 0;
  ParseInt(params.at(key), &v);
  return static_cast<int32_t>(v);
}

bool BuildContext::BoolParam(const std::string& key) const { return params.at(key) == "true"; }

Program EmptyProgram(const BuildContext& ctx, int32_t stages_per_device) {
  const GenerateOptions& o = ctx.options;
  Program p;
  p.method = o.method;
  p.params = ctx.params;
  p.num_devices = o.devices;
  p.num_stages = o.devices * stages_per_device;
  p.placement = RoundRobinPlacement(p.num_stages, p.num_devices);
  p.microbatches = o.microbatches;
  p.minibatches = o.minibatches;
  p.microbatch_size = o.microbatch_size;
  p.devices.assign(o.devices, {});
  return p;
}

}  // namespace internal

Result<Program> Generate(const GenerateOptions& o) {
  const MethodEntry* entry = nullptr;
  std::vector<std::string> names;
  for (const auto& e : Registry()) {
    names.push_back(e.info.name);
    if (e.info.name == o.method) entry = &e;
  }
  if (entry == nullptr) {
    std::string msg = "unknown method '" + o.method + "'";
    const std::string guess = DidYouMean(o.method, names);
    if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
    msg += "; known methods:";
    for (const auto& n : names) msg += " " + n;
    return InvalidArgument(msg);
  }
  constexpr int32_t kMaxCount = 1 << 20;
  if (o.devices < 1 || o.devices > kMaxCount)
    return InvalidArgument("stages (devices) must be between 1 and 1048576, got " +
                           std::to_string(o.devices));
  if (o.microbatches < 1 || o.microbatches > kMaxCount)
    return InvalidArgument("microbatches must be between 1 and 1048576, got " +
                           std::to_string(o.microbatches));
  if (o.minibatches < 1 || o.minibatches > kMaxCount)
    return InvalidArgument("minibatches must be between 1 and 1048576, got " +
                           std::to_string(o.minibatches));
  if (static_cast<int64_t>(o.microbatches) * o.minibatches > kMaxCount)
    return InvalidArgument("microbatches x minibatches must be at most 1048576, got " +
                           std::to_string(static_cast<int64_t>(o.microbatches) * o.minibatches));
  if (o.microbatch_size < 1)
    return InvalidArgument("microbatch_size must be >= 1, got " +
                           std::to_string(o.microbatch_size));

  internal::BuildContext ctx{o, {}};
  std::vector<std::string> keys;
  for (const ParamInfo& p : entry->info.params) {
    keys.push_back(p.name);
    ctx.params[p.name] = p.default_value;
  }
  for (const auto& [key, value] : o.params) {
    const ParamInfo* info = nullptr;
    for (const ParamInfo& p : entry->info.params)
      if (p.name == key) info = &p;
    if (info == nullptr) {
      std::string msg = "method '" + o.method + "' has no parameter '" + key + "'";
      const std::string guess = DidYouMean(key, keys);
      if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
      if (keys.empty()) {
        msg += "; it takes no parameters";
      } else {
        msg += "; its parameters:";
        for (const auto& k : keys) msg += " " + k;
      }
      return InvalidArgument(msg);
    }
    if (Status valid = CheckValue(o.method, *info, value); !valid.ok()) return valid;
    ctx.params[key] = value;
  }
  if (o.method == "paci" && ctx.params["accumulation"].empty())
    ctx.params["accumulation"] = std::to_string(o.microbatches);
  return entry->build(ctx);
}

}  // namespace pipecast::ir
