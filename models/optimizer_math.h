// The element-wise mathematics of every optimizer (models/optimizer.h): one element's update and
// one element's ΔW under each rule, written once as PIPECAST_HD functions that the CPU optimizer
// (models/optimizer.cc) and the CUDA kernels (runtime/cuda/optimizer_kernels.cu) both call, and
// the float coefficients of one step, computed on the host in double and rounded to float once,
// exactly as models::Optimizer has always computed them (torch's Python-float-to-tensor-op
// rounding; docs/optimizers.md). With FMA contraction off on both sides (x86-64 has no implicit
// contraction; the CUDA targets build with --fmad=false) and IEEE division and square roots, an
// element's result is the same bits on either device.
//
// Every expression keeps the operation order of torch's single-tensor implementation: do not
// "simplify" one (a·b·c is (a·b)·c; x + (−1)·y is not x − y for every input).
#pragma once

#include <cmath>
#include <cstdint>

#include "common/method_options.h"
#include "models/elementwise.h"

namespace pipecast::models {

struct OptimizerConfig;  // optimizer.h
using DeltaRule = ir::DeltaRule;

// torch.sign: −1, 0 or +1 (0 for ±0; NaN stays NaN).
PIPECAST_HD inline float SignOf(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); }

// std::max's definition (b only if a < b, so a NaN in b is dropped and one in a kept), which
// fmaxf does not share.
PIPECAST_HD inline float MaxOf(float a, float b) { return a < b ? b : a; }

// x + a·y: a step p + (−lr)·d and a prediction p + (−lr·s)·ΔW.
PIPECAST_HD inline float AddScaled(float x, float a, float y) { return x + a * y; }

// ---------------------------------------------------------------------------------------------
// SGD (torch `_single_tensor_sgd`):
//   g = grad (+ λ·p);  buf = first ? g : buf·μ + (1−τ)·g;  d = nesterov ? g + μ·buf : buf
//   p = p + (−lr)·d
struct SgdCoefficients {
  float weight_decay = 0, momentum = 0, dampening_complement = 1 /* 1 − τ */, neg_lr = 0;
  bool decay = false;         // weight_decay != 0 (in double: a decay that rounds to 0 counts)
  bool has_momentum = false;  // momentum != 0
  bool nesterov = false;
  bool first = false;  // step number 1: the buffer starts as the gradient
};
// Step number `t` (1 on the first step) with rate `lr`.
SgdCoefficients SgdCoefficientsFor(const OptimizerConfig& config, int64_t t, double lr);

// One element: updates p (and buf with momentum; buf is untouched without) and returns the
// applied direction d (the state's last_step). The state's last_grad is the raw `grad`.
PIPECAST_HD inline float SgdStep(float& p, float grad, float& buf, const SgdCoefficients& k) {
  float g = grad;
  if (k.decay) g = g + k.weight_decay * p;
  if (k.has_momentum) {
    buf = k.first ? g : buf * k.momentum + k.dampening_complement * g;
    g = k.nesterov ? g + k.momentum * buf : buf;
  }
  p = AddScaled(p, k.neg_lr, g);
  return g;
}

// ΔW's look-ahead coefficients: kCode μ·b + (1−τ)·g, kSpecTrain μ·b + 1·g.
struct SgdDeltaCoefficients {
  float momentum = 0, grad_scale = 1;
  bool has_momentum = false;
};
SgdDeltaCoefficients SgdDeltaCoefficientsFor(const OptimizerConfig& config, DeltaRule rule);

// ΔW of one element under a rule SGD supports (kPaper, kExact, kCode, kSpecTrain); `buf` is 0
// without momentum.
PIPECAST_HD inline float SgdDeltaW(DeltaRule rule, float buf, float last_grad, float last_step,
                                   const SgdDeltaCoefficients& k) {
  switch (rule) {
    case DeltaRule::kPaper:  // PipeOptim Table I: the momentum buffer (the step without one)
      return k.has_momentum ? buf : last_step;
    case DeltaRule::kExact:
      return last_step;
    default:  // kCode, kSpecTrain
      return k.momentum * buf + k.grad_scale * last_grad;
  }
}

// ---------------------------------------------------------------------------------------------
// Adam and AdamW (torch `_single_tensor_adam` / `_single_tensor_adamw`):
//   AdamW: p = p·(1 − lr·λ)            Adam: g = grad + λ·p
//   m = m + (1−β1)·(g − m);  v = v·β2 + (1−β2)·g·g;  amsgrad: vmax = max(vmax, v), used for v
//   r = m/(sqrt(v)/sqrt(bc2) + ε);  p = p + (−lr/bc1)·r
//   d = r·(1/bc1) (+ λ·p_prev for AdamW), the state's last_step
struct AdamCoefficients {
  // Functions of the step number alone (ΔW uses these).
  float one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0, bc2_sqrt = 0, eps = 0, inv_bc1 = 0;
  // The step's.
  float neg_step_size = 0, weight_decay = 0, decay = 1 /* 1 − lr·λ */;
  bool has_decay = false;  // weight_decay != 0
  bool decoupled = false;  // AdamW
  bool amsgrad = false;
};
// Step number `t` >= 1 with rate `lr` (ΔW needs only the t fields: any lr will do there).
AdamCoefficients AdamCoefficientsFor(const OptimizerConfig& config, int64_t t, double lr);

// m/(sqrt(v)/sqrt(bc2) + ε), torch's addcdiv operand.
PIPECAST_HD inline float AdamRatio(float m, float v, const AdamCoefficients& k) {
  return m / (std::sqrt(v) / k.bc2_sqrt + k.eps);
}

