// The sequential reference trainer (reference_trainer.h). Three parts: what each method's
// definition says (parameters, local orders, weight rules), the step accounting along those
// orders, and the microbatch-by-microbatch training with a history of versions per stage.
#include "runtime/reference_trainer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "models/loss.h"

namespace pipecast::runtime::testing {
namespace {

using models::DeltaRule;
using models::OptimizerKind;
using Key = std::pair<int32_t, int32_t>;  // (virtual stage, global microbatch)

// ---------------------------------------------------------------------------------------------
// The methods as their definitions parameterise them (docs/methods.md).

struct Definition {
  std::string method;
  int32_t devices = 1;         // D
  int32_t microbatches = 1;    // M
  int32_t minibatches = 1;     // N
  int32_t chunks = 1;          // virtual stages per device (interleaved, zb-v)
  bool v_shape = false;        // zb-v: device k holds stages k and 2D - 1 - k
  bool flush = false;          // synchronous: accumulate a minibatch, step, repeat
  int32_t step_every = 1;      // asynchronous: a step after every `step_every` backwards
  int32_t lagging = 0;         // PACI's in-flight cap for every stage; 0 = D - k
  bool vertical_sync = false;  // pipedream
  bool reuse = false;          // spectrain v2: B reuses the forward's prediction
  // xpipe: the bellwether's target: the version at the end of the minibatch's round trip on
  // stage 0 (default), the version a sequential run uses, or the seed's closed forms.
  enum class XPipeHorizon { kRoundTrip, kSequential, kFormula } xpipe = XPipeHorizon::kRoundTrip;
  bool half_up = false;       // xpipe: the closed forms' rounding of ties
  bool correction = false;    // pipemare T2
  float decay = 0.5f;         // pipemare: velocity decay
  bool code_horizon = false;  // pipeoptim: s = D - k
  std::string xgrad_order;    // xgrad: the flushed order ("1f1b" or "gpipe")
  int32_t xgrad_horizon = 0;  // xgrad: s
  bool wpipe = false;         // two chunk groups per device, each stepping on its own
  bool predicts = false;
  DeltaRule rule = DeltaRule::kPaper;
  // Replicas: copies of every stage, each training its own microbatches, whose gradients a step
  // adds up. Chimera has two directions (a minibatch runs in units of `unit` microbatches, the
  // last one smaller: all M, or D with units=direct; a unit's first half, rounded up, runs down
  // and the rest up); data parallelism makes `data_parallel` copies of the whole method.
  int32_t directions = 1;
  int32_t unit = 1;  // Chimera: microbatches per unit
  int32_t data_parallel = 1;
  // GEMS: the two directions alternate, microbatch j of a minibatch down if j is even, up if odd
  // (instead of Chimera's basic units).
  bool alternate = false;
  // AvgPipe: `pipelines` copies of the flushed order with `advance` extra warm-up forwards, each
  // on its own microbatches and stepping on its own gradients, elastically averaged with rate
  // `alpha` after every `period`-th step (RunAvgPipe).
  int32_t pipelines = 1;
  int32_t advance = 0;
  double alpha = 0;
  int32_t period = 1;

  // Microbatches of the method's own order (one copy's, over every minibatch).
  int32_t total() const { return microbatches * minibatches; }
  int32_t stages() const { return devices * chunks; }
  // The device holding virtual stage s: round-robin, or the V of zb-v.
  int32_t DeviceOf(int32_t s) const {
    if (v_shape && s >= devices) return 2 * devices - 1 - s;
    return s % devices;
  }
  int32_t replicas() const { return directions * data_parallel; }
  int32_t global_total() const { return total() * data_parallel; }
};

// One copy's run of microbatch j of the method's order: the global microbatch it trains and
// the replica it trains on.
struct Unit {
  int32_t global = 0;
  int32_t replica = 0;
};

// Microbatch j of the method's order on each data-parallel copy c: global microbatch
// (n·R + c)·M + j mod M of minibatch n = j div M, on replica c·directions + its direction.
std::vector<Unit> Units(const Definition& d, int32_t j) {
  const int32_t m = d.microbatches, n = j / m, k = j % m;
  const int32_t unit = k / d.unit * d.unit, size = std::min(d.unit, m - unit);
  // Chimera: the unit's microbatches in `directions` contiguous groups in replica order, the
  // first size mod directions one larger; GEMS alternates.
  int32_t direction = 0;
  if (d.alternate) {
    direction = k % 2;
  } else if (d.directions > 1) {
    const int32_t base = size / d.directions, extra = size % d.directions, i = k - unit;
    direction = i < extra * (base + 1) ? i / (base + 1)
                                       : extra + (i - extra * (base + 1)) / std::max(base, 1);
  }
  std::vector<Unit> out;
  for (int32_t c = 0; c < d.data_parallel; ++c)
    out.push_back({(n * d.data_parallel + c) * m + k, c * d.directions + direction});
  return out;
}

// Reads a method's parameters: each accessor consumes a key and gives its value or default;
// the first bad value, or a key nothing consumed, is reported by Finish.
class Params {
 public:
  Params(const std::string& method, const std::map<std::string, std::string>& given)
      : method_(method), given_(given) {}

  // One of `choices`; the first is the default.
  std::string Choice(const std::string& key, const std::vector<std::string>& choices) {
    const std::string* v = Take(key);
    if (v == nullptr) return choices.front();
    if (std::find(choices.begin(), choices.end(), *v) != choices.end()) return *v;
    Fail(key, *v, "is not one of its choices");
    return choices.front();
  }
  // An integer >= `least`; "auto" gives 0 when `allow_auto`.
  int32_t Integer(const std::string& key, int32_t fallback, int32_t least, bool allow_auto) {
    const std::string* v = Take(key);
    if (v == nullptr) return fallback;
    if (allow_auto && *v == "auto") return 0;
    int32_t out = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec == std::errc() && end == v->data() + v->size() && out >= least) return out;
    Fail(key, *v, "is not an integer >= " + std::to_string(least));
    return fallback;
  }
  // A number in [0, 1).
  double Fraction(const std::string& key, double fallback) {
    const std::string* v = Take(key);
    if (v == nullptr) return fallback;
    char* end = nullptr;
    const double out = std::strtod(v->c_str(), &end);
    if (!v->empty() && *end == '\0' && out >= 0 && out < 1) return out;
    Fail(key, *v, "is not in [0, 1)");
    return fallback;
  }
  void Fail(const std::string& key, const std::string& value, const std::string& why) {
    if (error_.ok())
      error_ = InvalidArgument(method_ + ": parameter " + key + "=" + value + " " + why);
  }
  Status Finish() const {
    if (!error_.ok()) return error_;
    for (const auto& [key, value] : given_)
      if (!used_.count(key)) return InvalidArgument(method_ + " has no parameter '" + key + "'");
    return Status::Ok();
  }

