// The fused optimizer kernels as CudaOptimizer (cuda_optimizer.cc) calls them: the state layout,
// the extras with their host-computed coefficients, and one launch per step or prediction
// (optimizer_kernels.cu). Which op runs with which tensors and coefficients is
// optimizer_dispatch.h's, shared with the host tests; the ops are optimizer_ops.h's. Pointers are
// device memory of `n` floats; a null state pointer is a tensor the configuration does not have.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "models/optimizer.h"
#include "models/optimizer_math.h"
#include "runtime/cuda/cuda_optimizer.h"

namespace pipecast::runtime::cuda {

// What a fused step writes besides W and the state, with its coefficients computed on the host.
struct FusedExtras {
  float* velocity = nullptr;  // v = gamma·v + one_minus_gamma·(W_new − W_old)
  float gamma = 0, one_minus_gamma = 1;
  float* predicted = nullptr;  // Ŵ = W_new + neg_scale·ΔW(rule), or W_new when predict.copy
  models::PredictCoefficients predict;
  models::DeltaRule rule = models::DeltaRule::kPaper;
};

// The extras of step number t (1 on the first step): CpuDevice::Step's 1 − γ in float and
// models::Optimizer::Predict's coefficients.
inline FusedExtras MakeFusedExtras(const StepExtras& extras, int64_t t) {
  FusedExtras e;
  e.velocity = extras.velocity;
  e.gamma = extras.gamma;
  e.one_minus_gamma = 1.0f - extras.gamma;
  e.predicted = extras.predicted;
  e.rule = extras.rule;
  if (e.predicted != nullptr) {
    e.predict = models::PredictCoefficientsFor(extras.predict_lr, extras.predict_s, t);
  }
  return e;
}

// One optimizer's state tensors, `names` in models::Optimizer::StateTensors' order, each `n`
// floats, tensor k at base + k·stride: the stride rounds n up to 64 floats (256 bytes), so that
// every tensor of an aligned allocation is aligned for float4 access whatever n is.
struct StateLayout {
  static constexpr int64_t kAlignFloats = 64;
  static int64_t StrideFor(int64_t n) {
    return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  }

  std::vector<std::string> names;
  float* base = nullptr;
  int64_t n = 0;
  int64_t stride = 0;

  // Floats of the whole state (padding included).
  int64_t floats() const { return static_cast<int64_t>(names.size()) * stride; }
  // The tensor called `name`, or null when the configuration has none.
  float* Tensor(std::string_view name) const {
    for (size_t k = 0; k < names.size(); ++k) {
      if (names[k] == name && base != nullptr) return base + static_cast<int64_t>(k) * stride;
    }
    return nullptr;
  }
};

struct SgdState {
  float* momentum_buffer = nullptr;  // null without momentum
  float* last_grad = nullptr;
  float* last_step = nullptr;
};
struct AdamState {
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  float* max_exp_avg_sq = nullptr;  // null without amsgrad
  float* last_step = nullptr;
};
struct RmspropState {
  float* square_avg = nullptr;
  float* momentum_buffer = nullptr;  // null without momentum
  float* grad_avg = nullptr;         // null unless centered
  float* last_step = nullptr;
};
struct LionState {
  float* exp_avg = nullptr;
  float* last_sign = nullptr;
  float* last_step = nullptr;
};

// Step number `t` with rate `lr` of `config`'s optimizer over `state`, enqueued on `stream`.
void LaunchStep(const models::OptimizerConfig& config, const StateLayout& state, int64_t t,
                float* params, const float* grad, double lr, const FusedExtras& extras,
                cudaStream_t stream);
// out = params + p.neg_scale·ΔW(rule) after `steps` steps (ΔW = 0 when p.zero_delta).
// REQUIRES: !p.copy (the caller copies).
void LaunchPredict(const models::OptimizerConfig& config, const StateLayout& state, int64_t steps,
                   const float* params, const models::PredictCoefficients& p,
                   models::DeltaRule rule, float* out, cudaStream_t stream);

}  // namespace pipecast::runtime::cuda
