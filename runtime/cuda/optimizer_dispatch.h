// Which op of optimizer_ops.h a step or a prediction runs, over which state tensors and with
// which coefficients (models/optimizer_math.h, computed here on the host): the one mapping of an
// optimizer configuration onto the ops, used by the CUDA launches (optimizer_kernels.cu) and by
// the host tests, which run the same ops group by group on the CPU (RunGroupsOnHost).
//
// `run(op, aligned)` runs `op` over the n elements of the layout; `aligned` says whether every
// buffer the op touches is 16-byte aligned (float4 access).
#pragma once

#include <cstdint>

#include "common/check.h"
#include "models/optimizer.h"
#include "models/optimizer_math.h"
#include "runtime/cuda/group_loop.h"
#include "runtime/cuda/optimizer_kernels.h"
#include "runtime/cuda/optimizer_ops.h"

namespace pipecast::runtime::cuda {

inline SgdState SgdStateOf(const StateLayout& s) {
  return {s.Tensor("momentum_buffer"), s.Tensor("last_grad"), s.Tensor("last_step")};
}
inline AdamState AdamStateOf(const StateLayout& s) {
  return {s.Tensor("exp_avg"), s.Tensor("exp_avg_sq"), s.Tensor("max_exp_avg_sq"),
          s.Tensor("last_step")};
}
inline RmspropState RmspropStateOf(const StateLayout& s) {
  return {s.Tensor("square_avg"), s.Tensor("momentum_buffer"), s.Tensor("grad_avg"),
          s.Tensor("last_step")};
}
inline LionState LionStateOf(const StateLayout& s) {
  return {s.Tensor("exp_avg"), s.Tensor("last_sign"), s.Tensor("last_step")};
}

// Step number t (1 on the first) with rate lr.
template <typename Run>
void DispatchStep(const models::OptimizerConfig& c, const StateLayout& layout, int64_t t,
                  float* params, const float* grad, double lr, const FusedExtras& e, Run&& run) {
  const bool extras_aligned = AllAligned({params, grad, e.velocity, e.predicted});
  switch (c.kind) {
    case models::OptimizerKind::kSgd: {
      const SgdState s = SgdStateOf(layout);
      run(SgdStepOp{params, grad, s, models::SgdCoefficientsFor(c, t, lr),
                    models::SgdDeltaCoefficientsFor(c, e.rule), e},
          extras_aligned && AllAligned({s.momentum_buffer, s.last_grad, s.last_step}));
      return;
    }
    case models::OptimizerKind::kAdam:
    case models::OptimizerKind::kAdamW: {
      const AdamState s = AdamStateOf(layout);
      run(AdamStepOp{params, grad, s, models::AdamCoefficientsFor(c, t, lr), e},
          extras_aligned && AllAligned({s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, s.last_step}));
      return;
    }
    case models::OptimizerKind::kRmsprop: {
      const RmspropState s = RmspropStateOf(layout);
      run(RmspropStepOp{params, grad, s, models::RmspropCoefficientsFor(c, lr), e},
          extras_aligned && AllAligned({s.square_avg, s.momentum_buffer, s.grad_avg, s.last_step}));
      return;
    }
    case models::OptimizerKind::kLion: {
      const LionState s = LionStateOf(layout);
      run(LionStepOp{params, grad, s, models::LionCoefficientsFor(c, lr), e},
          extras_aligned && AllAligned({s.exp_avg, s.last_sign, s.last_step}));
      return;
    }
  }
  PIPECAST_CHECK(false) << "unknown optimizer kind";
}

// The prediction after `steps` steps. REQUIRES: !p.copy.
template <typename Run>
void DispatchPredict(const models::OptimizerConfig& c, const StateLayout& layout, int64_t steps,
                     const float* params, const models::PredictCoefficients& p,
                     models::DeltaRule rule, float* out, Run&& run) {
  PIPECAST_CHECK(!p.copy) << "a prediction that is a copy is the caller's";
  const bool io_aligned = AllAligned({params, out});
  switch (c.kind) {
    case models::OptimizerKind::kSgd: {
      const SgdState s = SgdStateOf(layout);
      run(SgdPredictOp{params, s, models::SgdDeltaCoefficientsFor(c, rule), rule, p, out},
          io_aligned && AllAligned({s.momentum_buffer, s.last_grad, s.last_step}));
      return;
    }
    case models::OptimizerKind::kAdam:
    case models::OptimizerKind::kAdamW: {
      const AdamState s = AdamStateOf(layout);
      // ΔW reads only the step-number coefficients (lr 0 for the rest).
      run(AdamPredictOp{params, s, models::AdamCoefficientsFor(c, steps, 0.0), rule, p, out},
          io_aligned && AllAligned({s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, s.last_step}));
      return;
    }
    case models::OptimizerKind::kRmsprop:
    case models::OptimizerKind::kLion: {
      // RMSprop's ΔW under either rule, and Lion's under kExact, is last_step; Lion's kPaper is
      // last_sign.
      const bool sign = c.kind == models::OptimizerKind::kLion && rule == models::DeltaRule::kPaper;
      const float* delta = layout.Tensor(sign ? "last_sign" : "last_step");
      run(StoredDeltaPredictOp{params, delta, p, out}, io_aligned && AllAligned({delta}));
      return;
    }
  }
  PIPECAST_CHECK(false) << "unknown optimizer kind";
}

}  // namespace pipecast::runtime::cuda
