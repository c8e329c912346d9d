// Method registry, parameter checking and dispatch to the per-method builders.
#include "common/generators.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "common/generators_internal.h"
#include "common/limits.h"
#include "common/replicate.h"
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
    r.push_back(
        {{"gpipe", "GPipe: all forwards, then all backwards, flush every minibatch", false, {}},
         BuildGpipe});
    r.push_back({{"1f1b",
                  "1F1B with a flush every minibatch (PipeDream-Flush, DAPPLE, Megatron)",
                  false,
                  {}},
                 BuildOneFOneB});
    r.push_back({{"interleaved",
                  "Interleaved 1F1B (Megatron-LM): v chunks per device",
                  false,
                  {{"chunks",
                    "2",
                    "model chunks (virtual stages) per device, >= 1",
                    ParamType::kPositiveInt,
                    {}}}},
                 BuildInterleaved});
    r.push_back({{"zb-h1", "Zero Bubble H1: split backward, 1F1B memory", false, {}}, BuildZbH1});
    r.push_back({{"zb-h2", "Zero Bubble H2: split backward, more warm-up, zero bubble", false, {}},
                 BuildZbH2});
    // The relative pass costs the zero-bubble searches plan with (the repository's defaults).
    const std::vector<ParamInfo> planning = {
        {"cost_f",
         "1000",
         "relative cost of an F the search plans with",
         ParamType::kPositiveInt,
         {}},
        {"cost_b",
         "1000",
         "relative cost of an I (input-gradient backward)",
         ParamType::kPositiveInt,
         {}},
        {"cost_w", "1000", "relative cost of a W (weight gradient)", ParamType::kPositiveInt, {}},
        {"cost_comm",
         "1",
         "relative cost of a transfer between stages",
         ParamType::kNonNegativeInt,
         {}}};
    auto with_limit = [&](const std::string& auto_help) {
      std::vector<ParamInfo> params = {
          {"memory_limit",
           "auto",
           "microbatches a stage may hold between F and W; " + auto_help,
           ParamType::kPositiveIntOrAuto,
           {}}};
      params.insert(params.end(), planning.begin(), planning.end());
      return params;
    };
    r.push_back(
        {{"zb-1p", "Zero Bubble 1p: greedy split-backward schedule within 1F1B's activation memory",
          false, with_limit("auto = D (1F1B's peak)")},
         BuildZbGreedy});
    r.push_back(
        {{"zb-2p", "Zero Bubble 2p: greedy split-backward schedule within twice 1F1B's memory",
          false, with_limit("auto = 2D")},
         BuildZbGreedy});
    r.push_back({{"zb-v", "Zero Bubble V: two chunks per device in a V, 1F1B's activation memory",
                  false, planning},
                 BuildZbV});
    r.push_back({{"chimera",
                  "Chimera: two pipelines in opposite directions, two stages per device, "
                  "gradients all-reduced between the copies",
                  false,
                  {{"units",
                    "merged",
                    "merged: the whole minibatch as one unit (no bubbles between units); direct: "
                    "basic units of D microbatches one after another (the paper's direct "
                    "concatenation)",
                    ParamType::kChoice,
                    {"merged", "direct"}},
                   {"pipelines",
                    "2",
                    "2f pipelines, f down and f up, for a divisor f of stages/2; each device "
                    "holds 2f stages",
                    ParamType::kPositiveInt,
                    {}}}},
                 BuildChimera});
    r.push_back({{"gems",
                  "GEMS-MAST: two replicas in opposite directions, one microbatch in flight "
                  "per device, the second replica in the memory the first one's backward frees",
                  false,
                  {}},
                 BuildGems});
    r.push_back({{"avgpipe",
                  "AvgPipe: P pipelines on their own batches, kept together by elastic "
                  "averaging with a reference model",
                  false,
                  {{"pipelines", "2", "parallel pipelines P, each on its own devices and batch",
                    ParamType::kPositiveInt, {}},
                   {"advance", "0",
                    "extra warm-up forwards per stage (advance forward propagation): 0 is "
                    "1F1B, M or more is all forwards first",
                    ParamType::kNonNegativeInt, {}},
                   {"alpha", "",
                    "elastic averaging rate in [0, 1) (default 0.9/P, EASGD's beta/P)",
                    ParamType::kFraction, {}},
                   {"period", "1", "optimizer steps between averagings", ParamType::kPositiveInt,
                    {}},
                   {"phase", "0",
                    "steps taken before this program (pipecast run sets it per evaluation "
                    "segment, so averaging keeps one cadence)",
                    ParamType::kNonNegativeInt, {}}}},
                 BuildAvgPipe});
    r.push_back({{"pipedream",
                  "PipeDream: asynchronous 1F1B with weight stashing",
                  true,
                  {{"vertical_sync",
                    "false",
                    "every stage uses the weight version stage 0 used for the input",
                    ParamType::kChoice,
                    {"true", "false"}}}},
                 BuildPipeDream});
    r.push_back({{"pipedream-2bw",
                  "PipeDream-2BW: double-buffered weights, one step per minibatch",
                  true,
                  {}},
                 BuildPipeDream2BW});
    r.push_back({{"spectrain",
                  "SpecTrain: momentum-based weight prediction",
                  true,
                  {{"variant",
                    "v1",
                    "v1: predict in F and B with the paper's two horizons; v2: predict once "
                    "with s = D-k-1 and reuse in B",
                    ParamType::kChoice,
                    {"v1", "v2"}}}},
                 BuildSpecTrain});
    r.push_back({{"xpipe",
                  "XPipe: Adam-based prediction for a bellwether per minibatch",
                  true,
                  {{"horizon",
                    "round_trip",
                    "round_trip: s reaches the version the device has when the minibatch's "
                    "last microbatch finishes its round trip on stage 0 (the seed's "
                    "definition); sequential: the version sequential training uses for the "
                    "minibatch (the paper's figure); formula: the seed's closed forms",
                    ParamType::kChoice,
                    {"round_trip", "sequential", "formula"}},
                   {"rounding",
                    "half_even",
                    "rounding of the formula horizons",
                    ParamType::kChoice,
                    {"half_even", "half_up"}}}},
                 BuildXPipe});
    r.push_back({{"pipemare",
                  "PipeMare: asynchronous, learning-rate rescheduling and discrepancy "
                  "correction",
                  true,
                  {{"correction",
                    "true",
                    "backward uses weights corrected toward the "
                    "forward's (T2)",
                    ParamType::kChoice,
                    {"true", "false"}},
                   {"lr_warmup_steps",
                    "0",
                    "K of the T1 learning-rate rescheduling (executor)",
                    ParamType::kNonNegativeInt,
                    {}},
                   {"decay",
                    "0.5",
                    "velocity decay constant of the correction (executor)",
                    ParamType::kFraction,
                    {}},
                   {"decay_scaling",
                    "shared",
                    "shared: one decay for every stage; per_stage: decay^(1/tau_k) with tau_k "
                    "the stage's delay (executor)",
                    ParamType::kChoice,
                    {"shared", "per_stage"}}}},
                 BuildPipeMare});
    r.push_back({{"pipeoptim",
                  "PipeOptim: optimizer-dependent weight prediction",
                  true,
                  {{"horizon",
                    "paper",
                    "paper: s = D-k-1; code: s = D-k (official code)",
                    ParamType::kChoice,
                    {"paper", "code"}},
                   {"delta",
                    "paper",
                    "paper: Table I; exact: the last applied step incl. decoupled weight "
                    "decay; code: the official code's look-ahead",
                    ParamType::kChoice,
                    {"paper", "exact", "code"}}}},
                 BuildPipeOptim});
    r.push_back({{"paci",
                  "PACI: local gradient accumulation bounds version drift",
                  true,
                  {{"accumulation",
                    "",
                    "backwards per optimizer step a (default: microbatches)",
                    ParamType::kPositiveInt,
                    {}},
                   {"allowed_lagging",
                    "auto",
                    "in-flight forward cap per stage: auto = D-k, or an integer for all stages",
                    ParamType::kPositiveIntOrAuto,
                    {}}}},
                 BuildPaci});
    r.push_back({{"xgrad",
                  "XGrad: a flushed schedule whose F and B run at predicted weights",
                  false,
                  {{"schedule",
                    "1f1b",
                    "the flushed order the prediction is added to",
                    ParamType::kChoice,
                    {"1f1b", "gpipe"}},
                   {"horizon",
                    "1",
                    "s: predict s optimizer steps ahead (0: plain training)",
                    ParamType::kNonNegativeInt,
                    {}}}},
                 BuildXGrad});
    r.push_back({{"wpipe",
                  "WPipe: two chunk groups per device updated alternately (double-grouped "
                  "weights)",
                  true,
                  {}},
                 BuildWPipe});
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
  constexpr int64_t kMax = kMaxCount;
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

