// GpuStage: a models::Stage's layers on a CUDA device, with the same flat parameter layout as
// the CPU layers (so weights, gradients and checkpoints are interchangeable between devices),
// and its softmax cross-entropy loss.
//
// The passes have the contracts of models/layer.h, over device memory and one stream: Forward
// writes y and the record; BackwardInput writes dx (when not null) and completes the record
// with what BackwardWeight needs, using the weights it is given; BackwardWeight adds the weight
// gradient into `grad`. Memory(rows) says how many floats of record (kept per microbatch) and
// scratch (shared by every pass on the stream) the passes need; the caller owns both, so the
// passes allocate nothing. Reductions are deterministic (no floating-point atomics: bias and
// LayerNorm gradients by fixed-order column sums, the embedding's backward by a sort and a
// segmented sum), GEMMs run through Gemm with algorithms chosen once per shape, no TF32.
// Kernels live in .cu files behind launch functions (gpu_kernels.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "models/layer.h"
#include "models/stage.h"

namespace pipecast::runtime::cuda {

class Gemm;  // gemm.h

// What every pass runs on: its stream and the GEMM engine of that stream (its own workspace).
struct GpuContext {
  cudaStream_t stream = nullptr;
  Gemm* gemm = nullptr;
};

// One layer on the device (implementations in gpu_layers.*).
class GpuLayer {
 public:
  virtual ~GpuLayer() = default;
  virtual int64_t num_params() const = 0;
  virtual int64_t input_width() const = 0;
  virtual int64_t output_width() const = 0;
  virtual models::LayerMemory Memory(int64_t rows) const = 0;  // floats
  virtual void Forward(const float* params, const float* x, float* y, float* saved, float* scratch,
                       int64_t rows, const GpuContext& ctx) const = 0;
  virtual void BackwardInput(const float* params, const float* x, const float* y, const float* dy,
                             float* dx, float* saved, float* scratch, int64_t rows,
                             const GpuContext& ctx) const = 0;
  virtual void BackwardWeight(const float* x, const float* y, const float* dy, const float* saved,
                              float* grad, float* scratch, int64_t rows,
                              const GpuContext& ctx) const = 0;
};

class GpuStage {
 public:
  // The device version of every layer of `stage` (Linear, ReLU, GELU, LayerNorm,
  // CausalSelfAttention, Embedding, Sequential, Residual). Errors: kInvalidArgument naming a
  // layer the CUDA device does not implement. Allocates nothing on the device.
  static Result<GpuStage> Create(const models::Stage<float>& stage);

  int64_t num_params() const { return num_params_; }
  int64_t input_width() const { return input_width_; }
  int64_t output_width() const { return output_width_; }
  // Floats per microbatch of `rows` rows: the record and the scratch of the passes below. With an
  // embedding, the scratch includes CUB's sort storage for the current device, so Memory needs
  // a device then (it aborts without one); other stages' sizes are plain arithmetic.
  models::LayerMemory Memory(int64_t rows) const;

  // The chained passes (layer.h contracts; dx may be null: then only the record is made).
  void Forward(const float* params, const float* x, float* y, float* record, float* scratch,
               int64_t rows, const GpuContext& ctx) const;
  void BackwardInput(const float* params, const float* x, const float* y, const float* dy,
                     float* dx, float* record, float* scratch, int64_t rows,
                     const GpuContext& ctx) const;
  void BackwardWeight(const float* x, const float* y, const float* dy, const float* record,
                      float* grad, float* scratch, int64_t rows, const GpuContext& ctx) const;

 private:
  std::vector<std::shared_ptr<const GpuLayer>> layers_;
  int64_t num_params_ = 0, input_width_ = 0, output_width_ = 0;
};

// Softmax cross-entropy of `rows` rows of logits with device labels, as
// models::SoftmaxCrossEntropyInto computes it (row losses in double, their mean; dlogits =
// (softmax - onehot) / rows * scale unless dlogits is null), and the rows whose first largest
// logit is the label. Results are written to device memory: *loss (double, the mean; a NaN or
// Inf stays there for the caller to see) and *correct is incremented (int64). Deterministic:
// per-row values, then a fixed-order reduction. `scratch` holds LossScratch(rows) doubles.
int64_t LossScratch(int64_t rows);
void SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t rows, int64_t classes,
                         double scale, float* dlogits, double* loss, long long* correct,
                         double* scratch, cudaStream_t stream);

}  // namespace pipecast::runtime::cuda
