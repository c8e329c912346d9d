// The ops of the fused optimizer kernels (optimizer_kernels.cu): what one thread does to one
// group of four elements (group_loop.h). Each loads W, the gradient and the state, applies the
// element function of models/optimizer_math.h to each element, stores the new W and state, then
// PipeMare's velocity and the prediction from the values still in registers; the prediction ops
// read only the tensors their rule needs. PIPECAST_HD, so host tests run the same ops.
#pragma once

#include <cstdint>

#include "models/optimizer_math.h"
#include "runtime/cuda/group_loop.h"
#include "runtime/cuda/optimizer_kernels.h"

namespace pipecast::runtime::cuda {

// After a step: velocity (CpuDevice::Step's expression) and the prediction from ΔW = delta(k).
template <typename Delta>
PIPECAST_HD inline void FinishGroup(const FusedExtras& e, int64_t i, int count, bool vec,
                                    const Group& before, const Group& after, Delta delta) {
  if (e.velocity != nullptr) {
    Group v = LoadGroup(e.velocity, i, count, vec);
    for (int k = 0; k < kGroup; ++k) {
      v.x[k] = e.gamma * v.x[k] + e.one_minus_gamma * (after.x[k] - before.x[k]);
    }
    StoreGroup(e.velocity, i, count, vec, v);
  }
  if (e.predicted != nullptr) {
    Group out;
    for (int k = 0; k < kGroup; ++k) {
      out.x[k] = e.predict.copy ? after.x[k]
                                : models::AddScaled(after.x[k], e.predict.neg_scale, delta(k));
    }
    StoreGroup(e.predicted, i, count, vec, out);
  }
}

struct SgdStepOp {
  float* params;
  const float* grad;
  SgdState s;
  models::SgdCoefficients k;
  models::SgdDeltaCoefficients delta;
  FusedExtras e;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    Group p = LoadGroup(params, i, count, vec);
    const Group g = LoadGroup(grad, i, count, vec);
    Group buf = LoadIf(s.momentum_buffer, i, count, vec);
    const Group before = p;
    Group d;
    for (int j = 0; j < kGroup; ++j) d.x[j] = models::SgdStep(p.x[j], g.x[j], buf.x[j], k);
    StoreGroup(params, i, count, vec, p);
    StoreIf(s.momentum_buffer, i, count, vec, buf);
    StoreGroup(s.last_grad, i, count, vec, g);
    StoreGroup(s.last_step, i, count, vec, d);
    FinishGroup(e, i, count, vec, before, p,
                [&](int j) { return models::SgdDeltaW(e.rule, buf.x[j], g.x[j], d.x[j], delta); });
  }
};

struct AdamStepOp {
  float* params;
  const float* grad;
  AdamState s;
  models::AdamCoefficients k;
  FusedExtras e;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    Group p = LoadGroup(params, i, count, vec);
    const Group g = LoadGroup(grad, i, count, vec);
    Group m = LoadGroup(s.exp_avg, i, count, vec);
    Group v = LoadGroup(s.exp_avg_sq, i, count, vec);
    Group vmax = LoadIf(s.max_exp_avg_sq, i, count, vec);
    const Group before = p;
    Group d;
    for (int j = 0; j < kGroup; ++j) {
      d.x[j] = models::AdamStep(p.x[j], g.x[j], m.x[j], v.x[j], vmax.x[j], k);
    }
    StoreGroup(params, i, count, vec, p);
    StoreGroup(s.exp_avg, i, count, vec, m);
    StoreGroup(s.exp_avg_sq, i, count, vec, v);
    StoreIf(s.max_exp_avg_sq, i, count, vec, vmax);
    StoreGroup(s.last_step, i, count, vec, d);
    FinishGroup(e, i, count, vec, before, p, [&](int j) {
      return models::AdamDeltaW(e.rule, m.x[j], v.x[j], vmax.x[j], d.x[j], k);
    });
  }
};

struct RmspropStepOp {
  float* params;
  const float* grad;
  RmspropState s;
  models::RmspropCoefficients k;
  FusedExtras e;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    Group p = LoadGroup(params, i, count, vec);
    const Group g = LoadGroup(grad, i, count, vec);
    Group sa = LoadGroup(s.square_avg, i, count, vec);
    Group buf = LoadIf(s.momentum_buffer, i, count, vec);
    Group ga = LoadIf(s.grad_avg, i, count, vec);
    const Group before = p;
    Group d;
    for (int j = 0; j < kGroup; ++j) {
      d.x[j] = models::RmspropStep(p.x[j], g.x[j], sa.x[j], buf.x[j], ga.x[j], k);
    }
    StoreGroup(params, i, count, vec, p);
    StoreGroup(s.square_avg, i, count, vec, sa);
    StoreIf(s.momentum_buffer, i, count, vec, buf);
    StoreIf(s.grad_avg, i, count, vec, ga);
    StoreGroup(s.last_step, i, count, vec, d);
    FinishGroup(e, i, count, vec, before, p, [&](int j) { return d.x[j]; });
  }
};