Status CheckVirtualStages(int32_t devices, int64_t chunks) {
  if (static_cast<int64_t>(devices) * chunks <= kMaxCount) return Status::Ok();
  return InvalidArgument("stages x chunks is " +
                         std::to_string(static_cast<int64_t>(devices) * chunks) +
                         " virtual stages, more than " + std::to_string(kMaxCount));
}

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

namespace {

// The registry entry of `method`, or an error naming the known methods.
Result<const MethodEntry*> FindEntry(const std::string& method) {
  std::vector<std::string> names;
  for (const auto& e : Registry()) {
    if (e.info.name == method) return &e;
    names.push_back(e.info.name);
  }
  std::string msg = "unknown method '" + method + "'";
  const std::string guess = DidYouMean(method, names);
  if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
  msg += "; known methods:";
  for (const auto& n : names) msg += " " + n;
  return InvalidArgument(msg);
}

Status CheckSizes(const GenerateOptions& o) {
  const auto check = [](const char* what, int64_t value) -> Status {
    if (value >= 1 && value <= kMaxCount) return Status::Ok();
    return InvalidArgument(std::string(what) + " must be between 1 and " +
                           std::to_string(kMaxCount) + ", got " + std::to_string(value));
  };
  PIPECAST_RETURN_IF_ERROR(check("stages (devices)", o.devices));
  PIPECAST_RETURN_IF_ERROR(check("microbatches", o.microbatches));
  PIPECAST_RETURN_IF_ERROR(check("minibatches", o.minibatches));
  PIPECAST_RETURN_IF_ERROR(
      check("microbatches x minibatches", static_cast<int64_t>(o.microbatches) * o.minibatches));
  PIPECAST_RETURN_IF_ERROR(check("data_parallel", o.data_parallel));
  if (o.method == "avgpipe" && o.data_parallel > 1) {
    return InvalidArgument("avgpipe with data_parallel " + std::to_string(o.data_parallel) +
                           ": its pipelines are its copies, averaged rather than all-reduced; "
                           "set its pipelines parameter instead");
  }
  PIPECAST_RETURN_IF_ERROR(check("data_parallel x stages", static_cast<int64_t>(o.data_parallel) *
                                                               o.devices));
  PIPECAST_RETURN_IF_ERROR(check("data_parallel x microbatches x minibatches",
                                 static_cast<int64_t>(o.data_parallel) * o.microbatches *
                                     o.minibatches));
  if (o.microbatch_size >= 1 && o.microbatch_size <= kMaxMicrobatchSize) return Status::Ok();
  return InvalidArgument("microbatch_size must be between 1 and " +
                         std::to_string(kMaxMicrobatchSize) + ", got " +
                         std::to_string(o.microbatch_size));
}

// Parameters that existed once and were removed, with what to do instead.
std::string RemovedParameterHint(const std::string& method, const std::string& key) {
  if (method == "pipeoptim" && key == "optimizer")
    return "; it was removed: ΔW follows the optimizer of the job, so drop this key";
  return "";
}

// Parameter values that were renamed, with the new name.
std::string RenamedValueHint(const std::string& method, const std::string& key,
                             const std::string& value) {
  if (method == "xpipe" && key == "horizon" && value == "schedule")
    return " (the former default 'schedule' is now 'sequential'; the new default round_trip "
           "follows the seed's definition, docs/methods.md)";
  return "";
}

// Every parameter of the method: the given ones, checked, and the defaults of the others.
Result<std::map<std::string, std::string>> CompleteParams(
    const MethodInfo& info, const std::map<std::string, std::string>& given) {
  std::map<std::string, std::string> params;
  std::vector<std::string> keys;
  for (const ParamInfo& p : info.params) {
    keys.push_back(p.name);
    params[p.name] = p.default_value;
  }
  for (const auto& [key, value] : given) {
    const ParamInfo* param = nullptr;
    for (const ParamInfo& p : info.params)
      if (p.name == key) param = &p;
    if (param == nullptr) {
      std::string msg = "method '" + info.name + "' has no parameter '" + key + "'";
      const std::string guess = DidYouMean(key, keys);
      if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
      if (keys.empty()) {
        msg += "; it takes no parameters";
      } else {
        msg += "; its parameters:";
        for (const auto& k : keys) msg += " " + k;
      }
      return InvalidArgument(msg + RemovedParameterHint(info.name, key));
    }
    if (Status valid = CheckValue(info.name, *param, value); !valid.ok()) {
      return InvalidArgument(valid.message() + RenamedValueHint(info.name, key, value));
    }
    params[key] = value;
  }
  return params;
}

// The typed form of complete, checked parameters. PACI's empty accumulation means "M" and is
// filled in by the caller.
MethodOptions TypedOptions(const std::string& method,
                           const std::map<std::string, std::string>& params) {
  auto get = [&](const char* key) -> const std::string& { return params.at(key); };
  auto integer = [&](const char* key) {
    int64_t v = 0;
    ParseInt(get(key), &v);
    return v;
  };
  MethodOptions o;
  if (method == "interleaved") o.chunks = static_cast<int32_t>(integer("chunks"));
  if (method == "zb-v") o.chunks = 2;
  if (method == "zb-1p" || method == "zb-2p") o.post_validation = true;
  if (method == "pipedream") o.vertical_sync = get("vertical_sync") == "true";
  if (method == "wpipe") o.records_until_step = o.completion_by_second_group = true;
  if (method == "spectrain") o.delta = DeltaRule::kSpecTrain;
  if (method == "xpipe") o.delta = DeltaRule::kXPipe;
  if (method == "pipeoptim") {
    const std::string& d = get("delta");
    o.delta = d == "exact" ? DeltaRule::kExact : d == "code" ? DeltaRule::kCode : DeltaRule::kPaper;
  }
  if (method == "pipemare") {
    o.pipemare.correction = get("correction") == "true";
    o.pipemare.lr_warmup_steps = integer("lr_warmup_steps");
    o.pipemare.decay = std::strtod(get("decay").c_str(), nullptr);
    o.pipemare.decay_scaling =
        get("decay_scaling") == "per_stage" ? DecayScaling::kPerStage : DecayScaling::kShared;
  }
  if (method == "avgpipe") {
    o.elastic_alpha = get("alpha").empty()
                          ? 0.9 / static_cast<double>(integer("pipelines"))
                          : std::strtod(get("alpha").c_str(), nullptr);
  }
  if (method == "paci") {
    if (!get("accumulation").empty())
      o.accumulation = static_cast<int32_t>(integer("accumulation"));
    if (get("allowed_lagging") != "auto")
      o.allowed_lagging = static_cast<int32_t>(integer("allowed_lagging"));
  }
  return o;
}

}  // namespace

