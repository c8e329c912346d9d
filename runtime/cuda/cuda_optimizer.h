// CudaOptimizer: one stage's optimizer on a CUDA device: its state in device memory, and one
// fused kernel per optimizer (SGD with momentum, dampening, Nesterov and weight decay; Adam and
// AdamW with amsgrad; RMSprop with momentum and centering; Lion) that reads W, the gradient and
// the state once and writes the new W and state, and in the same pass, on request, PipeMare's
// velocity and a predicted Ŵ = W_new − lr·s·ΔW. The element-wise mathematics is the CPU
// optimizer's own (models/optimizer_math.h, __host__ __device__), with the scalar coefficients
// computed on the host exactly as models::Optimizer computes them, and the kernels are built
// with --fmad=false, so that every result is bit-identical to models::Optimizer on the same
// inputs. State tensors carry the names, order and meaning of models::Optimizer::StateTensors,
// so checkpoints move freely between the CPU and the CUDA device.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "models/optimizer.h"

namespace pipecast::runtime::cuda {

// What one fused step writes besides W and the state.
struct StepExtras {
  // PipeMare (docs/methods.md): velocity <- gamma·velocity + (1 − gamma)·(W_new − W_old), in
  // float, as CpuDevice::Step computes it. Null: none.
  float* velocity = nullptr;
  float gamma = 0;
  // Ŵ = W_new − lr·s·ΔW(rule) after the step, as models::Optimizer::Predict computes it from
  // the state after the step. Null: none.
  float* predicted = nullptr;
  double predict_lr = 0;
  int32_t predict_s = 0;
  models::DeltaRule rule = models::DeltaRule::kPaper;
};

class CudaOptimizer {
 public:
  // Validates `config` as models::Optimizer::Create does and allocates zeroed device state for
  // `num_params` parameters on the current CUDA device (before any program runs). Errors: the
  // configuration's, or kDeviceError naming the bytes the state needed.
  static Result<std::unique_ptr<CudaOptimizer>> Create(const models::OptimizerConfig& config,
                                                       int64_t num_params);
  ~CudaOptimizer();
  CudaOptimizer(const CudaOptimizer&) = delete;
  CudaOptimizer& operator=(const CudaOptimizer&) = delete;

  const models::OptimizerConfig& config() const;
  int64_t num_params() const;
  int64_t steps() const;
  // Bytes of device state (each tensor padded to a multiple of 64 floats).
  int64_t state_bytes() const;
  Status SupportsRule(models::DeltaRule rule) const;

  // One update of `params` in place with rate `lr`, enqueued on `stream`; `extras` as above.
  void Step(float* params, const float* grad, double lr, cudaStream_t stream,
            const StepExtras& extras = {});
  // out = params − lr·s·ΔW(rule) from the current state (a copy before the first step).
  // REQUIRES: SupportsRule(rule).ok(); out does not overlap params.
  void Predict(const float* params, double lr, int32_t s, models::DeltaRule rule, float* out,
               cudaStream_t stream) const;

  // Host copies of the state (models::Optimizer::StateTensors' names and order); synchronous,
  // between programs.
  Result<std::vector<models::StateTensor>> StateTensors() const;
  // As models::Optimizer::LoadState: exact names and sizes, steps >= 0, else InvalidArgument.
  Status LoadState(int64_t steps, const std::vector<models::StateTensor>& tensors);

 private:
  struct Impl;
  explicit CudaOptimizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The other weight-side kernels of the device, element-wise in float with the CPU device's
// operation order (runtime/cpu/cpu_device_ops.cc), each enqueued on `stream`. `buffers` is a host
// array of `count` device pointers, read when the call enqueues.
// grad += b, for each of `count` buffers in order (SumGradients).
void SumInto(float* grad, const float* const* buffers, int32_t count, int64_t n,
             cudaStream_t stream);
// PipeMare's correction: out = W − gap·velocity.
void Correct(const float* weights, const float* velocity, float gap, float* out, int64_t n,
             cudaStream_t stream);
// AvgPipe (device.h): ElasticAverage over `count` <= 64 buffers and ElasticPull.
void ElasticAverage(float* weights, float* reference, const float* const* buffers, int32_t count,
                    float alpha, int64_t n, cudaStream_t stream);
void ElasticPull(float* weights, const float* reference, float alpha, int64_t n,
                 cudaStream_t stream);
// *flag |= 1 if any of x[0, n) is NaN or Inf (no atomics on floats; an int flag set by
// whichever thread finds one).
void FlagNonFinite(const float* x, int64_t n, int32_t* flag, cudaStream_t stream);
// Prediction accuracy (CpuDevice's Measure): out[0..3] = Σ(p−r)², Σ(r−b)², Σ(p−b)², Σ(p−b)(r−b)
// in double, r the reached weights, p predicted, b base; a fixed-order reduction. `scratch`
// holds MeasureScratch(n) doubles.
int64_t MeasureScratch(int64_t n);
void MeasurePrediction(const float* base, const float* predicted, const float* reached, int64_t n,
                       double* out, double* scratch, cudaStream_t stream);

}  // namespace pipecast::runtime::cuda
