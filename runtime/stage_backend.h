// What the executor needs from the code that computes one virtual stage: forward, the input
// gradient and the weight gradient of a microbatch, with the weights passed in explicitly so the
// executor decides which version each pass uses. The backend keeps each microbatch's saved
// activations from Forward until BackwardWeight (or a full backward) is done with them.
//
// Stream-shaped on purpose: a CUDA backend will enqueue these on a stream and the executor will
// synchronise through events; on the CPU each call completes before it returns.
#pragma once

#include <cstdint>
#include <span>

#include "runtime/tensor.h"

namespace pipecast::runtime {

class StageBackend {
 public:
  virtual ~StageBackend() = default;
  virtual int64_t num_params() const = 0;
  virtual Tensor Forward(int32_t microbatch, std::span<const float> weights, const Tensor& x) = 0;
  // The input gradient; when `need_dx` is false (stage 0: nobody consumes it) the backend may
  // return an empty tensor and skip producing it.
  virtual Tensor BackwardInput(int32_t microbatch, std::span<const float> weights,
                               const Tensor& dy, bool need_dx) = 0;
  // grad += weight gradient of the microbatch; releases its saved activations.
  virtual void BackwardWeight(int32_t microbatch, std::span<float> grad) = 0;
};

// Inputs of stage 0 and the loss at the last stage, for microbatch j (global index).
class DataFeed {
 public:
  virtual ~DataFeed() = default;
  virtual Tensor Input(int32_t microbatch) = 0;
  // Mean loss over the microbatch's rows; *dlogits = scale * d(mean loss)/d(logits).
  virtual double Loss(int32_t microbatch, const Tensor& logits, float scale, Tensor* dlogits) = 0;
};

}  // namespace pipecast::runtime

namespace pipecast::runtime {

// The optimizer of one virtual stage, as the executor uses it: a step with the step's learning
// rate, and weight prediction W - lr * s * dW from the optimizer's current state (the dW rule is
// fixed when the optimizer is built: PipeOptim's Table I, SpecTrain's momentum, XPipe's Adam).
class StageOptimizer {
 public:
  virtual ~StageOptimizer() = default;
  virtual void Step(std::span<float> weights, std::span<const float> grad, double lr) = 0;
  virtual void Predict(std::span<const float> weights, double lr, int32_t s,
                       std::span<float> out) const = 0;
};

}  // namespace pipecast::runtime
