// Executor semantics with a tiny linear model written here (independent of models/): equivalence
// with sequential training, version traces equal to the simulator's accounting, determinism
// under random message delays, deadlines and NaN reports.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/generators.h"
#include "common/lower.h"
#include "common/version_plan.h"
#include "runtime/executor.h"
#include "runtime/inproc_transport.h"
#include "runtime/toy_model.h"

namespace pipecast::runtime {
namespace {

using namespace testing_toy;  // NOLINT

ir::Program Lowered(const std::string& method, int32_t d, int32_t m, int32_t n,
                    std::map<std::string, std::string> params = {}) {
  auto p = ir::Generate({method, d, m, n, 1, std::move(params)});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return ir::InsertCommunication(*p);
}

Result<ExecutionResult> RunProgram(const ir::Program& p, Feed& feed, InProcessTransport* transport = nullptr,
                            ExecutorConfig config = {}) {
  Setup setup(p.num_stages);
  InProcessTransport local(p.num_devices);
  return Execute(p, setup.stages, setup.optimizers, InitialWeights(p.num_stages), feed,
                 transport ? *transport : local, config);
}

TEST(Executor, FlushSchedulesEqualSequentialTrainingBitForBit) {
  for (const char* method : {"gpipe", "1f1b", "zb-h1", "zb-h2"}) {
    Feed feed;
    const ir::Program p = Lowered(method, 4, 6, 3);
    auto r = RunProgram(p, feed);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->weights, Sequential(4, 6, 3, feed)) << method;
  }
  // Interleaved: 2 chunks on 2 devices is the same 4-stage model.
  Feed feed;
  auto r = RunProgram(Lowered("interleaved", 2, 4, 2, {{"chunks", "2"}}), feed);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->weights, Sequential(4, 4, 2, feed));
}

// The executor's version trace equals the static accounting the simulator reports.
TEST(Executor, VersionTraceEqualsSimulatorAccounting) {
  for (const ir::MethodInfo& info : ir::Methods()) {
    for (auto params : std::vector<std::map<std::string, std::string>>{{}}) {
      const int32_t m = info.name == "interleaved" ? 4 : 5;
      const ir::Program p = Lowered(info.name, 4, m, 3, params);
      Feed feed;
      auto r = RunProgram(p, feed);
      ASSERT_TRUE(r.ok()) << info.name << ": " << r.status().message();
      const ir::VersionPlan t = ir::BuildVersionPlan(p);
      for (const auto& device : r->versions) {
        for (const VersionUse& u : device) {
          const ir::VersionRecord& rec = t.At(u.stage, u.microbatch);
          if (u.kind == ir::ActionKind::kForward) {
            EXPECT_EQ(u.counter, rec.f_counter) << info.name;
            EXPECT_EQ(u.version, rec.f_version) << info.name << " F" << u.microbatch;
            EXPECT_EQ(u.horizon, rec.f_horizon) << info.name;
          } else {
            EXPECT_EQ(u.counter, rec.b_counter) << info.name;
            EXPECT_EQ(u.version, rec.b_version) << info.name << " B" << u.microbatch;
            EXPECT_EQ(u.horizon, rec.b_horizon) << info.name;
          }
        }
      }
    }
  }
  for (auto params : std::vector<std::map<std::string, std::string>>{
           {{"vertical_sync", "true"}}}) {
    const ir::Program p = Lowered("pipedream", 4, 4, 3, params);
    Feed feed;
    auto r = RunProgram(p, feed);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const ir::VersionPlan t = ir::BuildVersionPlan(p);
    for (const auto& device : r->versions)
      for (const VersionUse& u : device)
        EXPECT_EQ(u.version, u.kind == ir::ActionKind::kForward
                                 ? t.At(u.stage, u.microbatch).f_version
                                 : t.At(u.stage, u.microbatch).b_version);
  }
}

// Random delays in message delivery change the timing, never the numbers.
TEST(Executor, DeterministicUnderRandomDeliveryDelays) {
  for (const char* method : {"1f1b", "pipedream", "pipeoptim", "paci", "pipedream-2bw"}) {
    const ir::Program p = Lowered(method, 4, 4, 3);
    Feed feed;
    auto reference = RunProgram(p, feed);
    ASSERT_TRUE(reference.ok());
    InProcessTransport slow(p.num_devices);
    std::mutex mu;
    std::mt19937 rng(99);
    slow.SetDeliveryDelay([&](const MessageKey&) {
      int us;
      {
        std::lock_guard<std::mutex> lock(mu);
        us = std::uniform_int_distribution<int>(0, 300)(rng);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(us));
    });
    auto delayed = RunProgram(p, feed, &slow);
    ASSERT_TRUE(delayed.ok());
    EXPECT_EQ(delayed->weights, reference->weights) << method;
    EXPECT_EQ(delayed->losses, reference->losses) << method;
  }
}

// With one stage every method is the plain optimizer: identical weights to sequential training
// with the method's step cadence.
TEST(Executor, OneStageReducesToThePlainOptimizer) {
  Feed feed;
  for (const char* method : {"gpipe", "1f1b", "pipedream", "pipedream-2bw", "pipeoptim",
                             "pipemare", "spectrain"}) {
    const bool per_minibatch = std::string(method) == "gpipe" || std::string(method) == "1f1b" ||
                               std::string(method) == "pipedream-2bw";
    const ir::Program p = Lowered(method, 1, 3, 2);
    auto r = RunProgram(p, feed);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const auto expected = per_minibatch ? Sequential(1, 3, 2, feed) : Sequential(1, 1, 6, feed);
    EXPECT_EQ(r->weights, expected) << method;
  }
}

TEST(Executor, MissingMessageHitsTheDeadlineAndNamesEveryDevice) {
  ir::Program p = Lowered("1f1b", 2, 2, 1);
  // Drop device 0's second activation send.
  auto& d0 = p.devices[0];
  for (size_t i = 0, seen = 0; i < d0.size(); ++i) {
    if (d0[i].kind == ir::ActionKind::kSendActivation && seen++ == 1) {
      d0.erase(d0.begin() + static_cast<long>(i));
      break;
    }
  }
  Feed feed;
  ExecutorConfig config;
  config.deadline = std::chrono::milliseconds(200);
  auto r = RunProgram(p, feed, nullptr, config);
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  // Both devices report what they wait for (whichever deadline expires first stops the other).
  EXPECT_NE(msg.find("waited 200 ms for the"), std::string::npos) << msg;
  EXPECT_NE(msg.find("device 1: at action 4 (1RA1), after 1SG0: device 1 "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("the activation of microbatch 1 for stage 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("device 0: at action 5 (0RG1), after 0B0: device 0 "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("the gradient of microbatch 1 for stage 0"), std::string::npos) << msg;
}

TEST(Executor, NanLossStopsTheRunNamingMethodStageAndStep) {
  Feed feed;
  feed.nan_at = 2;
  auto r = RunProgram(Lowered("pipedream", 3, 2, 2), feed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("NaN or Inf in the loss of microbatch 2: pipedream, "
                                      "device 2, stage 2"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace pipecast::runtime