 private:
  const std::string* Take(const std::string& key) {
    used_.insert(key);
    auto it = given_.find(key);
    return it == given_.end() ? nullptr : &it->second;
  }

  const std::string& method_;
  const std::map<std::string, std::string>& given_;
  std::set<std::string> used_;
  Status error_;
};

// The per-method parts of Define.
void DefinePredicting(const MethodCase& c, Params& p, Definition& d) {
  const OptimizerKind kind = c.optimizer.kind;
  const bool adam = kind == OptimizerKind::kAdam || kind == OptimizerKind::kAdamW;
  d.predicts = true;
  if (c.method == "spectrain") {  // dW: the SpecTrain rule with SGD, the paper rule otherwise
    d.reuse = p.Choice("variant", {"v1", "v2"}) == "v2";
    d.rule = kind == OptimizerKind::kSgd ? DeltaRule::kSpecTrain : DeltaRule::kPaper;
  } else if (c.method == "xpipe") {  // dW: XPipe's Adam rule with Adam/AdamW, else the paper's
    d.step_every = c.microbatches;
    const std::string h = p.Choice("horizon", {"round_trip", "sequential", "formula"});
    d.xpipe = h == "formula"      ? Definition::XPipeHorizon::kFormula
              : h == "sequential" ? Definition::XPipeHorizon::kSequential
                                  : Definition::XPipeHorizon::kRoundTrip;
    d.half_up = p.Choice("rounding", {"half_even", "half_up"}) == "half_up";
    d.rule = adam ? DeltaRule::kXPipe : DeltaRule::kPaper;
  } else {  // pipeoptim: dW by the `delta` rule of the job's optimizer
    d.code_horizon = p.Choice("horizon", {"paper", "code"}) == "code";
    d.rule = *models::ParseDeltaRule(p.Choice("delta", {"paper", "exact", "code"}));
  }
}

Result<Definition> Define(const MethodCase& c) {
  Definition d;
  d.method = c.method;
  d.devices = c.stages;
  d.microbatches = c.microbatches;
  d.minibatches = c.minibatches;
  d.data_parallel = c.data_parallel;
  if (d.devices < 1 || d.microbatches < 1 || d.minibatches < 1 || c.microbatch_size < 1 ||
      d.data_parallel < 1)
    return InvalidArgument(
        "stages, microbatches, minibatches, their size and data_parallel must be >= 1");
  Params p(c.method, c.params);
  const std::string& m = c.method;
  if (m == "gpipe" || m == "1f1b" || m == "zb-h1" || m == "zb-h2") {
    d.flush = true;
  } else if (m == "zb-1p" || m == "zb-2p" || m == "zb-v") {
    // Flushed: the planning parameters choose the order, which a flush makes immaterial.
    d.flush = true;
    if (m != "zb-v") p.Integer("memory_limit", 0, 1, true);
    for (const char* key : {"cost_f", "cost_b", "cost_w"}) p.Integer(key, 1000, 1, false);
    p.Integer("cost_comm", 1, 0, false);
    if (m == "zb-v") {
      d.chunks = 2;
      d.v_shape = true;
    }
  } else if (m == "chimera") {  // synchronous; each direction a 1F1B pipeline (FlushIteration)
    d.flush = true;
    d.unit = p.Choice("units", {"merged", "direct"}) == "direct" ? d.devices : d.microbatches;
    d.directions = p.Integer("pipelines", 2, 2, false);  // 2f copies of every stage
    if (d.devices % 2 != 0 || d.microbatches % 2 != 0)
      return InvalidArgument("chimera needs an even number of stages and of microbatches");
  } else if (m == "gems") {  // synchronous; the directions alternate (Units)
    d.flush = true;
    d.directions = 2;
    d.alternate = true;
    if (d.devices % 2 != 0) return InvalidArgument("gems needs an even number of stages");
  } else if (m == "avgpipe") {  // P flushed pipelines, elastically averaged (RunAvgPipe)
    d.flush = true;
    d.pipelines = p.Integer("pipelines", 2, 1, false);
    d.advance = p.Integer("advance", 0, 0, false);
    d.alpha = p.Fraction("alpha", 0.9 / d.pipelines);
    d.period = p.Integer("period", 1, 1, false);
  } else if (m == "interleaved") {
    d.flush = true;
    d.chunks = p.Integer("chunks", 2, 1, false);
    if (d.microbatches % d.devices != 0)
      return InvalidArgument("interleaved needs microbatches to be a multiple of stages");
  } else if (m == "pipedream") {
    d.vertical_sync = p.Choice("vertical_sync", {"false", "true"}) == "true";
  } else if (m == "pipedream-2bw") {
    d.step_every = d.microbatches;
    if (d.microbatches < d.devices)
      return InvalidArgument("pipedream-2bw needs microbatches >= stages");
  } else if (m == "spectrain" || m == "xpipe" || m == "pipeoptim") {
    DefinePredicting(c, p, d);
  } else if (m == "pipemare") {
    d.correction = p.Choice("correction", {"true", "false"}) == "true";
    d.decay = static_cast<float>(p.Fraction("decay", 0.5));
    if (const int32_t k = p.Integer("lr_warmup_steps", 0, 0, false); k != 0)
      p.Fail("lr_warmup_steps", std::to_string(k),
             "is T1, a learning-rate schedule: give it as MethodCase::learning_rate");
  } else if (m == "paci") {
    d.step_every = p.Integer("accumulation", d.microbatches, 1, false);
    d.lagging = p.Integer("allowed_lagging", 0, 1, true);
  } else if (m == "wpipe") {  // chunk k in the first group, chunk D + k in the second
    d.wpipe = true;
    d.chunks = 2;
  } else if (m == "xgrad") {  // a flushed order; F and B at W - lr·s·dW (Table I's dW)
    d.flush = true;
    d.xgrad_order = p.Choice("schedule", {"1f1b", "gpipe"});
    d.xgrad_horizon = p.Integer("horizon", 1, 0, false);
    d.predicts = d.xgrad_horizon > 0;
    d.rule = DeltaRule::kPaper;
  } else {
    return InvalidArgument("unknown method '" + m + "'");
  }
  PIPECAST_RETURN_IF_ERROR(p.Finish());
  if (d.predicts) {
    auto probe = models::Optimizer::Create(c.optimizer, 1);
    if (!probe.ok()) return probe.status();
    PIPECAST_RETURN_IF_ERROR((*probe)->SupportsRule(d.rule));
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// Local orders (docs/methods.md and the papers it cites).

enum class OpKind { kForward, kBackward, kInputGrad, kWeightGrad, kStep };
struct Op {
  OpKind kind;
  // The pass's stage; for a step, the one stage it updates, or -1 for every stage of the device.
  int32_t stage = -1;
  int32_t microbatch = -1;
  // A step: the index of the device's learning rate it uses; -1 = its own index on the device.
  int32_t rate = -1;
};
using Order = std::vector<Op>;

// Microbatches first .. first + count - 1 of `stage` as passes of `kind`.
Order Passes(OpKind kind, int32_t stage, int32_t first, int32_t count) {
  Order out;
  for (int32_t j = first; j < first + count; ++j) out.push_back({kind, stage, j});
  return out;
}

// A 1F1B order: the first `warmup` forwards, then a forward and a backward in turn while
// forwards remain, then the remaining backwards. An in-flight cap c is c - 1 warm-up forwards:
// the c-th forward fills the cap and each backward frees a place for one more.
// REQUIRES: forwards.size() == backwards.size().
Order OneFOneB(const Order& forwards, const Order& backwards, int32_t warmup) {
  const size_t w = std::min(static_cast<size_t>(std::max(warmup, 0)), forwards.size());
  Order out(forwards.begin(), forwards.begin() + static_cast<long>(w));
  size_t b = 0;
  for (size_t f = w; f < forwards.size(); ++f) {
    out.push_back(forwards[f]);
    out.push_back(backwards[b++]);
  }
  out.insert(out.end(), backwards.begin() + static_cast<long>(b), backwards.end());
  return out;
}

// Megatron's interleaved order for one minibatch (§1.3): op i runs the forward of chunk
// (i mod Dv) div D and the backward of chunk v - 1 - that, for microbatch (i div Dv)·D + i mod D;
// min(2(D - k - 1) + (v - 1)D, Mv) warm-up forwards, all of them when M = D.
Order Interleaved(const Definition& d, int32_t k, int32_t base) {
  const int32_t dv = d.devices * d.chunks, total = d.microbatches * d.chunks;
  Order forwards, backwards;
  for (int32_t i = 0; i < total; ++i) {
    const int32_t chunk = (i % dv) / d.devices;
    const int32_t mb = base + (i / dv) * d.devices + i % d.devices;
    forwards.push_back({OpKind::kForward, chunk * d.devices + k, mb});
    backwards.push_back({OpKind::kBackward, (d.chunks - 1 - chunk) * d.devices + k, mb});
  }
  const int32_t warmup =
      d.microbatches == d.devices
          ? total
          : std::min(2 * (d.devices - k - 1) + (d.chunks - 1) * d.devices, total);
  return OneFOneB(forwards, backwards, warmup);
}

// ZB-H1 (§9.2): the 1F1B order with the backward split; W_j right after I_{j+k}, and the W's
// still missing at the end.
Order ZbH1(const Order& forwards, const Order& inputs, const Order& weights, int32_t k,
           int32_t warmup) {
  Order out;
  size_t next = 0;
  int32_t seen = 0;
  for (const Op& op : OneFOneB(forwards, inputs, warmup)) {
    out.push_back(op);
    if (op.kind == OpKind::kInputGrad && seen++ >= k) out.push_back(weights[next++]);
  }
  out.insert(out.end(), weights.begin() + static_cast<long>(next), weights.end());
  return out;
}

// ZB-H2 (§9.2): w = min(2(D - k) - 1, M) warm-up forwards; then for j = 1..M: I_j, W_{j-2k} if
// j - 2k >= 1, F_{w+j} if w + j <= M (1-based); then the W's still missing.
Order ZbH2(const Order& forwards, const Order& inputs, const Order& weights, int32_t k,
           int32_t devices) {
  const int32_t m = static_cast<int32_t>(forwards.size());
  const int32_t w = std::min(2 * (devices - k) - 1, m);
  Order out(forwards.begin(), forwards.begin() + w);
  int32_t next = 0;
  for (int32_t j = 1; j <= m; ++j) {
    out.push_back(inputs[j - 1]);
    if (j - 2 * k >= 1) out.push_back(weights[next++]);
    if (w + j <= m) out.push_back(forwards[w + j - 1]);
  }
  out.insert(out.end(), weights.begin() + next, weights.end());
  return out;
}

// ZB-1p, ZB-2p and ZB-V are flushed, so their result is the minibatch's mean gradient at the
// minibatch's weights whatever the order, each stage's gradients summed in microbatch order (the
// order of its W's in those schedules): here every stage of device k runs its F's, then its I's,
// then its W's, the first chunk first.
Order SplitFlush(const Definition& d, int32_t k, int32_t base) {
  Order out;
  for (int32_t s = 0; s < d.stages(); ++s) {
    if (d.DeviceOf(s) != k) continue;
    for (OpKind kind : {OpKind::kForward, OpKind::kInputGrad, OpKind::kWeightGrad}) {
      const Order passes = Passes(kind, s, base, d.microbatches);
      out.insert(out.end(), passes.begin(), passes.end());
    }
  }
  return out;
}

// Device k's passes for the minibatch whose first microbatch is `base`, flushed.
Order FlushIteration(const Definition& d, int32_t k, int32_t base) {
  const int32_t m = d.microbatches;
  if (d.method == "zb-1p" || d.method == "zb-2p" || d.method == "zb-v")
    return SplitFlush(d, k, base);
  const Order forwards = Passes(OpKind::kForward, k, base, m);
  const int32_t warmup = std::min(d.devices - k - 1, m);  // 1F1B's D - k - 1 (§1.2)
  const std::string& order = d.method == "xgrad" ? d.xgrad_order : d.method;
  if (order == "interleaved") return Interleaved(d, k, base);
  if (order == "gpipe") {
    Order out = forwards;
    const Order backwards = Passes(OpKind::kBackward, k, base, m);
    out.insert(out.end(), backwards.begin(), backwards.end());
    return out;
  }
  // Chimera: each direction's copy of a stage runs 1F1B over that direction's microbatches, so
  // it accumulates them in microbatch order; one 1F1B order over all of them has that order on
  // each direction (Step sums per direction) and the flushed step counts.
  // GEMS runs each microbatch's F and B before the next one's: 1F1B with no warm-up forward.
  // AvgPipe stretches 1F1B's warm-up by `advance` forwards (all of them first: GPipe's order).
  if (order == "1f1b" || order == "chimera")
    return OneFOneB(forwards, Passes(OpKind::kBackward, k, base, m), warmup);
  if (order == "gems") return OneFOneB(forwards, Passes(OpKind::kBackward, k, base, m), 0);
  if (order == "avgpipe")
    return OneFOneB(forwards, Passes(OpKind::kBackward, k, base, m),
                    std::min(d.devices - k - 1 + d.advance, m));
  const Order inputs = Passes(OpKind::kInputGrad, k, base, m);
  const Order weights = Passes(OpKind::kWeightGrad, k, base, m);
  if (d.method == "zb-h1") return ZbH1(forwards, inputs, weights, k, warmup);
  return ZbH2(forwards, inputs, weights, k, d.devices);
}

// Device k: one flushed iteration per minibatch, each followed by a step.
Order FlushOrder(const Definition& d, int32_t k) {
  Order out;
  for (int32_t n = 0; n < d.minibatches; ++n) {
    const Order it = FlushIteration(d, k, n * d.microbatches);
    out.insert(out.end(), it.begin(), it.end());
    out.push_back({OpKind::kStep});
  }
  return out;
}

// Device k of an asynchronous method: every microbatch of the run in one asynchronous 1F1B
// order with D - k in flight (PACI: its cap, which can shorten the warm-up but not lengthen it
// beyond the D - k a stage holds when its gradients come back in time), a step after every
// `step_every`-th backward, and a last step for gradients still pending.
Order AsyncOrder(const Definition& d, int32_t k) {
  const int32_t cap = d.lagging > 0 ? std::min(d.lagging, d.devices - k) : d.devices - k;
  Order out;
  int32_t pending = 0;
  for (const Op& op : OneFOneB(Passes(OpKind::kForward, k, 0, d.total()),
                               Passes(OpKind::kBackward, k, 0, d.total()), cap - 1)) {
    out.push_back(op);
    if (op.kind == OpKind::kBackward && ++pending == d.step_every) {
      out.push_back({OpKind::kStep});
      pending = 0;
    }
  }
  if (pending > 0) out.push_back({OpKind::kStep});
  return out;
}

// WPipe (Yang et al., ICLR'22) on device k: the first group's stage k and the second group's
// D + k, each stepping once per minibatch on its own. Window p: the first group's forwards of
// minibatch p, its backwards of minibatch p - 1 and its step for them, then the second group's
// forwards and backwards of minibatch p and its step: the first group's forwards of the next
// period come before its backwards of the current one, the second group keeps its order, and
// the groups step alternately. Both steps of window p take the device's rate p.
Order WPipeOrder(const Definition& d, int32_t k) {
  const int32_t m = d.microbatches, g0 = k, g1 = d.devices + k;
  Order out;
  for (int32_t p = 0; p <= d.minibatches; ++p) {
    if (p < d.minibatches) {
      const Order f = Passes(OpKind::kForward, g0, p * m, m);
      out.insert(out.end(), f.begin(), f.end());
    }
    if (p > 0) {
      const Order b = Passes(OpKind::kBackward, g0, (p - 1) * m, m);
      out.insert(out.end(), b.begin(), b.end());
      out.push_back({OpKind::kStep, g0, -1, p});
    }
    if (p < d.minibatches) {
      for (OpKind kind : {OpKind::kForward, OpKind::kBackward}) {
        const Order passes = Passes(kind, g1, p * m, m);
        out.insert(out.end(), passes.begin(), passes.end());
      }
      out.push_back({OpKind::kStep, g1, -1, p});
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Step accounting along the orders.

// One step of a device: the weight gradients it applies, in program order, the stage it updates
// (-1: every stage of the device) and the index of its learning rate.
struct StepGroup {
  std::vector<Key> gradients;
  int32_t stage = -1;
  int32_t rate = 0;
};

// Counters count the steps that update the pass's stage (every step of the device, except
// WPipe's, which update one stage each).
struct Accounting {
  std::vector<std::vector<int32_t>> f_counter, b_counter, applied;  // [stage][microbatch]
  // The index, among its device's steps, of the step applying each gradient.
  std::vector<std::vector<int32_t>> applied_at;
  // Where the F and the B (or I) of each (stage, microbatch) stand in their device's order.
  std::vector<std::vector<int32_t>> f_position, b_position;
  // The steps that directly follow each B (or I) in its device's order.
  std::vector<std::vector<int32_t>> steps_after_b;
  std::vector<std::vector<StepGroup>> groups;  // per device, per step
  std::vector<float> loss_scale;               // per microbatch
};

// Counts steps along each device's order: the counters and positions of every F and B (or I),
// the step that applies each weight gradient (B or W), and each step's group; every pass exactly
// once.
Result<Accounting> Account(const Definition& d, const std::vector<Order>& orders) {
  const int32_t stages = d.stages(), total = d.total();
  Accounting a;
  const std::vector<int32_t> unset(total, -1);
  a.f_counter.assign(stages, unset);
  a.b_counter.assign(stages, unset);
  a.applied.assign(stages, unset);
  a.applied_at.assign(stages, unset);
  std::vector<int32_t> taken(stages, 0);  // steps that updated each stage so far
  a.f_position.assign(stages, unset);
  a.b_position.assign(stages, unset);
  a.steps_after_b.assign(stages, std::vector<int32_t>(total, 0));
  a.groups.resize(orders.size());
  for (size_t dev = 0; dev < orders.size(); ++dev) {
    std::vector<Key> group;
    for (size_t i = 0; i < orders[dev].size(); ++i) {
      const Op& op = orders[dev][i];
      const int32_t index = static_cast<int32_t>(a.groups[dev].size());
      if (op.kind == OpKind::kStep) {
        for (const auto& [s, j] : group) {
          if (a.applied[s][j] != -1) return InvalidArgument("a gradient is applied twice");
          if (op.stage >= 0 && s != op.stage)
            return InvalidArgument("a step applies a gradient of a stage it does not update");
          a.applied[s][j] = taken[s] + 1;
          a.applied_at[s][j] = index;
        }
        for (int32_t s = 0; s < stages; ++s)
          if (d.DeviceOf(s) == static_cast<int32_t>(dev) && (op.stage < 0 || op.stage == s))
            ++taken[s];
        a.groups[dev].push_back({std::move(group), op.stage, op.rate >= 0 ? op.rate : index});
        group.clear();
        continue;
      }
      const int32_t n = op.stage >= 0 ? taken[op.stage] : 0;
      if (op.kind == OpKind::kForward || op.kind == OpKind::kBackward ||
          op.kind == OpKind::kInputGrad) {
        const bool forward = op.kind == OpKind::kForward;
        int32_t& counter = (forward ? a.f_counter : a.b_counter)[op.stage][op.microbatch];
        if (counter != -1) return InvalidArgument("a pass appears twice in the order");
        counter = n;
        (forward ? a.f_position : a.b_position)[op.stage][op.microbatch] = static_cast<int32_t>(i);
        if (!forward) {
          int32_t after = 0;
          for (size_t k = i + 1; k < orders[dev].size() && orders[dev][k].kind == OpKind::kStep;
               ++k)
            ++after;
          a.steps_after_b[op.stage][op.microbatch] = after;
        }
      }
      if (op.kind == OpKind::kBackward || op.kind == OpKind::kWeightGrad)
        group.emplace_back(op.stage, op.microbatch);
    }
    if (!group.empty()) return InvalidArgument("gradients left without a step");
  }
  for (int32_t s = 0; s < stages; ++s)
    for (int32_t j = 0; j < total; ++j)
      if (a.f_counter[s][j] < 0 || a.b_counter[s][j] < 0 || a.applied[s][j] < 1)
        return InvalidArgument("the order misses a pass of microbatch " + std::to_string(j));
  return a;
}

// How many gradients of `stage` the step applying microbatch j's applies.
int32_t GroupSize(const Accounting& a, const Definition& d, int32_t stage, int32_t j) {
  const auto& group = a.groups[d.DeviceOf(stage)][a.applied_at[stage][j]].gradients;
  return static_cast<int32_t>(
      std::count_if(group.begin(), group.end(), [&](const Key& k) { return k.first == stage; }));
}

// The loss of microbatch j is scaled by 1 / (gradients its step applies), the same at every
// stage (otherwise no single scale gives every step the mean of its gradients).
Status ScaleLosses(const Definition& d, Accounting& a) {
  for (int32_t j = 0; j < d.total(); ++j) {
    const int32_t size = GroupSize(a, d, d.stages() - 1, j);
    for (int32_t s = 0; s < d.stages(); ++s)
      if (GroupSize(a, d, s, j) != size)
        return InvalidArgument("stages step over different groups of microbatch " +
                               std::to_string(j));
    // Every copy's microbatches of the step: `size` of each data-parallel copy.
    a.loss_scale.push_back(1.0f / static_cast<float>(size * d.data_parallel));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The weight rules (docs/methods.md).

PassVersion Use(WeightKind kind, int32_t counter, int32_t version, int32_t horizon) {
  if ((kind == WeightKind::kPredicted || kind == WeightKind::kCorrected) && horizon == 0)
    kind = WeightKind::kCurrent;  // W - lr·0·dW and W - 0·delta are W
  return {kind, counter, version, horizon};
}

// Rounds to the nearest integer; a tie goes to the even neighbour, or up with `half_up`.
int32_t RoundHorizon(double x, bool half_up) {
  const double lower = std::floor(x);
  const double above = x - lower;
  if (above != 0.5) return static_cast<int32_t>(above < 0.5 ? lower : lower + 1);
  return static_cast<int32_t>(half_up || std::fmod(lower, 2.0) != 0 ? lower + 1 : lower);
}

// XPipe's target for microbatch j on stage s: the version its minibatch's bellwether stands for
// (docs/methods.md, "XPipe's horizon"). round_trip: the version the stage has when the
// minibatch's last microbatch finishes its round trip on stage 0, i.e. the steps before that
// microbatch's backward on stage 0, and on later stages (whose backward of it comes before the
// round trip ends) also the steps directly after it; sequential: minibatch b itself.
int32_t XPipeTarget(const Definition& d, const Accounting& a, int32_t s, int32_t j) {
  const int32_t m = d.microbatches, b = j / m, last = (b + 1) * m - 1;
  if (d.xpipe == Definition::XPipeHorizon::kSequential) return b;
  return a.b_counter[s][last] + (s > 0 ? a.steps_after_b[s][last] : 0);
}

// The weights of the F of microbatch j on stage s of device k, which has taken n steps (of that
// stage); n0 is the steps stage 0 had taken at its F of j; `target` XPipe's target (XPipeTarget).
PassVersion ForwardPass(const Definition& d, int32_t k, int32_t s, int32_t j, int32_t n, int32_t n0,
                        int32_t target) {
  const int32_t dd = d.devices, m = d.microbatches, b = j / m;
  if (d.method == "pipedream" && d.vertical_sync) return Use(WeightKind::kVersion, n, n0, 0);
  if (d.method == "pipedream-2bw")  // one step stale per minibatch; nothing overlaps at D = 1
    return Use(WeightKind::kVersion, n, dd > 1 ? std::max(0, b - 1) : b, 0);
  if (d.method == "spectrain")
    return Use(WeightKind::kPredicted, n, n, d.reuse ? dd - k - 1 : k / 2 + dd - k - 1);
  if (d.method == "xpipe") {
    const int32_t s = d.xpipe == Definition::XPipeHorizon::kFormula
                          ? RoundHorizon((dd + m - k / 2.0 - 2) / m, d.half_up)
                          : std::max(0, target - n);
    return Use(WeightKind::kPredicted, n, n, s);
  }
  if (d.method == "pipeoptim")
    return Use(WeightKind::kPredicted, n, n, d.code_horizon ? dd - k : dd - k - 1);
  if (d.method == "xgrad") return Use(WeightKind::kPredicted, n, n, d.xgrad_horizon);
  // WPipe: the second group (stage D + k) computes minibatch b with its version b, the first
  // (stage k) with its version max(0, b - 1): one update stale, as 2BW but in one group only.
  if (d.wpipe) return Use(WeightKind::kVersion, n, s >= dd ? b : std::max(0, b - 1), 0);
  return Use(WeightKind::kCurrent, n, n, 0);
}

// The weights of the B (or I) of a microbatch on device k, which has taken n steps; `f` is what
// the microbatch's F on this stage used; `target` XPipe's target for it.
PassVersion BackwardPass(const Definition& d, int32_t k, const PassVersion& f, int32_t n,
                         int32_t target) {
  const int32_t m = d.microbatches;
  if (d.method == "pipedream" || (d.method == "spectrain" && d.reuse) || d.method == "xgrad")
    return {WeightKind::kForwards, n, f.version, f.horizon};
  if (d.method == "pipedream-2bw" || d.wpipe) return Use(WeightKind::kVersion, n, f.version, 0);
  if (d.method == "spectrain") return Use(WeightKind::kPredicted, n, n, k / 2);
  if (d.method == "xpipe") {
    const int32_t s = d.xpipe == Definition::XPipeHorizon::kFormula
                          ? RoundHorizon((m + k / 2 - 1.0) / m, d.half_up)
                          : std::max(0, target - n);
    return Use(WeightKind::kPredicted, n, n, s);
  }
  if (d.method == "pipemare" && d.correction)
    return Use(WeightKind::kCorrected, n, n, n - f.counter);
  return Use(WeightKind::kCurrent, n, n, 0);
}

// ---------------------------------------------------------------------------------------------
// Training, one microbatch at a time.

struct StageVersion {
  std::vector<float> weights;
  int64_t optimizer_steps = 0;
  std::vector<models::StateTensor> optimizer_state;
  std::vector<float> velocity;  // PipeMare's delta after the step that made this version
};

struct StageState {
  const models::Stage<float>* stage = nullptr;
  int32_t device = 0;
  std::vector<StageVersion> history;             // history[n]: after n steps
  std::unique_ptr<models::Optimizer> optimizer;  // the state of the newest version
  std::unique_ptr<models::Optimizer> scratch;    // an older version's state, to predict
  // From the F until the weight gradient, per global microbatch.
  std::map<int32_t, models::StageSaved<float>> saved;
};

class Trainer {
 public:
  Trainer(const MethodCase& c, const Definition& d, const Accounting& a,
          const ReferenceOptions& options)
      : c_(c), d_(d), a_(a), options_(options), next_step_(d.devices, 0) {}

  Result<ReferenceRun> Run(const std::vector<models::Stage<float>>& stages);

 private:
  Status TrainMicrobatch(int32_t j);
  // Takes, per device, every next step whose gradients all come from microbatches < `ready`.
  void StepReady(int32_t ready);
  void Step(int32_t device);
  Result<std::vector<float>> Weights(StageState& st, const PassVersion& use,
                                     const std::vector<float>& forwards);
  // With options_.history, keeps the weights of a predicting pass of (s, j).
  void NotePrediction(int32_t s, int32_t j, bool backward, const PassVersion& use,
                      const std::vector<float>& weights);
  // Fills run.versions and run.predictions (in program order) from what was kept.
  void History(ReferenceRun& run);
  double Lr(int32_t device, int64_t step) const { return c_.learning_rate(device, step); }

  const MethodCase& c_;
  const Definition& d_;
  const Accounting& a_;
  const ReferenceOptions& options_;
  std::vector<StageState> stages_;
  std::vector<int32_t> next_step_;                      // per device
  std::vector<std::vector<MicrobatchRecord>> records_;  // [stage][global microbatch]
  std::vector<double> losses_;                          // per global microbatch
  // Per stage, with options_.history: (position in the device's order, prediction).
  std::vector<std::vector<std::pair<int32_t, PredictionRecord>>> predictions_;
};

Result<ReferenceRun> Trainer::Run(const std::vector<models::Stage<float>>& stages) {
  const std::vector<float> init = c_.model->Init(c_.init_seed);
  const std::vector<std::vector<float>> weights = StageSlices(stages, init);
  for (size_t s = 0; s < stages.size(); ++s) {
    StageState st;
    st.stage = &stages[s];
    st.device = d_.DeviceOf(static_cast<int32_t>(s));
    for (auto* o : {&st.optimizer, &st.scratch}) {
      auto created = models::Optimizer::Create(c_.optimizer, weights[s].size());
      if (!created.ok()) return created.status();
      *o = std::move(*created);
    }
    st.history.push_back(
        {weights[s], 0, st.optimizer->StateTensors(), std::vector<float>(weights[s].size(), 0.0f)});
    stages_.push_back(std::move(st));
  }
  records_.assign(stages.size(), std::vector<MicrobatchRecord>(d_.global_total()));
  losses_.assign(d_.global_total(), 0.0);
  predictions_.resize(stages.size());
  for (int32_t j = 0; j < d_.total(); ++j) {
    StepReady(j);
    PIPECAST_RETURN_IF_ERROR(TrainMicrobatch(j));
  }
  StepReady(d_.total());
  ReferenceRun run;
  for (StageState& st : stages_) run.weights.push_back(st.history.back().weights);
  run.records = std::move(records_);
  run.losses = std::move(losses_);
  run.steps = next_step_;
  if (options_.history) History(run);
  return run;
}

void Trainer::NotePrediction(int32_t s, int32_t j, bool backward, const PassVersion& use,
                             const std::vector<float>& weights) {
  if (!options_.history || use.kind != WeightKind::kPredicted) return;
  const int32_t position = (backward ? a_.b_position : a_.f_position)[s][j];
  predictions_[s].emplace_back(position,
                               PredictionRecord{j, backward, use.version, use.horizon, weights});
}

void Trainer::History(ReferenceRun& run) {
  for (size_t s = 0; s < stages_.size(); ++s) {
    run.versions.emplace_back();
    for (const StageVersion& v : stages_[s].history) run.versions.back().push_back(v.weights);
    auto& kept = predictions_[s];
    std::sort(kept.begin(), kept.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    run.predictions.emplace_back();
    for (auto& [position, p] : kept) run.predictions.back().push_back(std::move(p));
  }
}

// Microbatch j of the method's order, on every data-parallel copy (Units): the passes' weights
// are the same on each (the copies' histories are one), the data and activations their own.
Status Trainer::TrainMicrobatch(int32_t j) {
  const int32_t last = d_.stages() - 1;
  std::vector<PassVersion> forward(stages_.size()), backward(stages_.size());
  std::vector<std::vector<float>> used(stages_.size());  // each F's weights, for its B
  for (int32_t s = 0; s <= last; ++s) {
    forward[s] = ForwardPass(d_, stages_[s].device, s, j, a_.f_counter[s][j], a_.f_counter[0][j],
                             XPipeTarget(d_, a_, s, j));
    auto w = Weights(stages_[s], forward[s], {});
    if (!w.ok()) return w.status();
    NotePrediction(s, j, false, forward[s], *w);
    used[s] = std::move(*w);
  }
  for (const Unit& u : Units(d_, j)) {
    const models::Batch batch = c_.loader->Get(u.global, c_.microbatch_size);
    models::Matrix<float> x = batch.x;
    for (int32_t s = 0; s <= last; ++s)
      x = stages_[s].stage->Forward(used[s], x, &stages_[s].saved[u.global]);
    const auto loss = models::SoftmaxCrossEntropy<float>(x, batch.labels, a_.loss_scale[j]);
    losses_[u.global] = loss.loss;
    models::Matrix<float> dy = loss.dlogits;
    for (int32_t s = last; s >= 0; --s) {
      StageState& st = stages_[s];
      backward[s] =
          BackwardPass(d_, st.device, forward[s], a_.b_counter[s][j], XPipeTarget(d_, a_, s, j));
      MicrobatchRecord& rec = records_[s][u.global];
      rec.forward = forward[s];
      rec.backward = backward[s];
      rec.applied_step = a_.applied[s][j];
      rec.loss_scale = a_.loss_scale[j];
      auto w = Weights(st, backward[s], used[s]);
      if (!w.ok()) return w.status();
      if (u.global == Units(d_, j).front().global) NotePrediction(s, j, true, backward[s], *w);
      dy = st.stage->BackwardInput(*w, dy, &st.saved[u.global]);
    }
  }
  return Status::Ok();
}

Result<std::vector<float>> Trainer::Weights(StageState& st, const PassVersion& use,
                                            const std::vector<float>& forwards) {
  if (use.version > use.counter || use.counter >= static_cast<int32_t>(st.history.size())) {
    return InvalidArgument("a pass needs version " + std::to_string(use.version) + " after " +
                           std::to_string(use.counter) + " steps, but only " +
                           std::to_string(st.history.size()) + " versions exist");
  }
  const StageVersion& v = st.history[use.version];
  switch (use.kind) {
    case WeightKind::kCurrent:
    case WeightKind::kVersion:
      return v.weights;
    case WeightKind::kForwards:
      return forwards;
    case WeightKind::kPredicted: {
      PIPECAST_RETURN_IF_ERROR(st.scratch->LoadState(v.optimizer_steps, v.optimizer_state));
      std::vector<float> out(v.weights.size());
      st.scratch->Predict(v.weights, Lr(st.device, use.version), use.horizon, d_.rule, out);
      return out;
    }
    case WeightKind::kCorrected: {
      std::vector<float> out = v.weights;
      const float gap = static_cast<float>(use.horizon);
      for (size_t i = 0; i < out.size(); ++i) out[i] = v.weights[i] - gap * v.velocity[i];
      return out;
    }
  }
  return v.weights;
}

void Trainer::StepReady(int32_t ready) {
  for (int32_t dev = 0; dev < d_.devices; ++dev) {
    const auto& groups = a_.groups[dev];
    while (next_step_[dev] < static_cast<int32_t>(groups.size()) &&
           std::all_of(groups[next_step_[dev]].gradients.begin(),
                       groups[next_step_[dev]].gradients.end(),
                       [&](const Key& k) { return k.second < ready; })) {
      Step(dev);
    }
  }
}

// One step of every stage on the device (or of the one stage it updates): the weight gradients
// of its group, accumulated from zero in program order separately on each replica (a replica's
// own microbatches), the replicas' sums then added in replica order 0, 1, ..., R - 1 (with one
// replica: the plain accumulation), then the optimizer with the rate of this step, then
// PipeMare's velocity delta <- decay·delta + (1 - decay)·(W_new - W_old) (kept for every method).
void Trainer::Step(int32_t device) {
  const StepGroup& step = a_.groups[device][next_step_[device]];
  const std::vector<Key>& group = step.gradients;
  const float keep = d_.decay, take = 1.0f - d_.decay;
  for (size_t s = 0; s < stages_.size(); ++s) {
    StageState& st = stages_[s];
    if (st.device != device || (step.stage >= 0 && step.stage != static_cast<int32_t>(s))) continue;
    const StageVersion& current = st.history.back();
    std::vector<std::vector<float>> sums(d_.replicas(),
                                         std::vector<float>(current.weights.size(), 0.0f));
    for (const auto& [stage, j] : group) {
      if (stage != static_cast<int32_t>(s)) continue;
      for (const Unit& u : Units(d_, j)) {
        st.stage->BackwardWeight(st.saved.at(u.global), sums[u.replica]);
        st.saved.erase(u.global);
      }
    }
    std::vector<float> grad = std::move(sums[0]);
    for (int32_t r = 1; r < d_.replicas(); ++r)
      for (size_t i = 0; i < grad.size(); ++i) grad[i] += sums[r][i];
    StageVersion next{current.weights, 0, {}, current.velocity};
    st.optimizer->Step(next.weights, grad, Lr(device, step.rate));
    next.optimizer_steps = st.optimizer->steps();
    next.optimizer_state = st.optimizer->StateTensors();
    for (size_t i = 0; i < next.velocity.size(); ++i)
      next.velocity[i] = keep * current.velocity[i] + take * (next.weights[i] - current.weights[i]);
    st.history.push_back(std::move(next));
  }
  ++next_step_[device];
}

// AvgPipe (docs/methods.md): P pipelines, each a sequential trainer of the flushed order on its
// own microbatches (pipeline p runs global microbatch (n·P + p)·M + j as the j-th of minibatch n)
// stepping on its own gradients: each stage's weight gradients of the minibatch accumulated from
// zero in microbatch order (the order a flushed stage takes its backwards in), the loss scaled
// by 1/M, the rate of the stage's replica-0 device. After every `period`-th step each stage's
// copies take EASGD's synchronous elastic update (Zhang, Choromanska and LeCun, NeurIPS'15)
// against the reference W~ every copy keeps, initially the initial weights: with a = float(α)
// and t = W~ before the update, per element in float,
//   S = (((W_0 - t) + (W_1 - t)) + ...) + (W_{P-1} - t),  W_r <- W_r - a (W_r - t),  W~ <- t + a S.
Result<ReferenceRun> RunAvgPipe(const MethodCase& c, const Definition& d,
                                const std::vector<models::Stage<float>>& stages) {
  const int32_t P = d.pipelines, M = d.microbatches, S = static_cast<int32_t>(stages.size());
  const std::vector<std::vector<float>> init = StageSlices(stages, c.model->Init(c.init_seed));
  std::vector<std::vector<std::vector<float>>> w(P, init);
  std::vector<std::vector<float>> ref = init;
  std::vector<std::vector<std::unique_ptr<models::Optimizer>>> opt(P);
  for (auto& per_stage : opt) {
    for (int32_t s = 0; s < S; ++s) {
      auto created = models::Optimizer::Create(c.optimizer, init[s].size());
      if (!created.ok()) return created.status();
      per_stage.push_back(std::move(*created));
    }
  }
  ReferenceRun run;
  run.losses.assign(static_cast<size_t>(d.total()) * P, 0.0);
  run.records.assign(S, std::vector<MicrobatchRecord>(run.losses.size()));
  const float scale = 1.0f / static_cast<float>(M), a = static_cast<float>(d.alpha);
  for (int32_t n = 0; n < d.minibatches; ++n) {
    for (int32_t p = 0; p < P; ++p) {
      std::vector<std::vector<float>> grad;
      for (const auto& v : init) grad.emplace_back(v.size(), 0.0f);
      for (int32_t j = 0; j < M; ++j) {
        const int32_t g = (n * P + p) * M + j;
        const models::Batch batch = c.loader->Get(g, c.microbatch_size);
        std::vector<models::StageSaved<float>> saved(S);
        models::Matrix<float> x = batch.x;
        for (int32_t s = 0; s < S; ++s) x = stages[s].Forward(w[p][s], x, &saved[s]);
        const auto loss = models::SoftmaxCrossEntropy<float>(x, batch.labels, scale);
        run.losses[g] = loss.loss;
        models::Matrix<float> dy = loss.dlogits;
        for (int32_t s = S - 1; s >= 0; --s) {
          dy = stages[s].BackwardInput(w[p][s], dy, &saved[s]);
          stages[s].BackwardWeight(saved[s], grad[s]);
          const PassVersion at{WeightKind::kCurrent, n, n, 0};
          run.records[s][g] = {at, at, n + 1, scale};
        }
      }
      for (int32_t s = 0; s < S; ++s)
        opt[p][s]->Step(w[p][s], grad[s], c.learning_rate(s % d.devices, n));
    }
    if ((n + 1) % d.period != 0) continue;
    for (int32_t s = 0; s < S; ++s) {
      for (size_t i = 0; i < ref[s].size(); ++i) {
        const float t = ref[s][i];
        float sum = w[0][s][i] - t;
        for (int32_t p = 1; p < P; ++p) sum += w[p][s][i] - t;
        for (int32_t p = 0; p < P; ++p) w[p][s][i] = w[p][s][i] - a * (w[p][s][i] - t);
        ref[s][i] = t + a * sum;
      }
    }
  }
  run.weights = w[0];
  run.copies = std::move(w);
  run.reference = std::move(ref);
  run.steps.assign(d.devices, d.minibatches);
  return run;
}

}  // namespace

Result<ReferenceRun> RunReference(const MethodCase& c, const ReferenceOptions& options) {
  auto d = Define(c);
  if (!d.ok()) return d.status();
  std::vector<Order> orders;
  for (int32_t k = 0; k < d->devices; ++k)
    orders.push_back(d->flush   ? FlushOrder(*d, k)
                     : d->wpipe ? WPipeOrder(*d, k)
                                : AsyncOrder(*d, k));
  auto a = Account(*d, orders);
  if (!a.ok()) return a.status();
  PIPECAST_RETURN_IF_ERROR(ScaleLosses(*d, *a));
  auto stages = models::Partition(*c.model, d->stages());
  if (!stages.ok()) return stages.status();
  if (d->method == "avgpipe") {
    if (d->data_parallel != 1)
      return InvalidArgument("avgpipe's reference has no data_parallel (use its pipelines)");
    return RunAvgPipe(c, *d, *stages);
  }
  Trainer trainer(c, *d, *a, options);
  return trainer.Run(*stages);
}

}  // namespace pipecast::runtime::testing
