// The CPU backend: adapters from models/ (layers, stages, optimizers, data) to the executor's
// interfaces. A CpuStageBackend runs one models::Stage<float> with Eigen; a ModelOptimizer wraps
// a models::Optimizer with the dW rule weight prediction uses; a LoaderFeed serves microbatch j
// of the run as batch `first_batch + j` of a models::Loader and computes the softmax
// cross-entropy loss at the last stage.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "models/data.h"
#include "models/optimizer.h"
#include "models/stage.h"
#include "runtime/stage_backend.h"

namespace pipecast::runtime {

class CpuStageBackend : public StageBackend {
 public:
  explicit CpuStageBackend(models::Stage<float> stage) : stage_(std::move(stage)) {}
  int64_t num_params() const override { return stage_.num_params(); }
  Tensor Forward(int32_t microbatch, std::span<const float> weights, const Tensor& x) override;
  Tensor BackwardInput(int32_t microbatch, std::span<const float> weights, const Tensor& dy,
                       bool need_dx) override;
  void BackwardWeight(int32_t microbatch, std::span<float> grad) override;

 private:
  models::Stage<float> stage_;
  // Only the device that owns the stage calls it, one action at a time; no lock needed.
  std::map<int32_t, models::StageSaved<float>> saved_;
};

class ModelOptimizer : public StageOptimizer {
 public:
  ModelOptimizer(std::unique_ptr<models::Optimizer> optimizer, models::DeltaRule rule)
      : optimizer_(std::move(optimizer)), rule_(rule) {}
  void Step(std::span<float> weights, std::span<const float> grad, double lr) override {
    optimizer_->Step(weights, grad, lr);
  }
  void Predict(std::span<const float> weights, double lr, int32_t s,
               std::span<float> out) const override {
    optimizer_->Predict(weights, lr, s, rule_, out);
  }
  models::Optimizer& optimizer() { return *optimizer_; }

 private:
  std::unique_ptr<models::Optimizer> optimizer_;
  models::DeltaRule rule_;
};

class LoaderFeed : public DataFeed {
 public:
  LoaderFeed(const models::Loader& loader, int32_t microbatch_size, int64_t first_batch)
      : loader_(loader), microbatch_size_(microbatch_size), first_batch_(first_batch) {}
  Tensor Input(int32_t microbatch) override;
  double Loss(int32_t microbatch, const Tensor& logits, float scale, Tensor* dlogits) override;
  // Correct predictions counted by Loss so far (training accuracy).
  int64_t correct() const;

 private:
  const models::Loader& loader_;
  const int32_t microbatch_size_;
  const int64_t first_batch_;
  mutable std::mutex mu_;
  int64_t correct_ = 0;
  // Labels of microbatches whose input was served, for the loss (the inputs reach the last
  // stage before its loss is computed, so the batch is gathered once).
  std::map<int32_t, std::vector<int32_t>> labels_;
};

Tensor ToTensor(const models::Matrix<float>& m);
models::Matrix<float> ToMatrix(const Tensor& t);

}  // namespace pipecast::runtime
