// Host-side behaviour of the CUDA build, run everywhere (no `gpu` label): the SM split of green
// contexts worked by hand, the one-line refusals of a run that cannot have its GPUs, and the
// program whose NCCL channels a multi-process run connects.
#include <gtest/gtest.h>

#include "common/generators.h"
#include "common/job.h"
#include "common/lower.h"
#include "common/version_plan.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_processes.h"
#include "runtime/cuda/cuda_run.h"
#include "runtime/cuda/green_context.h"
#include "runtime/cuda/transport_order.h"

namespace pipecast::runtime::cuda {
namespace {

TEST(PlanSmSplit, CutsEqualSharesInUnitsOfTheGranularity) {
  // An H200 has 132 SMs; with a granularity of 8, 16 groups: 4 stages get 4 groups (32 SMs)
  // each and 4 SMs stay unused.
  auto four = PlanSmSplit(132, 8, 4);
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->per_part, 32);
  EXPECT_EQ(four->left, 4);
  // 3 stages: 16 / 3 = 5 groups of 8 each, 12 left.
  auto three = PlanSmSplit(132, 8, 3);
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(three->per_part, 40);
  EXPECT_EQ(three->left, 12);
}

TEST(PlanSmSplit, RefusesMorePartsThanGroups) {
  auto r = PlanSmSplit(132, 8, 17);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("at most 16 partitions of 8 SMs"), std::string::npos)
      << r.status().message();
}

TEST(InProcessCudaRun, RefusesWhatTheMachineCannotGive) {
  auto job = ir::ParseJob(
      "name: g\nmodel: {type: mlp, hidden_sizes: [8]}\n"
      "data: {dataset: synthetic, train_examples: 64, test_examples: 16}\n"
      "optimizer: {name: sgd, lr: 0.1}\npipeline: {stages: 2, microbatches: 2, "
      "microbatch_size: 4}\nmethods: [1f1b]\ndevice: cuda\ngpus: 4096\n",
      "g.job.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  auto run = InProcessCudaRun(*job);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kDeviceError);
  const std::string& m = run.status().message();
  if (VisibleGpus() == 0) {
    EXPECT_EQ(m.find("no CUDA device was found"), 0u) << m;
  } else {
    EXPECT_NE(m.find("gpus: 4096 but this machine shows"), std::string::npos) << m;
  }
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

// A one-minibatch program of AvgPipe with period 3 (phase 0) has no averaging, so its channels
// lack the reductions class (2) that the averaging's messages travel on; the program
// PrepareMethod connects channels for has two minibatches, the first ending a period.
TEST(ChannelProgram, HasAvgPipesAveraging) {
  auto job = ir::ParseJob(
      "name: g\nmodel: {type: mlp, hidden_sizes: [8]}\n"
      "data: {dataset: synthetic, train_examples: 64, test_examples: 16}\n"
      "optimizer: {name: sgd, lr: 0.1}\npipeline: {stages: 2, microbatches: 2, "
      "microbatch_size: 4}\nmethods: [1f1b]\ndevice: cuda\n",
      "g.job.yaml");
  ASSERT_TRUE(job.ok()) << job.status().message();
  const ir::MethodSpec avgpipe{"avgpipe", {{"period", "300"}}, 0, 0};
  const auto reductions = [](const ir::Program& p) {
    const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
    int32_t n = 0;
    for (const Channel& c : ChannelsOf(p, plan)) n += c.cls == 2 ? 1 : 0;
    return n;
  };
  auto one = ir::Generate({"avgpipe", 2, 2, 1, 4, avgpipe.params, 1});
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(reductions(ir::InsertCommunication(*one)), 0);
  auto checked = ChannelProgram(*job, avgpipe);
  ASSERT_TRUE(checked.ok()) << checked.status().message();
  EXPECT_EQ(checked->minibatches, 2);
  // Two pipelines of two stages: each stage's copy sends its weights to the replica-0 copy and
  // gets the reference back, one channel each way per stage.
  EXPECT_EQ(reductions(*checked), 4);
  auto plain = ChannelProgram(*job, {"1f1b", {}, 0, 0});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->minibatches, 2);
}

TEST(JobGpus, ApplyOnlyToTheCudaDevice) {
  auto job = ir::ParseJob(
      "name: g\nmodel: {type: mlp, hidden_sizes: [8]}\n"
      "data: {dataset: synthetic, train_examples: 64, test_examples: 16}\n"
      "optimizer: {name: sgd, lr: 0.1}\npipeline: {stages: 2, microbatches: 2, "
      "microbatch_size: 4}\nmethods: [1f1b]\nsm_partition: true\n",
      "g.job.yaml");
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("apply to device: cuda"), std::string::npos)
      << job.status().message();
}

}  // namespace
}  // namespace pipecast::runtime::cuda
