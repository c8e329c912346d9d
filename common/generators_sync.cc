// Synchronous schedules: one weight version, one optimizer Step per minibatch after a flush.
// Orders follow GPipe (Huang et al., NeurIPS'19), 1F1B (Narayanan et al., ICML'21), Megatron-LM's
// interleaving (Narayanan et al., SC'21) and Zero Bubble's Fig. 3 (Qi et al., ICLR'24) exactly.
#include <algorithm>
#include <vector>

#include "common/generators_internal.h"

namespace pipecast::ir::internal {
namespace {

Action F(int32_t stage, int32_t mb) { return {ActionKind::kForward, stage, mb, {}}; }
Action B(int32_t stage, int32_t mb) { return {ActionKind::kBackward, stage, mb, {}}; }
Action I(int32_t stage, int32_t mb) { return {ActionKind::kBackwardInput, stage, mb, {}}; }
Action W(int32_t stage, int32_t mb) { return {ActionKind::kWeightGrad, stage, mb, {}}; }
Action Step() { return {ActionKind::kStep, -1, -1, {}}; }

// Appends one flushed iteration per minibatch: `iteration(k, base, out)` writes device k's
// `per_iteration` compute actions for microbatches base .. base + M - 1; a Step follows on every
// device. Each device's array is sized once.
template <typename Fn>
Program Repeat(const BuildContext& ctx, int32_t stages_per_device, int64_t per_iteration,
               Fn iteration) {
  Program p = EmptyProgram(ctx, stages_per_device);
  const int32_t m = p.microbatches;
  for (int32_t d = 0; d < p.num_devices; ++d) {
    std::vector<Action> out;
    out.reserve(static_cast<size_t>((per_iteration + 1) * p.minibatches));
    for (int32_t it = 0; it < p.minibatches; ++it) {
      iteration(d, it * m, out);
      out.push_back(Step());
    }
    ctx.Emit(p, d, std::move(out));
  }
  p.max_live_versions.assign(p.num_devices, 1);
  return p;
}

// One GPipe iteration of device k: all forwards, then all backwards.
auto GpipeIteration(int32_t m) {
  return [m](int32_t k, int32_t base, std::vector<Action>& out) {
    for (int32_t j = 0; j < m; ++j) out.push_back(F(k, base + j));
    for (int32_t j = 0; j < m; ++j) out.push_back(B(k, base + j));
  };
}

// One 1F1B iteration of stage k: w = min(D - k - 1, M) warm-up forwards, then (F, B) pairs,
// then the cool-down B's.
auto OneFOneBIteration(int32_t m, int32_t d) {
  return [m, d](int32_t k, int32_t base, std::vector<Action>& out) {
    const int32_t w = std::min(d - k - 1, m);
    for (int32_t j = 0; j < w; ++j) out.push_back(F(k, base + j));
    for (int32_t i = 0; i < m - w; ++i) {
      out.push_back(F(k, base + w + i));
      out.push_back(B(k, base + i));
    }
    for (int32_t j = m - w; j < m; ++j) out.push_back(B(k, base + j));
  };
}

}  // namespace

Result<Program> BuildGpipe(const BuildContext& ctx) {
  return Repeat(ctx, 1, 2 * int64_t{ctx.options.microbatches},
                GpipeIteration(ctx.options.microbatches));
}

Result<Program> BuildOneFOneB(const BuildContext& ctx) {
  return Repeat(ctx, 1, 2 * int64_t{ctx.options.microbatches},
                OneFOneBIteration(ctx.options.microbatches, ctx.options.devices));
}

// Megatron's interleaved schedule: device k holds chunks c (virtual stage c * D + k). For op
// counter i, the forward chunk is (i mod Dv) div D, the backward chunk v - 1 - that, and the
// microbatch (i div Dv) * D + (i mod D). Warm-up is min((D-k-1)*2 + (v-1)*D, Mv), or all of
// them when M == D.
Result<Program> BuildInterleaved(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  const int32_t d = ctx.options.devices;
  const int32_t v = ctx.IntParam("chunks");
  PIPECAST_RETURN_IF_ERROR(CheckVirtualStages(d, v));
  if (m % d != 0) {
    return InvalidArgument("interleaved needs microbatches to be a multiple of stages (got " +
                           std::to_string(m) + " microbatches and " + std::to_string(d) +
                           " stages); use e.g. " + std::to_string((m / d + 1) * d) +
                           " microbatches");
  }
  const int64_t per_iteration = 2 * int64_t{m} * v;
  Program p =
      Repeat(ctx, v, per_iteration, [m, d, v](int32_t k, int32_t base, std::vector<Action>& out) {
        const int32_t total = m * v;
        const int32_t group = d * v;
        auto chunk_f = [&](int32_t i) { return (i % group) / d; };
        auto mb = [&](int32_t i) { return (i / group) * d + (i % d); };
        auto fwd = [&](int32_t i) { return F(chunk_f(i) * d + k, base + mb(i)); };
        auto bwd = [&](int32_t i) { return B((v - 1 - chunk_f(i)) * d + k, base + mb(i)); };
        const int32_t warmup = m == d ? total : std::min((d - k - 1) * 2 + (v - 1) * d, total);
        for (int32_t i = 0; i < warmup; ++i) out.push_back(fwd(i));
        for (int32_t i = 0; i < total - warmup; ++i) {
          out.push_back(fwd(warmup + i));
          out.push_back(bwd(i));
        }
        for (int32_t i = total - warmup; i < total; ++i) out.push_back(bwd(i));
      });
  return p;
}

// ZB-H1: the 1F1B order with split backward; W_j follows B_{j+k} (1-indexed), and the last k
// W's go at the end.
Result<Program> BuildZbH1(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  const int32_t d = ctx.options.devices;
  return Repeat(ctx, 1, 3 * int64_t{m}, [m, d](int32_t k, int32_t base, std::vector<Action>& out) {
    const int32_t w = std::min(d - k - 1, m);
    int32_t next_w = 0;
    auto backward = [&](int32_t j) {
      out.push_back(I(k, base + j));
      if (j - k >= 0) out.push_back(W(k, base + next_w++));
    };
    for (int32_t j = 0; j < w; ++j) out.push_back(F(k, base + j));
    for (int32_t i = 0; i < m - w; ++i) {
      out.push_back(F(k, base + w + i));
      backward(i);
    }
    for (int32_t j = m - w; j < m; ++j) backward(j);
    while (next_w < m) out.push_back(W(k, base + next_w++));
  });
}

// ZB-H2: w = min(2(D-k)-1, M) warm-up forwards; then for j = 1..M: B_j, W_{j-2k} if j-2k >= 1,
// F_{w+j} if w+j <= M; then the remaining W's.
Result<Program> BuildZbH2(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  const int32_t d = ctx.options.devices;
  return Repeat(ctx, 1, 3 * int64_t{m}, [m, d](int32_t k, int32_t base, std::vector<Action>& out) {
    const int32_t w = std::min(2 * (d - k) - 1, m);
    int32_t next_w = 0;
    for (int32_t j = 0; j < w; ++j) out.push_back(F(k, base + j));
    for (int32_t j = 1; j <= m; ++j) {
      out.push_back(I(k, base + j - 1));
      if (j - 2 * k >= 1) out.push_back(W(k, base + next_w++));
      if (w + j <= m) out.push_back(F(k, base + w + j - 1));
    }
    while (next_w < m) out.push_back(W(k, base + next_w++));
  });
}

// XGrad (Guan et al., arXiv 2305.18240): weight prediction as an optimizer add-on on a flushed
// schedule. Every F runs at W_hat = W - lr * s * dW, dW read from the optimizer state after the
// latest step (PipeOptim's Table I rule, docs/optimizers.md), and its B at the same W_hat (the
// F's copy, kept until the B); the step then updates W with the gradient taken at W_hat. Within
// a flushed minibatch W and the optimizer state do not change, so every microbatch of it sees
// the same W_hat, as the paper's single-batch step does; the F of each microbatch computes its
// own copy of it (one prediction per microbatch, not per step).
Result<Program> BuildXGrad(const BuildContext& ctx) {
  const int32_t m = ctx.options.microbatches;
  const int32_t d = ctx.options.devices;
  const bool gpipe = ctx.Param("schedule") == "gpipe";
  const int32_t s = ctx.IntParam("horizon");
  auto annotate = [s](std::vector<Action>& out, size_t from) {
    if (s == 0) return;
    for (size_t i = from; i < out.size(); ++i) {
      if (out[i].kind == ActionKind::kForward) out[i].weights = {WeightSource::kPredicted, s};
      if (out[i].kind == ActionKind::kBackward) out[i].weights = {WeightSource::kStashed, 0};
    }
  };
  auto gpipe_order = GpipeIteration(m);
  auto one_f_one_b = OneFOneBIteration(m, d);
  Program p =
      Repeat(ctx, 1, 2 * int64_t{m}, [&](int32_t k, int32_t base, std::vector<Action>& out) {
        const size_t from = out.size();
        if (gpipe) {
          gpipe_order(k, base, out);
        } else {
          one_f_one_b(k, base, out);
        }
        annotate(out, from);
      });
  // Each microbatch between its F and B holds its predicted copy: M of them under GPipe,
  // min(D - k, M) on stage k under 1F1B, plus the current weights.
  if (s > 0) {
    for (int32_t k = 0; k < d; ++k)
      p.max_live_versions[static_cast<size_t>(k)] = 1 + (gpipe ? m : std::min(d - k, m));
  }
  return p;
}

}  // namespace pipecast::ir::internal