struct LionStepOp {
  float* params;
  const float* grad;
  LionState s;
  models::LionCoefficients k;
  FusedExtras e;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    Group p = LoadGroup(params, i, count, vec);
    const Group g = LoadGroup(grad, i, count, vec);
    Group m = LoadGroup(s.exp_avg, i, count, vec);
    const Group before = p;
    Group sign, d;
    for (int j = 0; j < kGroup; ++j)
      d.x[j] = models::LionStep(p.x[j], g.x[j], m.x[j], sign.x[j], k);
    StoreGroup(params, i, count, vec, p);
    StoreGroup(s.exp_avg, i, count, vec, m);
    StoreGroup(s.last_sign, i, count, vec, sign);
    StoreGroup(s.last_step, i, count, vec, d);
    FinishGroup(e, i, count, vec, before, p,
                [&](int j) { return models::LionDeltaW(e.rule, sign.x[j], d.x[j]); });
  }
};

// out = params + neg_scale·ΔW, ΔW = delta(k) (0 before the first step).
template <typename Delta>
PIPECAST_HD inline void PredictGroup(const float* params, const models::PredictCoefficients& p,
                                     float* out, int64_t i, int count, bool vec, Delta delta) {
  Group w = LoadGroup(params, i, count, vec);
  for (int k = 0; k < kGroup; ++k) {
    w.x[k] = models::AddScaled(w.x[k], p.neg_scale, p.zero_delta ? 0.0f : delta(k));
  }
  StoreGroup(out, i, count, vec, w);
}

struct SgdPredictOp {
  const float* params;
  SgdState s;
  models::SgdDeltaCoefficients delta;
  models::DeltaRule rule;
  models::PredictCoefficients p;
  float* out;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    // Only the tensors the rule reads (and none before the first step).
    const bool look_ahead =
        rule == models::DeltaRule::kCode || rule == models::DeltaRule::kSpecTrain;
    const bool uses_step = rule == models::DeltaRule::kExact ||
                           (rule == models::DeltaRule::kPaper && !delta.has_momentum);
    const bool load = !p.zero_delta;
    const Group buf = LoadIf(load && !uses_step ? s.momentum_buffer : nullptr, i, count, vec);
    const Group g = LoadIf(load && look_ahead ? s.last_grad : nullptr, i, count, vec);
    const Group d = LoadIf(load && uses_step ? s.last_step : nullptr, i, count, vec);
    PredictGroup(params, p, out, i, count, vec,
                 [&](int k) { return models::SgdDeltaW(rule, buf.x[k], g.x[k], d.x[k], delta); });
  }
};

struct AdamPredictOp {
  const float* params;
  AdamState s;
  models::AdamCoefficients k;
  models::DeltaRule rule;
  models::PredictCoefficients p;
  float* out;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    const bool load = !p.zero_delta;
    const bool exact = rule == models::DeltaRule::kExact;
    const bool use_max = k.amsgrad && rule != models::DeltaRule::kXPipe;
    const Group m = LoadIf(load && !exact ? s.exp_avg : nullptr, i, count, vec);
    const Group v = LoadIf(load && !exact && !use_max ? s.exp_avg_sq : nullptr, i, count, vec);
    const Group vmax =
        LoadIf(load && !exact && use_max ? s.max_exp_avg_sq : nullptr, i, count, vec);
    const Group d = LoadIf(load && exact ? s.last_step : nullptr, i, count, vec);
    PredictGroup(params, p, out, i, count, vec, [&](int j) {
      return models::AdamDeltaW(rule, m.x[j], v.x[j], vmax.x[j], d.x[j], k);
    });
  }
};

struct StoredDeltaPredictOp {
  const float* params;
  const float* delta;
  models::PredictCoefficients p;
  float* out;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    const Group d = LoadIf(p.zero_delta ? nullptr : delta, i, count, vec);
    PredictGroup(params, p, out, i, count, vec, [&](int k) { return d.x[k]; });
  }
};

}  // namespace pipecast::runtime::cuda
