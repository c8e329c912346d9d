// What a device derives from its DeviceSetup (runtime/device_setup.h), against what the executor
// actually does: StepCalls, by which the CUDA device sizes its per-step flags and measurement
// slots, is the number of Device::Step calls the executor makes on each device, counted here on
// CPU devices for flush, interleaved, two-chunk and bidirectional schedules and with data
// parallelism.
#include "runtime/device_setup.h"

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/device_wrapper.h"
#include "runtime/executor_adapter.h"

namespace pipecast::runtime {
namespace {

using testing::ClusterLoader;
using testing::ClusterMlp;
using testing::CpuRunOptions;
using testing::MethodCase;

// Counts the Step calls it forwards and keeps what Prepare derived from the setup.
class StepCounter : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status Prepare(const DeviceSetup& setup) override {
    step_calls = StepCalls(setup);
    for (const ir::Action& a : setup.program->devices[setup.device])
      step_actions += a.kind == ir::ActionKind::kStep ? 1 : 0;
    return DeviceWrapper::Prepare(setup);
  }
  void Step(int32_t stage, const StepArgs& args) override {
    ++counted;
    DeviceWrapper::Step(stage, args);
  }
  int32_t step_calls = -1, step_actions = 0, counted = 0;
};

struct Case {
  std::string method;
  int32_t stages;
  int32_t data_parallel;
  bool several_stages_per_device;  // so StepCalls exceeds the S actions
  // Worked by hand: 3 minibatches, one S each, times the stages a device holds.
  int32_t calls_per_device;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.method << " D=" << c.stages << " R=" << c.data_parallel;
}

class StepCallsTest : public ::testing::TestWithParam<Case> {};

TEST_P(StepCallsTest, EqualsTheStepCallsTheExecutorMakes) {
  const Case& k = GetParam();
  MethodCase c;
  c.method = k.method;
  c.stages = k.stages;
  c.microbatches = 4;
  c.minibatches = 3;
  c.data_parallel = k.data_parallel;
  c.optimizer.lr = 0.05;
  c.model = ClusterMlp(7);
  c.loader = ClusterLoader();
  std::vector<std::unique_ptr<StepCounter>> counters;
  CpuRunOptions options;
  options.wrap = [&](int32_t, Device* cpu) -> Device* {
    counters.push_back(std::make_unique<StepCounter>(cpu));
    return counters.back().get();
  };
  auto run = testing::RunExecutorOnCpu(c, options);
  ASSERT_TRUE(run.ok()) << run.status().message();
  ASSERT_FALSE(counters.empty());
  bool exceeds = false;
  for (size_t d = 0; d < counters.size(); ++d) {
    const StepCounter& n = *counters[d];
    EXPECT_EQ(n.step_actions, 3) << k.method << " device " << d;  // one S per minibatch
    EXPECT_EQ(n.counted, n.step_calls) << k.method << " device " << d;
    EXPECT_EQ(n.counted, k.calls_per_device) << k.method << " device " << d;
    exceeds = exceeds || n.step_calls > n.step_actions;
  }
  EXPECT_EQ(exceeds, k.several_stages_per_device) << k.method;
}

INSTANTIATE_TEST_SUITE_P(Methods, StepCallsTest,
                         ::testing::Values(Case{"gpipe", 2, 1, false, 3},
                                           Case{"1f1b", 3, 2, false, 3},
                                           Case{"interleaved", 2, 1, true, 6},
                                           Case{"zb-v", 2, 1, true, 6},
                                           Case{"chimera", 2, 1, true, 6}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.method;
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name + "_dp" + std::to_string(info.param.data_parallel);
                         });

}  // namespace
}  // namespace pipecast::runtime
