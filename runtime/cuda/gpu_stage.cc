// GpuStage (gpu_stage.h): a stage's layers as a chain of GPU layers, and the loss.
#include "runtime/cuda/gpu_stage.h"

#include <string>

#include "common/check.h"
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/gpu_layers.h"

namespace pipecast::runtime::cuda {

Result<GpuStage> GpuStage::Create(const models::Stage<float>& stage) {
  GpuStage gpu;
  for (size_t i = 0; i < stage.layers().size(); ++i) {
    const std::string where =
        "layer " + std::to_string(stage.first_layer() + static_cast<int64_t>(i));
    Result<GpuLayerPtr> layer = MakeGpuLayer(*stage.layers()[i], where);
    if (!layer.ok()) return layer.status();
    gpu.layers_.push_back(std::move(layer).value());
  }
  gpu.num_params_ = ChainParams(gpu.layers_);
  gpu.input_width_ = stage.input_width();
  gpu.output_width_ = stage.output_width();
  PIPECAST_CHECK(gpu.num_params_ == stage.num_params())
      << "GPU stage has " << gpu.num_params_ << " parameters, the CPU stage " << stage.num_params();
  return gpu;
}

models::LayerMemory GpuStage::Memory(int64_t rows) const { return ChainMemory(layers_, rows); }

void GpuStage::Forward(const float* params, const float* x, float* y, float* record, float* scratch,
                       int64_t rows, const GpuContext& ctx) const {
  ChainForward(layers_, input_width_, params, x, y, record, scratch, rows, ctx);
}

void GpuStage::BackwardInput(const float* params, const float* x, const float* y, const float* dy,
                             float* dx, float* record, float* scratch, int64_t rows,
                             const GpuContext& ctx) const {
  ChainBackwardInput(layers_, input_width_, params, x, y, dy, dx, record, scratch, rows, ctx);
}

void GpuStage::BackwardWeight(const float* x, const float* y, const float* dy, const float* record,
                              float* grad, float* scratch, int64_t rows,
                              const GpuContext& ctx) const {
  ChainBackwardWeight(layers_, x, y, dy, record, grad, scratch, rows, ctx);
}

int64_t LossScratch(int64_t rows) { return 2 * rows; }

void SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t rows, int64_t classes,
                         double scale, float* dlogits, double* loss, long long* correct,
                         double* scratch, cudaStream_t stream) {
  LaunchSoftmaxCrossEntropy(logits, labels, rows, classes, scale, dlogits, loss, correct, scratch,
                            stream);
}

}  // namespace pipecast::runtime::cuda
