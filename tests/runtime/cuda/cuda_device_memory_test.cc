// The CUDA device refuses a program whose buffers do not fit before allocating them, naming the
// device, what the plan needs and its largest buffers with their stages (gpu label: skipped
// without a GPU).
#include <gtest/gtest.h>

#include "common/generators.h"
#include "common/lower.h"
#include "common/version_plan.h"
#include "models/model.h"
#include "runtime/cuda/cuda_device.h"
#include "support/gpu.h"

namespace pipecast::runtime::cuda {
namespace {

TEST(CudaDeviceMemory, APlanBeyondTheLimitNamesTheStageAndTheBytes) {
  PIPECAST_REQUIRE_GPU();
  auto model = models::MakeMlp<float>(784, {256, 128}, 10);
  ASSERT_TRUE(model.ok());
  auto stages = models::Partition(*model, 1);
  ASSERT_TRUE(stages.ok());
  CudaDeviceOptions options;
  options.memory_limit_bytes = int64_t{1} << 20;  // 1 MiB for every per-program buffer
  auto dev = CudaDevice::Create({{0, (*stages)[0], models::OptimizerConfig{}}}, "cuda:0", options);
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  auto program = ir::Generate({"gpipe", 1, 8, 1, 256, {}, 1});
  ASSERT_TRUE(program.ok());
  const ir::Program lowered = ir::InsertCommunication(*program);
  const ir::VersionPlan plan = ir::BuildVersionPlan(lowered, ir::PlanDetail::kExecution);
  DeviceSetup setup;
  setup.program = &lowered;
  setup.plan = &plan;
  setup.microbatch_rows = 256;  // 8 records of 256 x (784 + 256 + 128 + 10) inputs and outputs
  const Status s = (*dev)->Prepare(setup);
  EXPECT_EQ(s.code(), StatusCode::kDeviceError);
  EXPECT_NE(s.message().find("cuda:0: this program needs"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("stage 0 activation records"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace pipecast::runtime::cuda
