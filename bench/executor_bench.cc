// Executor overhead and layer speed (issue targets: the executor's own overhead at most 3% of the
// compute at D = 1, 2 and 4; the layers' matrix products at least 80% of Eigen's GEMM).
//   BM_PlainPipeline/D: the default job's MLP cut into D stages, 1F1B, written as a plain loop
//     with one thread per stage: the same layers (their *Into passes, preallocated buffers), the
//     same data, loss and optimizer, activations handed between threads through a bounded queue
//     of preallocated buffers. No plan, no version bookkeeping, no checks.
//   BM_Executor/D: the same work as a D-device 1F1B program run by the executor on CPU devices
//     (plan, records, transport, served-weights trace, finiteness checks, timing).
//   Both train kMinibatches minibatches of kMicrobatches x kMicrobatchSize per iteration.
//   BM_LinearForward / BM_EigenGemm: the 784 -> 256 layer on 32 rows against the bare product.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/generators.h"
#include "common/lower.h"
#include "models/data.h"
#include "models/linear.h"
#include "models/loss.h"
#include "models/model.h"
#include "runtime/cpu/cpu_device.h"
#include "runtime/executor.h"
#include "runtime/inproc_transport.h"
#include "runtime/loader_feed.h"

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

// A bounded queue of preallocated float buffers between two stage threads.
class Channel {
 public:
  Channel(size_t capacity, size_t floats) : slots_(capacity, std::vector<float>(floats)) {}
  void Push(const float* data) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return count_ < slots_.size(); });
    std::copy(data, data + slots_[0].size(), slots_[(head_ + count_) % slots_.size()].begin());
    ++count_;
    cv_.notify_all();
  }
  void Pop(float* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return count_ > 0; });
    std::copy(slots_[head_].begin(), slots_[head_].end(), out);
    head_ = (head_ + 1) % slots_.size();
    --count_;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<float>> slots_;
  size_t head_ = 0, count_ = 0;
};

// One stage of the plain pipeline: its layers, weights, gradient, optimizer, and one record
// per microbatch of a minibatch.
struct PlainStage {
  PlainStage(const models::Stage<float>& s, const Setup& setup)
      : layers(s),
        w(setup.weights.begin() + s.param_offset(),
          setup.weights.begin() + s.param_offset() + s.num_params()),
        g(w.size(), 0.0f),
        opt(models::Optimizer::Create(setup.sgd, w.size()).value()) {
    const int64_t rows = kMicrobatchSize;
    const models::LayerMemory m = s.Memory(rows);
    in = s.input_width();
    out = s.output_width();
    for (int j = 0; j < kMicrobatches; ++j) {
      x.emplace_back(rows * in);
      y.emplace_back(rows * out);
      dy.emplace_back(rows * out);
      dx.emplace_back(rows * in);
      saved.emplace_back(m.saved);
    }
    scratch.resize(m.scratch);
  }
  const models::Stage<float>& layers;
  std::vector<float> w, g;
  std::unique_ptr<models::Optimizer> opt;
  int64_t in = 0, out = 0;
  std::vector<std::vector<float>> x, y, dy, dx, saved;
  std::vector<float> scratch;
};

void PlainStageLoop(int32_t k, int32_t d, PlainStage& st, const Setup& s, Channel* from_prev,
                    Channel* to_next, Channel* grad_from_next, Channel* grad_to_prev) {
  const int64_t rows = kMicrobatchSize;
  std::vector<int64_t> indices(kMicrobatchSize);
  std::vector<int32_t> labels(rows);
  auto forward = [&](int32_t n, int32_t j) {
    if (k == 0) {
      s.loader.Fill(n * kMicrobatches + j, kMicrobatchSize, indices, st.x[j], {});
    } else {
      from_prev->Pop(st.x[j].data());
    }
    st.layers.ForwardInto(st.w, models::MakeConstView(st.x[j].data(), rows, st.in),
                          models::MakeView(st.y[j].data(), rows, st.out), st.saved[j], st.scratch);
    if (k == d - 1) {
      s.loader.Fill(n * kMicrobatches + j, kMicrobatchSize, indices, {}, labels);
      models::SoftmaxCrossEntropyInto<float>(models::MakeConstView(st.y[j].data(), rows, st.out),
                                             labels, 1.0 / kMicrobatches,
                                             models::MakeView(st.dy[j].data(), rows, st.out));
    } else {
      to_next->Push(st.y[j].data());
    }
  };
  auto backward = [&](int32_t j) {
    if (k < d - 1) grad_from_next->Pop(st.dy[j].data());
    const auto x = models::MakeConstView(st.x[j].data(), rows, st.in);
    const auto y = models::MakeConstView(st.y[j].data(), rows, st.out);
    const auto dy = models::MakeConstView(st.dy[j].data(), rows, st.out);
    st.layers.BackwardInputInto(
        st.w, x, y, dy,
        k > 0 ? models::MakeView(st.dx[j].data(), rows, st.in) : models::View<float>(nullptr, 0, 0),
        st.saved[j], st.scratch);
    st.layers.BackwardWeightInto(x, y, dy, st.saved[j], st.g, st.scratch);
    if (k > 0) grad_to_prev->Push(st.dx[j].data());
  };
  const int32_t warmup = std::min(d - k - 1, kMicrobatches);
  for (int32_t n = 0; n < kMinibatches; ++n) {
    for (int32_t j = 0; j < warmup; ++j) forward(n, j);
    for (int32_t j = 0; j < kMicrobatches - warmup; ++j) {
      forward(n, warmup + j);
      backward(j);
    }
    for (int32_t j = kMicrobatches - warmup; j < kMicrobatches; ++j) backward(j);
    st.opt->Step(st.w, st.g, 0.01);
    std::fill(st.g.begin(), st.g.end(), 0.0f);
  }
}

