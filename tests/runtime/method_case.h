// One training run of one pipeline method, described completely: the method and its parameters,
// the pipeline shape, the optimizer, the learning-rate schedule, the model and the data. The
// sequential reference (reference_trainer.h) and the executor adapter (executor_adapter.h) both
// train exactly what a MethodCase says, so their final weights can be compared.
//
// Also the small synthetic problem the runtime tests share: seeded Gaussian clusters behind a
// seeded loader, and an MLP cut into stages.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/data.h"
#include "models/loss.h"
#include "models/model.h"
#include "models/optimizer.h"
#include "models/stage.h"

namespace pipecast::runtime::testing {

// The rate of the update a device makes after `step` of its steps (0-based); a prediction made
// by that device before that update uses the same rate (docs/optimizers.md).
using LearningRate = std::function<double(int32_t device, int64_t step)>;

struct MethodCase {
  std::string method;                         // a name of `pipecast methods`
  std::map<std::string, std::string> params;  // method parameters; absent ones take defaults
  int32_t stages = 2;        // D: devices, one stage each (interleaved: `chunks` each)
  int32_t microbatches = 4;  // M per minibatch
  int32_t minibatches = 3;   // N; N * M microbatches in all
  int32_t microbatch_size = 8;
  // Copies of the pipeline (data parallelism, common/replicate.h): R·D devices and R·M
  // microbatches per minibatch; copy c runs global microbatches (n·R + c)·M .. (n·R + c)·M + M - 1
  // of minibatch n, and every step applies the sum of the copies' gradients.
  int32_t data_parallel = 1;
  models::OptimizerConfig optimizer;  // one optimizer per virtual stage (per copy), all alike
  LearningRate learning_rate = [](int32_t, int64_t) { return 0.05; };
  // Cut into the method's virtual stages with models::Partition; initial weights Init(init_seed).
  std::shared_ptr<const models::Model<float>> model;
  uint64_t init_seed = 3;
  // Global microbatch j (of minibatch j / (R·M)) is loader->Get(j, microbatch_size).
  std::shared_ptr<const models::Loader> loader;
};

// Each stage's slice of a whole-model buffer, in stage order.
inline std::vector<std::vector<float>> StageSlices(const std::vector<models::Stage<float>>& stages,
                                                   std::span<const float> flat) {
  std::vector<std::vector<float>> out;
  for (const models::Stage<float>& s : stages) {
    const std::span<const float> slice = s.Slice(flat);
    out.emplace_back(slice.begin(), slice.end());
  }
  return out;
}

// Forward and backward of global microbatch j through every stage, stage s computing both
// passes with w[s], the loss gradient scaled by `scale`; adds each stage's weight gradient to
// grads[s] (sequential training, as the hand-written references do it).
inline void AccumulateGradients(const std::vector<models::Stage<float>>& stages,
                                const std::vector<std::vector<float>>& w,
                                const models::Loader& loader, int32_t j, int32_t microbatch_size,
                                float scale, std::vector<std::vector<float>>& grads) {
  const models::Batch b = loader.Get(j, microbatch_size);
  std::vector<models::StageSaved<float>> saved(stages.size());
  models::Matrix<float> x = b.x;
  for (size_t s = 0; s < stages.size(); ++s) x = stages[s].Forward(w[s], x, &saved[s]);
  models::Matrix<float> dy = models::SoftmaxCrossEntropy<float>(x, b.labels, scale).dlogits;
  for (size_t s = stages.size(); s-- > 0;) {
    dy = stages[s].BackwardInput(w[s], dy, &saved[s]);
    stages[s].BackwardWeight(saved[s], grads[s]);
  }
}

// 512 examples of 12 features in 4 seeded Gaussian clusters, shuffled per epoch by a seeded
// loader: the data of the runtime training tests.
inline std::shared_ptr<const models::Loader> ClusterLoader() {
  auto data =
      models::MakeClassificationDataset(std::make_shared<const models::ClassificationData>(
                                            models::MakeGaussianClusters(512, 12, 4, 1.0, 1.0, 5)),
                                        "clusters");
  return std::make_shared<const models::Loader>(data, 11);
}

// An MLP from the 12 cluster features to 4 classes with `hidden` layers of 16 units: hidden + 1
// Linear layers, each followed by a ReLU but the last.
inline std::shared_ptr<const models::Model<float>> ClusterMlp(int32_t hidden = 2) {
  return std::make_shared<const models::Model<float>>(
      *models::MakeMlp<float>(12, std::vector<int64_t>(hidden, 16), 4));
}

}  // namespace pipecast::runtime::testing