Result<MethodOptions> MethodOptionsFor(const std::string& method,
                                       const std::map<std::string, std::string>& params) {
  const MethodInfo* info = FindMethod(method);
  if (info == nullptr) return MethodOptions{};
  std::map<std::string, std::string> known;
  for (const auto& [key, value] : params) {
    for (const ParamInfo& p : info->params)
      if (p.name == key) known.emplace(key, value);
  }
  auto complete = CompleteParams(*info, known);
  if (!complete.ok()) return complete.status();
  return TypedOptions(method, *complete);
}

Result<ProgramSize> SizeOf(const GenerateOptions& o) {
  auto entry = FindEntry(o.method);
  if (!entry.ok()) return entry.status();
  PIPECAST_RETURN_IF_ERROR(CheckSizes(o));
  auto params = CompleteParams((*entry)->info, o.params);
  if (!params.ok()) return params.status();
  const std::string& m = o.method;
  int64_t chunks = 1;
  if (m == "interleaved") ParseInt(params->at("chunks"), &chunks);
  if (m == "zb-v" || m == "wpipe") chunks = 2;
  PIPECAST_RETURN_IF_ERROR(internal::CheckVirtualStages(o.devices, chunks));
  ProgramSize size;
  size.devices = o.devices;
  size.stages = static_cast<int32_t>(o.devices * chunks);
  size.microbatches = static_cast<int64_t>(o.microbatches) * o.minibatches;
  const bool split = m == "zb-h1" || m == "zb-h2" || m == "zb-1p" || m == "zb-2p" || m == "zb-v";
  size.compute_actions = (split ? 3 : 2) * size.cells();
  // Steps per device: one per minibatch (synchronous, 2BW, XPipe), one per backward (PipeDream,
  // SpecTrain, PipeMare, PipeOptim), one per `accumulation` backwards and a last one (PACI),
  // one per minibatch and a last one for the first group's last gradients (WPipe).
  int64_t per_device = o.minibatches + (m == "wpipe" ? 1 : 0);
  if (m == "pipedream" || m == "spectrain" || m == "pipemare" || m == "pipeoptim") {
    per_device = size.microbatches;
  } else if (m == "paci") {
    int64_t a = o.microbatches;
    if (!params->at("accumulation").empty()) ParseInt(params->at("accumulation"), &a);
    per_device = (size.microbatches + a - 1) / a;
  }
  size.steps = per_device * o.devices;
  size.stashes =
      m == "pipedream" || (m == "spectrain" && params->at("variant") == "v2") ||
      (m == "xgrad" && params->at("horizon").find_first_not_of('0') != std::string::npos);
  size.tracked_copies = size.stashes || m == "pipedream-2bw" || m == "wpipe" ||
                        (m == "pipemare" && params->at("correction") == "true");
  if (m == "chimera" || m == "gems") {
    int64_t pipelines = 2;
    if (m == "chimera") ParseInt(params->at("pipelines"), &pipelines);
    size.collectives = pipelines * o.devices * o.minibatches;
  }
  if (m == "avgpipe") {
    int64_t p = 1, period = 1;
    ParseInt(params->at("pipelines"), &p);
    ParseInt(params->at("period"), &period);
    size.devices = static_cast<int32_t>(std::min<int64_t>(p * o.devices, INT32_MAX));
    size.microbatches *= p;
    size.compute_actions *= p;
    size.steps *= p;
    size.collectives = p * o.devices * (o.minibatches / period);
  }
  if (o.data_parallel > 1) {
    const int64_t r = o.data_parallel;
    // Without reductions of its own, every Step gets one per stage on its device.
    if (size.collectives == 0) size.collectives = size.steps * size.stages / o.devices;
    size.devices = static_cast<int32_t>(std::min<int64_t>(r * o.devices, INT32_MAX));
    size.microbatches *= r;
    size.compute_actions *= r;
    size.steps *= r;
    size.collectives *= r;
  }
  return size;
}

