// Asynchronous schedules: microbatches of every minibatch stream through an asynchronous 1F1B
// order with no flush, and each device steps on its own cadence. What differs between methods is
// the cadence and which weights each F and B uses (WeightRef), per algorithms.md sections 2-8.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "common/check.h"
#include "common/generators_internal.h"

namespace pipecast::ir::internal {
namespace {

Action Step() { return {ActionKind::kStep, -1, -1, {}}; }

// Device k's asynchronous 1F1B order over `total` microbatches: `warmup` forwards, then (F, B)
// pairs, then the cool-down backwards; a Step follows the b-th backward (0-based) when
// step_after(b) is true, and one more Step ends the program if gradients are still pending.
std::vector<Action> AsyncOrder(int32_t k, int32_t warmup, int32_t total,
                               const std::function<bool(int32_t)>& step_after) {
  std::vector<Action> out;
  out.reserve(static_cast<size_t>(total) * 3);
  const int32_t w = std::min(warmup, total);
  int32_t backwards = 0;
  bool pending = false;
  auto backward = [&](int32_t j) {
    out.push_back({ActionKind::kBackward, k, j, {}});
    pending = true;
    if (step_after(backwards++)) {
      out.push_back(Step());
      pending = false;
    }
  };
  for (int32_t j = 0; j < w; ++j) out.push_back({ActionKind::kForward, k, j, {}});
  for (int32_t i = 0; i < total - w; ++i) {
    out.push_back({ActionKind::kForward, k, w + i, {}});
    backward(i);
  }
  for (int32_t j = total - w; j < total; ++j) backward(j);
  if (pending) out.push_back(Step());
  return out;
}

// Calls annotate(action, steps_before) for every F and B of the device, in program order.
void Annotate(std::vector<Action>& prog, const std::function<void(Action&, int32_t)>& annotate) {
  int32_t n = 0;
  for (Action& a : prog) {
    if (a.kind == ActionKind::kStep) {
      ++n;
    } else if (UsesWeights(a.kind)) {
      annotate(a, n);
    }
  }
}

WeightRef Current() { return {WeightSource::kCurrent, 0}; }
WeightRef Predicted(int32_t s) {
  return s > 0 ? WeightRef{WeightSource::kPredicted, s} : Current();
}

// Common skeleton: D stages on D devices, warm-up D-1-k, a step cadence shared by all devices.
Program AsyncProgram(const BuildContext& ctx, const std::function<bool(int32_t)>& step_after) {
  Program p = EmptyProgram(ctx, 1);
  const int32_t d = p.num_devices;
  for (int32_t k = 0; k < d; ++k)
    p.devices[k] = AsyncOrder(k, d - 1 - k, p.total_microbatches(), step_after);
  p.max_live_versions.assign(d, 1);
  return p;
}

bool EveryBackward(int32_t) { return true; }

}  // namespace

// PipeDream: a step after every backward; F uses the latest weights and stashes them, B uses
// the stash (D - k versions on stage k). With vertical sync, every stage uses the version stage 0
// used for the input (an explicit version; the tag travels with the activations).
Result<Program> BuildPipeDream(const BuildContext& ctx) {
  Program p = AsyncProgram(ctx, EveryBackward);
  const int32_t d = p.num_devices;
  const bool vertical = ctx.BoolParam("vertical_sync");
  std::vector<int32_t> stage0_version(p.total_microbatches(), 0);
  Annotate(p.devices[0], [&](Action& a, int32_t n) {
    if (a.kind == ActionKind::kForward) stage0_version[a.microbatch] = n;
  });
  for (int32_t k = 0; k < d; ++k) {
    Annotate(p.devices[k], [&](Action& a, int32_t) {
      if (a.kind == ActionKind::kForward) {
        a.weights = vertical ? WeightRef{WeightSource::kVersion, stage0_version[a.microbatch]}
                             : Current();
      } else {
        a.weights = {WeightSource::kStashed, 0};
      }
    });
    // Stashes of the D - k microbatches in flight; with vertical sync stage 0's older versions
    // must be kept too, which the in-flight window of stage 0 (D inputs) bounds.
    p.max_live_versions[k] = vertical ? d + 1 : d - k;
  }
  return p;
}

// PipeDream-2BW: one step per minibatch; every microbatch of minibatch b (0-based) uses version
// max(0, b - 1) in F and B, served from the newer buffer (version n) or the older (n - 1). With a
// single stage nothing overlaps, so minibatch b uses version b and 2BW is the plain optimizer.
Result<Program> BuildPipeDream2BW(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  const int32_t d = ctx.options.devices;
  if (m < d) {
    return InvalidArgument("pipedream-2bw needs microbatches >= stages (got " +
                           std::to_string(m) + " microbatches for " + std::to_string(d) +
                           " stages); use at least " + std::to_string(d) + " microbatches");
  }
  Program p = AsyncProgram(ctx, [m](int32_t b) { return (b + 1) % m == 0; });
  for (int32_t k = 0; k < d; ++k) {
    Annotate(p.devices[k], [&](Action& a, int32_t n) {
      const int32_t target = std::max(0, a.microbatch / m - (d > 1 ? 1 : 0));
      if (target == n) {
        a.weights = {WeightSource::kBufferNewer, 0};
      } else {
        PIPECAST_CHECK(target == n - 1)
            << "2BW: microbatch " << a.microbatch << " on stage " << k << " needs version "
            << target << " but the device is at " << n;
        a.weights = {WeightSource::kBufferOlder, 0};
      }
    });
    p.max_live_versions[k] = 2;
  }
  return p;
}

// SpecTrain: a step after every backward, one weight copy plus the prediction. v1 predicts in F
// with s = floor(k/2) + D - k - 1 and in B with s = floor(k/2); v2 predicts once with
// s = D - k - 1 and the B reuses the F's predicted weights.
Result<Program> BuildSpecTrain(const BuildContext& ctx) {
  Program p = AsyncProgram(ctx, EveryBackward);
  const int32_t d = p.num_devices;
  const bool v2 = ctx.Param("variant") == "v2";
  for (int32_t k = 0; k < d; ++k) {
    const int32_t s_fwd = v2 ? d - k - 1 : k / 2 + d - k - 1;
    const int32_t s_bwd = k / 2;
    Annotate(p.devices[k], [&](Action& a, int32_t) {
      if (a.kind == ActionKind::kForward) {
        a.weights = Predicted(s_fwd);
      } else {
        a.weights = v2 ? WeightRef{WeightSource::kStashed, 0} : Predicted(s_bwd);
      }
    });
    // v2 keeps each in-flight microbatch's predicted copy until its B.
    p.max_live_versions[k] = v2 ? d - k + 1 : 2;
  }
  return p;
}

// XPipe: one step per minibatch (T = microbatches). Every microbatch of minibatch b predicts the
// version the minibatch's bellwether targets. horizon=schedule: s = b - n, the version a
// sequential run uses for minibatch b (this reproduces the paper's T=2 figure); horizon=formula:
// s_F = round((D + T - k/2 - 2) / T), s_B = round((T + floor(k/2) - 1) / T).
Result<Program> BuildXPipe(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  Program p = AsyncProgram(ctx, [m](int32_t b) { return (b + 1) % m == 0; });
  const int32_t d = p.num_devices;
  const bool formula = ctx.Param("horizon") == "formula";
  const bool half_up = ctx.Param("rounding") == "half_up";
  auto round = [half_up](double x) {
    return static_cast<int32_t>(half_up ? std::floor(x + 0.5) : std::nearbyint(x));
  };
  for (int32_t k = 0; k < d; ++k) {
    const int32_t s_fwd = round((d + m - k / 2.0 - 2.0) / m);
    const int32_t s_bwd = round((m + k / 2 - 1.0) / m);
    Annotate(p.devices[k], [&](Action& a, int32_t n) {
      const bool fwd = a.kind == ActionKind::kForward;
      if (formula) {
        a.weights = Predicted(fwd ? s_fwd : s_bwd);
      } else {
        a.weights = Predicted(std::max(0, a.microbatch / m - n));
      }
    });
    p.max_live_versions[k] = 2;
  }
  return p;
}

// PipeMare: a step after every backward, one weight copy. F uses the current weights; with
// correction, B uses them corrected back by the delay gap n_B - n_F (T2).
Result<Program> BuildPipeMare(const BuildContext& ctx) {
  Program p = AsyncProgram(ctx, EveryBackward);
  const bool correction = ctx.BoolParam("correction");
  std::vector<int32_t> f_counter(p.total_microbatches(), 0);
  for (auto& prog : p.devices) {
    Annotate(prog, [&](Action& a, int32_t n) {
      if (a.kind == ActionKind::kForward) {
        f_counter[a.microbatch] = n;
        a.weights = Current();
      } else {
        const int32_t gap = n - f_counter[a.microbatch];
        a.weights = correction && gap > 0 ? WeightRef{WeightSource::kCorrected, gap} : Current();
      }
    });
  }
  p.max_live_versions.assign(p.num_devices, 2);
  return p;
}

// PipeOptim: a step after every backward; F predicts s = D - k - 1 steps ahead (paper) or D - k
// (official code), B uses the current weights.
Result<Program> BuildPipeOptim(const BuildContext& ctx) {
  Program p = AsyncProgram(ctx, EveryBackward);
  const int32_t d = p.num_devices;
  const bool code = ctx.Param("horizon") == "code";
  for (int32_t k = 0; k < d; ++k) {
    const int32_t s = code ? d - k : d - k - 1;
    Annotate(p.devices[k], [&](Action& a, int32_t) {
      a.weights = a.kind == ActionKind::kForward ? Predicted(s) : Current();
    });
    p.max_live_versions[k] = 2;
  }
  return p;
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
    p.devices[k] = AsyncOrder(k, cap - 1, p.total_microbatches(),
                              [a](int32_t b) { return (b + 1) % a == 0; });
  }
  p.max_live_versions.assign(d, 1);
  return p;
}

}  // namespace pipecast::ir::internal
