// Asynchronous schedules: microbatches of every minibatch stream through an asynchronous 1F1B
// order with no flush, and each device steps on its own cadence. What differs between methods is
// the cadence and which weights each F and B uses (WeightRef); docs/methods.md gives each rule
// and its source. Each device's array is sized once and written once, weights included.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/generators_internal.h"

namespace pipecast::ir::internal {
namespace {

Action Step() { return {ActionKind::kStep, -1, -1, {}}; }

WeightRef Current() { return {WeightSource::kCurrent, 0}; }
WeightRef Predicted(int32_t s) {
  return s > 0 ? WeightRef{WeightSource::kPredicted, s} : Current();
}

// A Step after every backward.
struct EveryBackward {
  bool operator()(int32_t) const { return true; }
};
// A Step after every `every`-th backward of the device.
struct EveryNth {
  int32_t every;
  bool operator()(int32_t b) const { return (b + 1) % every == 0; }
};

// Plain weights everywhere (annotated later, or never).
struct NoWeights {
  WeightRef operator()(ActionKind, int32_t, int32_t) const { return Current(); }
};

// Device k's asynchronous 1F1B order over `total` microbatches: `warmup` forwards, then (F, B)
// pairs, then the cool-down backwards; a Step follows the b-th backward (0-based) when
// step_after(b) is true, and one more Step ends the program if gradients are still pending.
// weights(kind, microbatch, steps_before) gives each F's and B's WeightRef.
template <typename StepAfter, typename Weights>
std::vector<Action> AsyncOrder(int32_t k, int32_t warmup, int32_t total, StepAfter step_after,
                               Weights weights) {
  int64_t steps = 0;
  for (int32_t b = 0; b < total; ++b) steps += step_after(b) ? 1 : 0;
  if (total > 0 && !step_after(total - 1)) ++steps;
  std::vector<Action> out;
  out.reserve(static_cast<size_t>(2 * int64_t{total} + steps));
  const int32_t w = std::min(warmup, total);
  int32_t backwards = 0, n = 0;
  bool pending = false;
  auto forward = [&](int32_t j) {
    out.push_back({ActionKind::kForward, k, j, weights(ActionKind::kForward, j, n)});
  };
  auto backward = [&](int32_t j) {
    out.push_back({ActionKind::kBackward, k, j, weights(ActionKind::kBackward, j, n)});
    pending = true;
    if (step_after(backwards++)) {
      out.push_back(Step());
      ++n;
      pending = false;
    }
  };
  for (int32_t j = 0; j < w; ++j) forward(j);
  for (int32_t i = 0; i < total - w; ++i) {
    forward(w + i);
    backward(i);
  }
  for (int32_t j = total - w; j < total; ++j) backward(j);
  if (pending) out.push_back(Step());
  return out;
}

// Calls annotate(action, steps_before) for every F and B of the device, in program order.
template <typename Annotator>
void Annotate(std::vector<Action>& prog, Annotator annotate) {
  int32_t n = 0;
  for (Action& a : prog) {
    if (a.kind == ActionKind::kStep) {
      ++n;
    } else if (UsesWeights(a.kind)) {
      annotate(a, n);
    }
  }
}

// Common skeleton: D stages on D devices, warm-up D-1-k, one step cadence for every device, and
// weights_for(k) giving device k's weight rule.
template <typename StepAfter, typename WeightsFor>
Program AsyncProgram(const BuildContext& ctx, StepAfter step_after, WeightsFor weights_for,
                     int32_t live_versions) {
  Program p = EmptyProgram(ctx, 1);
  const int32_t d = p.num_devices;
  for (int32_t k = 0; k < d; ++k) {
    ctx.Emit(p, k, AsyncOrder(k, d - 1 - k, p.total_microbatches(), step_after, weights_for(k)));
  }
  p.max_live_versions.assign(d, live_versions);
  return p;
}

// XPipe's default target (docs/methods.md): for every minibatch b, the version device k has when
// the minibatch's last microbatch finishes its round trip on stage 0. Stage 0's round trip ends
// with its own backward of that microbatch, so its target counts the Steps before it; every
// later stage's backward of the microbatch comes before that end in the dependency order, so
// its target also counts the Steps that directly follow that backward.
std::vector<int32_t> RoundTripTargets(const std::vector<Action>& prog, int32_t k, int32_t m,
                                      int32_t minibatches) {
  std::vector<int32_t> target(static_cast<size_t>(minibatches), 0);
  int32_t n = 0;
  for (size_t i = 0; i < prog.size(); ++i) {
    const Action& a = prog[i];
    if (a.kind == ActionKind::kStep) ++n;
    if (a.kind != ActionKind::kBackward || a.microbatch % m != m - 1) continue;
    int32_t after = n;
    if (k > 0) {
      for (size_t j = i + 1; j < prog.size() && prog[j].kind == ActionKind::kStep; ++j) ++after;
    }
    target[static_cast<size_t>(a.microbatch / m)] = after;
  }
  return target;
}

}  // namespace

// PipeDream: a step after every backward; F uses the latest weights and stashes them, B uses
// the stash (D - k versions on stage k). With vertical sync, every stage uses the version stage 0
// used for the input (an explicit version; the tag travels with the activations).
Result<Program> BuildPipeDream(const BuildContext& ctx) {
  const bool vertical = ctx.BoolParam("vertical_sync");
  const int32_t d = ctx.options.devices;
  const int32_t total = ctx.options.microbatches * ctx.options.minibatches;
  std::vector<int32_t> stage0_version(static_cast<size_t>(total), 0);
  if (vertical) {  // the version stage 0's forward of every microbatch uses
    AsyncOrder(0, d - 1, total, EveryBackward{}, [&](ActionKind kind, int32_t j, int32_t n) {
      if (kind == ActionKind::kForward) stage0_version[j] = n;
      return Current();
    });
  }
  Program p = AsyncProgram(
      ctx, EveryBackward{},
      [&](int32_t) {
        return [&](ActionKind kind, int32_t j, int32_t) {
          if (kind != ActionKind::kForward) return WeightRef{WeightSource::kStashed, 0};
          return vertical ? WeightRef{WeightSource::kVersion, stage0_version[j]} : Current();
        };
      },
      1);
  // Stashes of the D - k microbatches in flight; with vertical sync stage 0's older versions
  // must be kept too, which the in-flight window of stage 0 (D inputs) bounds.
  for (int32_t k = 0; k < d; ++k) p.max_live_versions[k] = vertical ? d + 1 : d - k;
  return p;
}

// PipeDream-2BW: one step per minibatch; every microbatch of minibatch b (0-based) uses version
// max(0, b - 1) in F and B, served from the newer buffer (version n) or the older (n - 1). With a
// single stage nothing overlaps, so minibatch b uses version b and 2BW is the plain optimizer.
Result<Program> BuildPipeDream2BW(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  const int32_t d = ctx.options.devices;
  if (m < d) {
    return InvalidArgument("pipedream-2bw needs microbatches >= stages (got " + std::to_string(m) +
                           " microbatches for " + std::to_string(d) + " stages); use at least " +
                           std::to_string(d) + " microbatches");
  }
  return AsyncProgram(
      ctx, EveryNth{m},
      [&](int32_t k) {
        return [=](ActionKind, int32_t j, int32_t n) {
          const int32_t target = std::max(0, j / m - (d > 1 ? 1 : 0));
          if (target == n) return WeightRef{WeightSource::kBufferNewer, 0};
          PIPECAST_CHECK(target == n - 1)
              << "2BW: microbatch " << j << " on stage " << k << " needs version " << target
              << " but the device is at " << n;
          return WeightRef{WeightSource::kBufferOlder, 0};
        };
      },
      2);
}

// SpecTrain: a step after every backward, one weight copy plus the prediction. v1 predicts in F
// with s = floor(k/2) + D - k - 1 and in B with s = floor(k/2); v2 predicts once with
// s = D - k - 1 and the B reuses the F's predicted weights.
Result<Program> BuildSpecTrain(const BuildContext& ctx) {
  const int32_t d = ctx.options.devices;
  const bool v2 = ctx.Param("variant") == "v2";
  Program p = AsyncProgram(
      ctx, EveryBackward{},
      [&](int32_t k) {
        const int32_t s_fwd = v2 ? d - k - 1 : k / 2 + d - k - 1;
        const int32_t s_bwd = k / 2;
        return [=](ActionKind kind, int32_t, int32_t) {
          if (kind == ActionKind::kForward) return Predicted(s_fwd);
          return v2 ? WeightRef{WeightSource::kStashed, 0} : Predicted(s_bwd);
        };
      },
      2);
  // v2 keeps each in-flight microbatch's predicted copy until its B.
  if (v2) {
    for (int32_t k = 0; k < d; ++k) p.max_live_versions[k] = d - k + 1;
  }
  return p;
}

// XPipe: one step per minibatch (T = microbatches). Every microbatch of minibatch b predicts the
// version its bellwether targets, s = target - n.
//   horizon=round_trip (default): the target is the version the device has when the minibatch's
//     T-th microbatch finishes its round trip on stage 0 (RoundTripTargets), the seed's
//     definition derived from the schedule;
//   horizon=sequential: the target is version b, the one a sequential run uses for minibatch b
//     (reproduces the paper's T = 2 figure);
//   horizon=formula: the seed's closed forms s_F = round((D + T - k/2 - 2) / T),
//     s_B = round((T + floor(k/2) - 1) / T).
Result<Program> BuildXPipe(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  const int32_t d = ctx.options.devices;
  const std::string& horizon = ctx.Param("horizon");
  const bool half_up = ctx.Param("rounding") == "half_up";
  auto round = [half_up](double x) {
    return static_cast<int32_t>(half_up ? std::floor(x + 0.5) : std::nearbyint(x));
  };
  Program p = EmptyProgram(ctx, 1);
  p.max_live_versions.assign(d, 2);
  for (int32_t k = 0; k < d; ++k) {
    const int32_t s_fwd = round((d + m - k / 2.0 - 2.0) / m);
    const int32_t s_bwd = round((m + k / 2 - 1.0) / m);
    std::vector<Action> order =
        AsyncOrder(k, d - 1 - k, p.total_microbatches(), EveryNth{m}, NoWeights{});
    const std::vector<int32_t> target = horizon == "round_trip"
                                            ? RoundTripTargets(order, k, m, p.minibatches)
                                            : std::vector<int32_t>{};
    Annotate(order, [&](Action& a, int32_t n) {
      const bool fwd = a.kind == ActionKind::kForward;
      const int32_t b = a.microbatch / m;
      if (horizon == "formula") {
        a.weights = Predicted(fwd ? s_fwd : s_bwd);
      } else if (horizon == "sequential") {
        a.weights = Predicted(std::max(0, b - n));
      } else {
        a.weights = Predicted(std::max(0, target[static_cast<size_t>(b)] - n));
      }
    });
    ctx.Emit(p, k, std::move(order));
  }
  return p;
}

// PipeMare: a step after every backward, one weight copy. F uses the current weights; with
// correction, B uses them corrected back by the delay gap n_B - n_F (T2).
Result<Program> BuildPipeMare(const BuildContext& ctx) {
  const bool correction = ctx.BoolParam("correction");
  std::vector<int32_t> f_counter(
      static_cast<size_t>(ctx.options.microbatches) * ctx.options.minibatches, 0);
  return AsyncProgram(
      ctx, EveryBackward{},
      [&](int32_t) {
        return [&](ActionKind kind, int32_t j, int32_t n) {
          if (kind == ActionKind::kForward) {
            f_counter[j] = n;
            return Current();
          }
          const int32_t gap = n - f_counter[j];
          return correction && gap > 0 ? WeightRef{WeightSource::kCorrected, gap} : Current();
        };
      },
      2);
}

// PipeOptim: a step after every backward; F predicts s = D - k - 1 steps ahead (paper) or D - k
// (official code), B uses the current weights.
Result<Program> BuildPipeOptim(const BuildContext& ctx) {
  const int32_t d = ctx.options.devices;
  const bool code = ctx.Param("horizon") == "code";
  return AsyncProgram(
      ctx, EveryBackward{},
      [&](int32_t k) {
        const WeightRef forward = Predicted(code ? d - k : d - k - 1);
        return [=](ActionKind kind, int32_t, int32_t) {
          return kind == ActionKind::kForward ? forward : Current();
        };
      },
      2);
}

// PACI: local accumulation, a step after every `a` backwards of the device; at most
// allowed_lagging (default D - k) forwards in flight, backward first. One weight copy, no
// stash, no prediction: F and B use the current weights.
Result<Program> BuildPaci(const BuildContext& ctx) {
  const int32_t a = ctx.IntParam("accumulation");
  const std::string& lag = ctx.Param("allowed_lagging");
  Program p = EmptyProgram(ctx, 1);
  const int32_t d = p.num_devices;
  for (int32_t k = 0; k < d; ++k) {
    const int32_t cap = lag == "auto" ? d - k : std::min(ctx.IntParam("allowed_lagging"), d - k);
    ctx.Emit(p, k, AsyncOrder(k, cap - 1, p.total_microbatches(), EveryNth{a}, NoWeights{}));
  }
  p.max_live_versions.assign(d, 1);
  return p;
}

}  // namespace pipecast::ir::internal
