// The fused optimizer kernels of optimizer_kernels.h: optimizer_dispatch.h's choice of op, run
// by GroupLoopKernel over every group of the buffers.
#include "runtime/cuda/optimizer_dispatch.h"
#include "runtime/cuda/optimizer_kernels.h"

namespace pipecast::runtime::cuda {

void LaunchStep(const models::OptimizerConfig& config, const StateLayout& state, int64_t t,
                float* params, const float* grad, double lr, const FusedExtras& extras,
                cudaStream_t stream) {
  DispatchStep(config, state, t, params, grad, lr, extras, [&](const auto& op, bool aligned) {
    LaunchGroups(op, state.n, aligned, stream, "optimizer step");
  });
}

void LaunchPredict(const models::OptimizerConfig& config, const StateLayout& state, int64_t steps,
                   const float* params, const models::PredictCoefficients& p,
                   models::DeltaRule rule, float* out, cudaStream_t stream) {
  DispatchPredict(config, state, steps, params, p, rule, out, [&](const auto& op, bool aligned) {
    LaunchGroups(op, state.n, aligned, stream, "optimizer prediction");
  });
}

}  // namespace pipecast::runtime::cuda
