// Executor overhead and layer speed (issue targets: the executor's own overhead at most 3% of
// the default job's compute; the layers' matrix products at least 80% of Eigen's GEMM).
//   BM_PlainTrainingLoop: the default job's MLP, one stage, M microbatches: load the batch,
//     forward, loss, backward, accumulate, one SGD step, written as a plain loop.
//   BM_ExecutorOneStage: the same work as a 1-device 1F1B program run by the executor.
//   Both train kMinibatches minibatches per iteration (a segment of the trainer is longer).
//   BM_LinearForward / BM_EigenGemm: the 784 -> 256 layer on 32 rows against the bare product.
#include <benchmark/benchmark.h>

#include "common/generators.h"
#include "common/lower.h"
#include "models/data.h"
#include "models/linear.h"
#include "models/loss.h"
#include "models/model.h"
#include "runtime/cpu_backend.h"
#include "runtime/executor.h"
#include "runtime/inproc_transport.h"

namespace pipecast {
namespace {

constexpr int32_t kMicrobatches = 4, kMicrobatchSize = 32, kMinibatches = 8;

struct Setup {
  std::shared_ptr<const models::Dataset> data = models::MakeClassificationDataset(
      std::make_shared<const models::ClassificationData>(
          models::MakeGaussianClusters(1024, 784, 10, 1.0, 1.0, 1)),
      "clusters");
  models::Loader loader{data, 1};
  models::Model<float> model = *models::MakeMlp<float>(784, {256, 128, 64, 64}, 10);
  std::vector<float> weights = model.Init(1);
  models::OptimizerConfig sgd{models::OptimizerKind::kSgd, 0.01, 0.9};
};

void BM_PlainTrainingLoop(benchmark::State& state) {
  Setup s;
  auto opt = std::move(models::Optimizer::Create(s.sgd, s.weights.size())).value();
  std::vector<float> grad(s.weights.size());
  for (auto _ : state) {
    for (int32_t n = 0; n < kMinibatches; ++n) {
      std::fill(grad.begin(), grad.end(), 0.0f);
      for (int32_t j = 0; j < kMicrobatches; ++j) {
        // A real loop loads its data.
        const models::Batch batch = s.loader.Get(n * kMicrobatches + j, kMicrobatchSize);
        models::StageSaved<float> saved;
        const auto logits = s.model.Forward(s.weights, batch.x, &saved);
        const auto loss =
            models::SoftmaxCrossEntropy<float>(logits, batch.labels, 1.0 / kMicrobatches);
        s.model.BackwardInput(s.weights, loss.dlogits, &saved);
        s.model.BackwardWeight(saved, grad);
      }
      opt->Step(s.weights, grad, 0.01);
    }
  }
  state.SetItemsProcessed(state.iterations() * kMinibatches * kMicrobatches * kMicrobatchSize);
}

void BM_ExecutorOneStage(benchmark::State& state) {
  Setup s;
  auto p = ir::Generate({"1f1b", 1, kMicrobatches, kMinibatches, kMicrobatchSize, {}});
  const ir::Program program = ir::InsertCommunication(*p);
  auto stages = *models::Partition(s.model, 1);
  std::vector<std::unique_ptr<runtime::StageBackend>> backends;
  backends.push_back(std::make_unique<runtime::CpuStageBackend>(stages[0]));
  std::vector<std::unique_ptr<runtime::StageOptimizer>> optimizers;
  optimizers.push_back(std::make_unique<runtime::ModelOptimizer>(
      std::move(models::Optimizer::Create(s.sgd, s.weights.size())).value(),
      models::DeltaRule::kPaper));
  std::vector<std::vector<float>> weights = {s.weights};
  runtime::ExecutorConfig config;
  for (auto _ : state) {
    runtime::LoaderFeed feed(s.loader, kMicrobatchSize, 0);
    runtime::InProcessTransport transport(1);
    auto r = runtime::Execute(program, backends, optimizers, std::move(weights), feed, transport,
                              config);
    weights = std::move(r->weights);
  }
  state.SetItemsProcessed(state.iterations() * kMinibatches * kMicrobatches * kMicrobatchSize);
}

void BM_LinearForward(benchmark::State& state) {
  models::Linear<float> layer(784, 256);
  std::vector<float> w(layer.num_params());
  models::Rng rng(1);
  layer.Init(w, rng);
  models::Matrix<float> x = models::Matrix<float>::Random(kMicrobatchSize, 784);
  for (auto _ : state) {
    models::Saved<float> saved;
    benchmark::DoNotOptimize(layer.Forward(w, x, &saved));
  }
  state.counters["flops"] = benchmark::Counter(
      2.0 * kMicrobatchSize * 784 * 256 * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_EigenGemm(benchmark::State& state) {
  models::Matrix<float> x = models::Matrix<float>::Random(kMicrobatchSize, 784);
  models::Matrix<float> w = models::Matrix<float>::Random(256, 784);
  models::Matrix<float> y(kMicrobatchSize, 256);
  for (auto _ : state) {
    y.noalias() = x * w.transpose();
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["flops"] = benchmark::Counter(
      2.0 * kMicrobatchSize * 784 * 256 * state.iterations(), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_PlainTrainingLoop)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ExecutorOneStage)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LinearForward)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EigenGemm)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace pipecast

BENCHMARK_MAIN();