Result<Program> Generate(const GenerateOptions& o) { return Generate(o, DeviceSink()); }

Result<Program> Generate(const GenerateOptions& o, const DeviceSink& sink) {
  auto entry = FindEntry(o.method);
  if (!entry.ok()) return entry.status();
  PIPECAST_RETURN_IF_ERROR(CheckSizes(o));
  auto params = CompleteParams((*entry)->info, o.params);
  if (!params.ok()) return params.status();
  internal::BuildContext ctx{o, std::move(*params), sink ? &sink : nullptr};
  if (o.method == "avgpipe" && ctx.params["alpha"].empty()) {
    int64_t p = 1;
    ParseInt(ctx.params["pipelines"], &p);
    char alpha[32];
    std::snprintf(alpha, sizeof alpha, "%.6g", 0.9 / static_cast<double>(p));
    ctx.params["alpha"] = alpha;
  }
  if (o.method == "paci" && ctx.params["accumulation"].empty())
    ctx.params["accumulation"] = std::to_string(o.microbatches);
  if (o.data_parallel > 1) ctx.sink = nullptr;  // the copies are made from the whole program
  auto program = (*entry)->build(ctx);
  if (program.ok()) program->options = TypedOptions(o.method, ctx.params);
  if (!program.ok() || o.data_parallel == 1) return program;
  auto copies = ReplicateForDataParallel(*program, o.data_parallel);
  if (!copies.ok() || !sink) return copies;
  for (int32_t d = 0; d < copies->num_devices; ++d) sink(d, std::move(copies->devices[d]));
  copies->devices.assign(copies->devices.size(), {});  // the sink has them
  return copies;
}

}  // namespace pipecast::ir