// Both benchmarks build their stages (weights from the same initialisation, fresh optimizer
// state) outside the timed region of every iteration, so each iteration trains the same
// minibatches from the same start (a model trained on for thousands of iterations slows down
// on denormal gradients), and time the training itself, as a segment of a run is timed.
void BM_PlainPipeline(benchmark::State& state) {
  const int32_t d = static_cast<int32_t>(state.range(0));
  Setup s;
  const auto stages = *models::Partition(s.model, d);
  std::vector<std::unique_ptr<Channel>> act, grad;
  for (int32_t k = 0; k < d; ++k) {
    const size_t floats = static_cast<size_t>(kMicrobatchSize * stages[k].output_width());
    act.push_back(std::make_unique<Channel>(kMicrobatches, floats));
    grad.push_back(std::make_unique<Channel>(kMicrobatches, floats));
  }
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::unique_ptr<PlainStage>> st;
    for (int32_t k = 0; k < d; ++k) st.push_back(std::make_unique<PlainStage>(stages[k], s));
    state.ResumeTiming();
    std::vector<std::thread> threads;
    for (int32_t k = 0; k < d; ++k) {
      threads.emplace_back(PlainStageLoop, k, d, std::ref(*st[k]), std::cref(s),
                           k > 0 ? act[k - 1].get() : nullptr, act[k].get(), grad[k].get(),
                           k > 0 ? grad[k - 1].get() : nullptr);
    }
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(state.iterations() * kMinibatches * kMicrobatches * kMicrobatchSize);
}

void BM_Executor(benchmark::State& state) {
  const int32_t d = static_cast<int32_t>(state.range(0));
  Setup s;
  auto p = ir::Generate({"1f1b", d, kMicrobatches, kMinibatches, kMicrobatchSize, {}});
  const ir::Program program = ir::InsertCommunication(*p);
  const ir::VersionPlan plan = ir::BuildVersionPlan(program, ir::PlanDetail::kExecution);
  const auto stages = *models::Partition(s.model, d);
  runtime::LoaderFeed feed(s.loader, kMicrobatchSize, 0);
  runtime::ExecutorConfig config;
  config.learning_rate = [](int32_t, int64_t) { return 0.01; };
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::unique_ptr<runtime::CpuDevice>> cpus;
    std::vector<runtime::Device*> devices;
    for (int32_t k = 0; k < d; ++k) {
      auto cpu = runtime::CpuDevice::Create({{k, stages[k], s.sgd}}).value();
      cpu->SetWeights(k, std::span<const float>(s.weights).subspan(stages[k].param_offset(),
                                                                   stages[k].num_params()));
      devices.push_back(cpu.get());
      cpus.push_back(std::move(cpu));
    }
    // Prepare allocates and zeroes the plan's buffers, as PlainStage's constructor does for the
    // plain loop: both stay outside the timed region (BM_Prepare times Prepare on its own). A
    // fresh transport belongs to the run, as every segment of training has one.
    for (int32_t k = 0; k < d; ++k)
      (void)cpus[k]->Prepare({&program, &plan, k, kMicrobatchSize, 0, false});
    state.ResumeTiming();
    runtime::InProcessTransport transport(d, {d, program.total_microbatches(), 0});
    auto r = runtime::Execute(program, plan, devices, feed, transport, config);
    if (!r.ok()) state.SkipWithError(r.status().message().c_str());
  }
  state.SetItemsProcessed(state.iterations() * kMinibatches * kMicrobatches * kMicrobatchSize);
}

// What a segment of training pays once before it runs: every device's Prepare (buffers sized
// by the plan, allocated and zeroed).
void BM_Prepare(benchmark::State& state) {
  const int32_t d = static_cast<int32_t>(state.range(0));
  Setup s;
  auto p = ir::Generate({"1f1b", d, kMicrobatches, kMinibatches, kMicrobatchSize, {}});
  const ir::Program program = ir::InsertCommunication(*p);
  const ir::VersionPlan plan = ir::BuildVersionPlan(program, ir::PlanDetail::kExecution);
  const auto stages = *models::Partition(s.model, d);
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<std::unique_ptr<runtime::CpuDevice>> cpus;
    for (int32_t k = 0; k < d; ++k)
      cpus.push_back(runtime::CpuDevice::Create({{k, stages[k], s.sgd}}).value());
    state.ResumeTiming();
    for (int32_t k = 0; k < d; ++k)
      (void)cpus[k]->Prepare({&program, &plan, k, kMicrobatchSize, 0, false});
  }
}

void BM_LinearForward(benchmark::State& state) {
  models::Linear<float> layer(784, 256);
  std::vector<float> w(layer.num_params());
  models::Rng rng(1);
  layer.Init(w, rng);
  models::Matrix<float> x = models::Matrix<float>::Random(kMicrobatchSize, 784);
  models::Matrix<float> y(kMicrobatchSize, 256);
  std::vector<float> scratch(layer.Memory(kMicrobatchSize).scratch);
  for (auto _ : state) {
    layer.ForwardInto(w, models::MakeConstView(x.data(), kMicrobatchSize, 784),
                      models::MakeView(y.data(), kMicrobatchSize, 256), {}, scratch);
    benchmark::DoNotOptimize(y.data());
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

BENCHMARK(BM_PlainPipeline)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Executor)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Prepare)->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LinearForward)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EigenGemm)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace pipecast

BENCHMARK_MAIN();
