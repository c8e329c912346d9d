// Host-side parts of runtime/cuda/cuda_optimizer.h that run without a CUDA device (CI): with no
// parameters CudaOptimizer makes no CUDA call, so its validation, state layout and LoadState
// checks are exercised here against models::Optimizer's; and the measurement's scratch size.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "models/optimizer.h"
#include "runtime/cuda/cuda_optimizer.h"

namespace pipecast::runtime::cuda {
namespace {

using models::DeltaRule;
using models::OptimizerConfig;
using models::OptimizerKind;

std::vector<OptimizerConfig> Configs() {
  std::vector<OptimizerConfig> out;
  for (OptimizerKind k : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kAdamW,
                          OptimizerKind::kRmsprop, OptimizerKind::kLion}) {
    out.push_back(models::DefaultOptimizerConfig(k));
  }
  out[0].momentum = 0.9;   // sgd: momentum_buffer, last_grad, last_step
  out[1].amsgrad = true;   // adam: + max_exp_avg_sq
  out[3].momentum = 0.5;   // rmsprop: + momentum_buffer
  out[3].centered = true;  //          + grad_avg
  out.push_back(models::DefaultOptimizerConfig(OptimizerKind::kSgd));  // plain sgd
  return out;
}

TEST(CudaOptimizerHost, StateNamesAndRulesAreTheCpuOptimizers) {
  for (const OptimizerConfig& c : Configs()) {
    SCOPED_TRACE(std::string(models::OptimizerKindName(c.kind)));
    auto cpu = models::Optimizer::Create(c, 0).value();
    auto gpu = CudaOptimizer::Create(c, 0).value();
    const std::vector<models::StateTensor> want = cpu->StateTensors();
    const std::vector<models::StateTensor> got = gpu->StateTensors().value();
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(got[k].first, want[k].first);
    for (DeltaRule r : {DeltaRule::kPaper, DeltaRule::kExact, DeltaRule::kCode,
                        DeltaRule::kSpecTrain, DeltaRule::kXPipe}) {
      EXPECT_EQ(gpu->SupportsRule(r).ok(), cpu->SupportsRule(r).ok()) << DeltaRuleName(r);
    }
    EXPECT_EQ(gpu->state_bytes(), 0);
    EXPECT_EQ(gpu->steps(), 0);
  }
}

TEST(CudaOptimizerHost, CreateValidatesAsTheCpuOptimizer) {
  OptimizerConfig c = models::DefaultOptimizerConfig(OptimizerKind::kAdam);
  c.nesterov = true;
  Result<std::unique_ptr<CudaOptimizer>> got = CudaOptimizer::Create(c, 10);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(got.status().message(), models::Optimizer::Create(c, 10).status().message());
  EXPECT_EQ(CudaOptimizer::Create(models::DefaultOptimizerConfig(OptimizerKind::kSgd), -1)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(CudaOptimizerHost, LoadStateChecksNamesCountsAndSteps) {
  OptimizerConfig c = models::DefaultOptimizerConfig(OptimizerKind::kRmsprop);
  c.centered = true;  // square_avg, grad_avg, last_step
  auto gpu = CudaOptimizer::Create(c, 0).value();
  const std::vector<models::StateTensor> good = gpu->StateTensors().value();
  ASSERT_EQ(good.size(), 3u);
  std::vector<models::StateTensor> reordered = {good[2], good[0], good[1]};
  EXPECT_TRUE(gpu->LoadState(4, reordered).ok());
  EXPECT_EQ(gpu->steps(), 4);
  std::vector<models::StateTensor> missing = {good[0], good[1]};
  std::vector<models::StateTensor> unknown = {good[0], good[1], {"momentum_buffer", {}}};
  std::vector<models::StateTensor> twice = {good[0], good[0], good[2]};
  std::vector<models::StateTensor> sized = {good[0], good[1], {"last_step", {1.0f}}};
  for (const auto& bad : {missing, unknown, twice, sized}) {
    const Status s = gpu->LoadState(9, bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  }
  EXPECT_EQ(gpu->LoadState(-1, good).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->steps(), 4);  // nothing changed
  EXPECT_EQ(gpu->LoadState(9, unknown).message(),
            "optimizer rmsprop: unexpected state tensor 'momentum_buffer'");
}

TEST(CudaOptimizerHost, MeasureScratchIsFourDoublesPerBlock) {
  // One block per 4096 elements (256 threads of 16), at least 1, at most 1024.
  EXPECT_EQ(MeasureScratch(0), 4);
  EXPECT_EQ(MeasureScratch(1), 4);
  EXPECT_EQ(MeasureScratch(4096), 4);
  EXPECT_EQ(MeasureScratch(4097), 8);
  EXPECT_EQ(MeasureScratch(int64_t{1} << 40), 4 * 1024);
}

}  // namespace
}  // namespace pipecast::runtime::cuda