// One element: updates p, m, v and, with amsgrad, vmax (untouched without); returns d.
PIPECAST_HD inline float AdamStep(float& p, float grad, float& m, float& v, float& vmax,
                                  const AdamCoefficients& k) {
  float g = grad;
  const float p_prev = p;
  float q = p;
  if (k.has_decay) {
    if (k.decoupled) {
      q = q * k.decay;
    } else {
      g = g + k.weight_decay * q;
    }
  }
  m = m + k.one_minus_beta1 * (g - m);
  v = v * k.beta2 + k.one_minus_beta2 * g * g;
  float v_used = v;
  if (k.amsgrad) v_used = vmax = MaxOf(vmax, v);
  const float r = AdamRatio(m, v_used, k);
  p = AddScaled(q, k.neg_step_size, r);
  float d = r * k.inv_bc1;  // m̂/(√v̂+ε), the same float expression kPaper evaluates
  if (k.decoupled && k.has_decay) d = d + k.weight_decay * p_prev;
  return d;
}

// ΔW of one element under kPaper, kCode, kExact or kXPipe (kXPipe ignores amsgrad's maximum).
PIPECAST_HD inline float AdamDeltaW(DeltaRule rule, float m, float v, float vmax, float last_step,
                                    const AdamCoefficients& k) {
  if (rule == DeltaRule::kExact) return last_step;
  const float v_used = k.amsgrad && rule != DeltaRule::kXPipe ? vmax : v;
  return AdamRatio(m, v_used, k) * k.inv_bc1;
}

// ---------------------------------------------------------------------------------------------
// RMSprop (torch `_single_tensor_rmsprop`):
//   g = grad (+ λ·p);  sa = sa·α + (1−α)·g·g
//   centered: ga = ga + (1−α)·(g − ga);  avg = sqrt(sa + (−1)·ga·ga)   else avg = sqrt(sa)
//   avg = avg + ε;  momentum: buf = buf·μ + g/avg, d = buf   else d = g/avg;  p = p + (−lr)·d
struct RmspropCoefficients {
  float weight_decay = 0, alpha = 0, one_minus_alpha = 0, eps = 0, momentum = 0, neg_lr = 0;
  bool decay = false;         // weight_decay != 0
  bool has_momentum = false;  // momentum > 0
  bool centered = false;
};
RmspropCoefficients RmspropCoefficientsFor(const OptimizerConfig& config, double lr);

// One element: updates p, sa, buf (with momentum) and ga (centered); returns d. ΔW under either
// rule RMSprop supports (kPaper, kExact) is d, the state's last_step.
PIPECAST_HD inline float RmspropStep(float& p, float grad, float& sa, float& buf, float& ga,
                                     const RmspropCoefficients& k) {
  float g = grad;
  if (k.decay) g = g + k.weight_decay * p;
  sa = sa * k.alpha + k.one_minus_alpha * g * g;
  float avg;
  if (k.centered) {
    ga = ga + k.one_minus_alpha * (g - ga);
    avg = std::sqrt(sa + -1.0f * ga * ga);
  } else {
    avg = std::sqrt(sa);
  }
  avg = avg + k.eps;
  float d;
  if (k.has_momentum) {
    buf = buf * k.momentum + g / avg;
    d = buf;
  } else {
    d = g / avg;
  }
  p = AddScaled(p, k.neg_lr, d);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Lion (Chen et al. 2023, the reference code lion_pytorch.py):
//   q = p·(1 − lr·λ);  u = sign(m·β1 + (1−β1)·g);  p = q + (−lr)·u;  m = m·β2 + (1−β2)·g
//   d = u (+ λ·p_prev), the state's last_step; u is its last_sign
struct LionCoefficients {
  float decay = 1, weight_decay = 0, beta1 = 0, one_minus_beta1 = 0, beta2 = 0, one_minus_beta2 = 0,
        neg_lr = 0;
  bool has_decay = false;  // weight_decay != 0
};
LionCoefficients LionCoefficientsFor(const OptimizerConfig& config, double lr);

// One element: updates p and m, sets sign = u; returns d.
PIPECAST_HD inline float LionStep(float& p, float g, float& m, float& sign,
                                  const LionCoefficients& k) {
  const float p_prev = p;
  const float q = k.has_decay ? p_prev * k.decay : p_prev;
  const float u = SignOf(m * k.beta1 + k.one_minus_beta1 * g);
  p = AddScaled(q, k.neg_lr, u);
  m = m * k.beta2 + k.one_minus_beta2 * g;
  sign = u;
  return k.has_decay ? u + k.weight_decay * p_prev : u;
}

// ΔW under kPaper (the sign, no decay) or kExact (the applied step).
PIPECAST_HD inline float LionDeltaW(DeltaRule rule, float sign, float last_step) {
  return rule == DeltaRule::kPaper ? sign : last_step;
}

// ---------------------------------------------------------------------------------------------
// Prediction Ŵ = p + (−lr·s)·ΔW (Optimizer::Predict). A copy of p when lr == 0 or s == 0; before
// the first step ΔW is 0 (so Ŵ = p + (−lr·s)·0, which turns a −0 weight into +0 when lr·s < 0).
struct PredictCoefficients {
  float neg_scale = 0;      // −lr·s rounded once
  bool copy = false;        // lr == 0 or s == 0
  bool zero_delta = false;  // no step taken yet
};
PredictCoefficients PredictCoefficientsFor(double lr, int64_t s, int64_t steps);

}  // namespace pipecast::models
