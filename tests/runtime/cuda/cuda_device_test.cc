// The CUDA device against the CPU device, through the whole training path (runtime/trainer.h):
// every method under every optimizer trains the same model on both and ends with the same
// weights within a float tolerance (the one test that runs every method x optimizer on both
// devices); GPipe and 1F1B on the GPU are bit-identical to sequential training on the GPU (one
// stage, the same microbatch gradients in the same order), as on the CPU; a non-finite loss gives
// the CPU device's message; devices holding two stages match the CPU device too; with two GPUs,
// training is bit-identical to one GPU. Every case skips without a GPU (or the second GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/job.h"
#include "runtime/cuda/cuda_run.h"
#include "runtime/trainer.h"
#include "support/gpu.h"

namespace pipecast::runtime {
namespace {

// Seven hidden layers: 15 layers, enough for the 8 stages interleaved and ZB-V cut at 4 devices.
std::string JobText(const std::string& optimizer, int32_t stages, const std::string& methods) {
  return "name: gpu\n"
         "model: {type: mlp, hidden_sizes: [32, 32, 32, 32, 32, 32, 32]}\n"
         "data: {dataset: synthetic, train_examples: 512, test_examples: 128}\n"
         "optimizer: " +
         optimizer +
         "\n"
         "pipeline: {stages: " +
         std::to_string(stages) +
         ", microbatches: 4, microbatch_size: 8}\n"
         "epochs: 1\nevaluations: 1\nmethods: " +
         methods + "\n";
}

ir::Job Parse(const std::string& text, bool cuda) {
  auto job = ir::ParseJob(text, "gpu.job.yaml");
  EXPECT_TRUE(job.ok()) << job.status().message();
  job->device = cuda ? ir::JobDevice::kCuda : ir::JobDevice::kCpu;
  return *job;
}

Result<MethodTraining> Train(const ir::Job& job, const ir::MethodSpec& method) {
  TrainOptions options;
  if (job.device == ir::JobDevice::kCuda) {
    auto run = cuda::InProcessCudaRun(job);
    if (!run.ok()) return run.status();
    options.make_device = run->make_device;
    options.make_transport = run->make_transport;
  }
  return TrainMethod(job, method, options);
}

// max |a - b| over max |a|, over every stage.
double RelativeDifference(const std::vector<std::vector<float>>& a,
                          const std::vector<std::vector<float>>& b) {
  double diff = 0, scale = 0;
  for (size_t s = 0; s < a.size(); ++s) {
    for (size_t i = 0; i < a[s].size(); ++i) {
      diff = std::max(diff, std::abs(static_cast<double>(a[s][i]) - b[s][i]));
      scale = std::max(scale, std::abs(static_cast<double>(a[s][i])));
    }
  }
  return diff / scale;
}

const char* const kOptimizers[] = {
    "{name: sgd, lr: 0.05, momentum: 0.9}",
    "{name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0001}",
    "{name: adam, lr: 0.002}",
    "{name: adamw, lr: 0.002, weight_decay: 0.01}",
    "{name: rmsprop, lr: 0.001}",
    "{name: lion, lr: 0.0002}",
};

const char* const kMethods =
    "[gpipe, 1f1b, interleaved, zb-h1, zb-h2, pipedream, pipedream-2bw, spectrain, xpipe, "
    "pipemare, pipeoptim, {name: paci, accumulation: 2}]";

TEST(CudaDevice, EveryMethodAndOptimizerMatchesTheCpuDevice) {
  PIPECAST_REQUIRE_GPU();
  for (const char* opt : kOptimizers) {
    const ir::Job cpu = Parse(JobText(opt, 4, kMethods), false);
    const ir::Job gpu = Parse(JobText(opt, 4, kMethods), true);
    for (const ir::MethodSpec& m : cpu.methods) {
      auto a = Train(cpu, m);
      auto b = Train(gpu, m);
      ASSERT_TRUE(a.ok()) << m.name << " " << opt << ": " << a.status().message();
      ASSERT_TRUE(b.ok()) << m.name << " " << opt << ": " << b.status().message();
      // 16 steps of float training: GEMMs summing in another order differ in the last bits,
      // and the differences grow with the steps; 1e-4 of the weights' scale bounds them.
      EXPECT_LT(RelativeDifference(a->final_weights, b->final_weights), 1e-4)
          << m.name << " " << opt;
      EXPECT_NEAR(a->evaluations.back().test_loss, b->evaluations.back().test_loss,
                  1e-4 * std::abs(a->evaluations.back().test_loss))
          << m.name << " " << opt;
    }
  }
}

// Devices holding two stages step each of them at every S (two Step calls per S action): the
// schedules with two chunks per device and the bidirectional one match the CPU device.
TEST(CudaDevice, DevicesWithTwoStagesMatchTheCpuDevice) {
  PIPECAST_REQUIRE_GPU();
  const char* opt = "{name: adam, lr: 0.002}";
  const std::string methods = "[interleaved, zb-v, chimera]";
  const ir::Job cpu = Parse(JobText(opt, 4, methods), false);
  const ir::Job gpu = Parse(JobText(opt, 4, methods), true);
  for (const ir::MethodSpec& m : cpu.methods) {
    auto a = Train(cpu, m);
    auto b = Train(gpu, m);
    ASSERT_TRUE(a.ok()) << m.name << ": " << a.status().message();
    ASSERT_TRUE(b.ok()) << m.name << ": " << b.status().message();
    EXPECT_LT(RelativeDifference(a->final_weights, b->final_weights), 1e-4) << m.name;
  }
}

std::vector<float> Flat(const std::vector<std::vector<float>>& stages) {
  std::vector<float> out;
  for (const auto& s : stages) out.insert(out.end(), s.begin(), s.end());
  return out;
}

TEST(CudaDevice, FlushSchedulesAreBitIdenticalToSequentialTrainingOnTheGpu) {
  PIPECAST_REQUIRE_GPU();
  const std::string opt = "{name: adamw, lr: 0.002, weight_decay: 0.01}";
  const ir::Job one = Parse(JobText(opt, 1, "[gpipe]"), true);
  auto sequential = Train(one, one.methods[0]);
  ASSERT_TRUE(sequential.ok()) << sequential.status().message();
  for (const char* method : {"gpipe", "1f1b"}) {
    const ir::Job four = Parse(JobText(opt, 4, std::string("[") + method + "]"), true);
    auto piped = Train(four, four.methods[0]);
    ASSERT_TRUE(piped.ok()) << piped.status().message();
    EXPECT_EQ(Flat(piped->final_weights), Flat(sequential->final_weights)) << method;
  }
}

// With two GPUs the devices alternate between them (device k on GPU k mod 2), driven from
// threads and the evaluator whose current GPU is another: the same kernels give the same bits.
TEST(CudaDevice, TwoGpusTrainBitForBitLikeOne) {
  PIPECAST_REQUIRE_GPU();
  int gpus = 0;
  if (cudaGetDeviceCount(&gpus) != cudaSuccess || gpus < 2) GTEST_SKIP() << "needs two GPUs";
  const std::string text = JobText("{name: adamw, lr: 0.002, weight_decay: 0.01}", 4, "[1f1b]");
  const ir::Job one = Parse(text + "device: cuda\ngpus: 1\n", true);
  const ir::Job two = Parse(text + "device: cuda\ngpus: 2\n", true);
  auto a = Train(one, one.methods[0]);
  auto b = Train(two, two.methods[0]);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(Flat(b->final_weights), Flat(a->final_weights));
  EXPECT_EQ(b->evaluations.back().test_loss, a->evaluations.back().test_loss);
}

TEST(CudaDevice, ANonFiniteLossNamesTheMicrobatchLikeTheCpuDevice) {
  PIPECAST_REQUIRE_GPU();
  const std::string text = JobText("{name: sgd, lr: 1e30}", 1, "[gpipe]");
  auto a = Train(Parse(text, false), Parse(text, false).methods[0]);
  auto b = Train(Parse(text, true), Parse(text, true).methods[0]);
  ASSERT_FALSE(a.ok());
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kNonFinite) << b.status().message();
  EXPECT_EQ(b.status().message(), a.status().message());
}

// precision: bf16 rounds every GEMM input to 8 significant bits (relative error up to 2^-9);
// with fp32 accumulation and fp32 master weights, 16 SGD steps stay within 1e-2 of the fp32
// CPU run's weights (relative to their scale) and the test loss within 2%.
TEST(CudaDevice, Bfloat16GemmsTrainWithinOnePercentOfFloat32) {
  PIPECAST_REQUIRE_GPU();
  const std::string text = JobText("{name: sgd, lr: 0.05, momentum: 0.9}", 4, "[1f1b]");
  const ir::Job cpu = Parse(text, false);
  ir::Job gpu = Parse(text, true);
  gpu.bf16 = true;
  auto a = Train(cpu, cpu.methods[0]);
  auto b = Train(gpu, gpu.methods[0]);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  const double d = RelativeDifference(a->final_weights, b->final_weights);
  EXPECT_LT(d, 1e-2);
  EXPECT_GT(d, 0.0) << "bf16 inputs should not give fp32's bits";
  EXPECT_NEAR(b->evaluations.back().test_loss, a->evaluations.back().test_loss,
              0.02 * a->evaluations.back().test_loss);
}

}  // namespace
}  // namespace pipecast::runtime
