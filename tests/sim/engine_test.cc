// Engine semantics on small hand-checked cases: transfers, link FIFO order, memory accounting,
// costs of steps and predictions, steady-state throughput and deadlock reports.
#include "sim/engine.h"

#include <gtest/gtest.h>

#include "common/generators.h"
#include "common/lower.h"
#include "sim/sim_test_util.h"

namespace pipecast::sim {
namespace {

using ir::Action;
using ir::ActionKind;

ir::Program Lowered(const std::string& method, int32_t d, int32_t m, int32_t n = 1,
                    std::map<std::string, std::string> params = {}) {
  auto p = ir::Generate({method, d, m, n, 1, std::move(params)});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return ir::InsertCommunication(*p);
}

// Two stages, one microbatch: F0 (10) -> transfer (bytes/bw = 5, latency 3) -> F1 (10) -> B1 (20)
// -> transfer (5 + 3) -> B0 (20) -> steps (1 each).
TEST(Engine, TransferTimesAddBandwidthAndLatency) {
  const ir::Program p = Lowered("1f1b", 2, 1);
  CostModel c = UniformCostModel(2, 10, 20);
  for (auto& s : c.stages) {
    s.message_bytes = 500;
    s.optimizer_step = 1;
  }
  c.link = {3, 1e11};  // 500 bytes at 100 GB/s = 5 ns
  auto r = Simulate(p, c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Device 1: F starts at 10 + 5 + 3 = 18, ends 28; B ends 48; step 49.
  // Device 0: B starts at 48 + 8 = 56, ends 76; step ends 77.
  EXPECT_EQ(r->makespan, 77);
  EXPECT_EQ(r->stages[1].first_start, 18);
  EXPECT_EQ(r->stages[0].busy, 10 + 20 + 1);
  ASSERT_EQ(r->transfers.size(), 2u);
  EXPECT_EQ(r->transfers[0].start, 10);
  EXPECT_EQ(r->transfers[0].link_end, 15);
  EXPECT_EQ(r->transfers[0].arrival, 18);
  EXPECT_GE(r->transfers[0].recv_index, 0);
}

// LogP overheads: the sender's device spends send_overhead before the transfer starts, the
// receiver's device spends recv_overhead after the arrival, both counted as busy time.
TEST(Engine, SendAndReceiveOverheadsOccupyTheDevices) {
  const ir::Program p = Lowered("1f1b", 2, 1);
  CostModel c = UniformCostModel(2, 10, 20);
  for (auto& s : c.stages) {
    s.message_bytes = 500;
    s.optimizer_step = 1;
  }
  c.link = {3, 1e11, 2, 4};  // latency 3, 500 bytes = 5 ns, send 2, receive 4
  auto r = Simulate(p, c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Device 0: F 0..10, send overhead 10..12, transfer 12..17, arrival 20.
  // Device 1: receive 20..24, F 24..34, B 34..54, send 54..56, transfer 56..61 -> 64, step 56..57.
  // Device 0: receive 64..68, B 68..88, step 88..89.
  EXPECT_EQ(r->stages[1].first_start, 20);
  EXPECT_EQ(r->stages[1].busy, 4 + 10 + 20 + 2 + 1);
  EXPECT_EQ(r->stages[0].busy, 10 + 2 + 4 + 20 + 1);
  EXPECT_EQ(r->makespan, 89);
  // With zero overheads the same program keeps the earlier semantics.
  c.link = {3, 1e11, 0, 0};
  EXPECT_EQ(Simulate(p, c)->makespan, 77);
}

// Messages on one link direction go one after another: with a slow link, the second activation
// waits for the first to leave the link.
TEST(Engine, LinkDirectionIsFifo) {
  const ir::Program p = Lowered("gpipe", 2, 2);
  CostModel c = UniformCostModel(2, 10, 10);
  for (auto& s : c.stages) s.message_bytes = 1000;
  c.link = {0, 1e10};  // 1000 bytes = 100 ns, longer than a forward
  auto r = Simulate(p, c);
  ASSERT_TRUE(r.ok());
  // Activation 0: link 10..110; activation 1 produced at 20 but starts at 110, arrives 210.
  std::vector<TimeNs> arrivals;
  for (const Transfer& t : r->transfers)
    if (t.src_device == 0) arrivals.push_back(t.arrival);
  ASSERT_EQ(arrivals.size(), 2u);
  EXPECT_EQ(arrivals[0], 110);
  EXPECT_EQ(arrivals[1], 210);
}

// Memory: weights x live versions + optimizer state + gradients + activations in flight.
TEST(Engine, PeakMemoryBreakdownFor1F1BAndPipeDream) {
  for (const char* method : {"1f1b", "pipedream"}) {
    const ir::Program p = Lowered(method, 4, 8, 2);
    CostModel c = UniformCostModel(4, 10, 20);
    for (auto& s : c.stages) {
      s.weight_bytes = 1000;
      s.optimizer_state_bytes = 2000;
      s.activation_bytes = 100;
    }
    auto r = Simulate(p, c);
    ASSERT_TRUE(r.ok());
    for (int32_t k = 0; k < 4; ++k) {
      const StageMetrics& s = r->stages[k];
      const int64_t versions = std::string(method) == "pipedream" ? 4 - k : 1;
      EXPECT_EQ(s.versions.live_versions_max, versions);
      EXPECT_EQ(s.peak_breakdown.weights, 1000 * versions) << method << " stage " << k;
      EXPECT_EQ(s.peak_breakdown.optimizer_state, 2000);
      EXPECT_EQ(s.peak_breakdown.gradients, 1000);
      EXPECT_EQ(s.peak_breakdown.activations, 100 * (4 - k));
      EXPECT_EQ(s.peak_memory_bytes, 1000 * versions + 3000 + 100 * (4 - k));
    }
  }
}

TEST(Engine, OverMemoryFlag) {
  const ir::Program p = Lowered("gpipe", 2, 4);
  CostModel c = UniformCostModel(2, 10, 20);
  for (auto& s : c.stages) s.activation_bytes = 100;
  c.devices[0].memory_bytes = 399;
  auto r = Simulate(p, c);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->stages[0].over_memory);  // 4 microbatches x 100 bytes
  c.devices[0].memory_bytes = 400;
  EXPECT_FALSE(Simulate(p, c)->stages[0].over_memory);
}

// Steps derived from bytes over memory bandwidth: (2W + G + 2O) / bw; prediction (2W + O) / bw.
TEST(Engine, DerivedStepAndPredictionCosts) {
  const ir::Program p = Lowered("pipeoptim", 2, 1, 1);
  CostModel c = UniformCostModel(2, 100, 100);
  for (auto& s : c.stages) {
    s.optimizer_step = -1;
    s.weight_bytes = 1000;
    s.optimizer_state_bytes = 1000;
  }
  c.devices[0].memory_bandwidth = 1e12;  // 1000 bytes per ns
  auto r = Simulate(p, c);
  ASSERT_TRUE(r.ok());
  // Stage 0: F with a prediction (3000 bytes = 3 ns) + B + step (5000 bytes = 5 ns).
  EXPECT_EQ(r->stages[0].busy, 103 + 100 + 5);
  EXPECT_EQ(r->stages[1].busy, 100 + 100 + 5);  // last stage predicts nothing (s = 0)
}

// ZB-1p's steps are post-validated: each costs its rollback on top (given, or derived as a copy
// of the weights and the optimizer state, 2 x (1000 + 2000) bytes = 6 ns at 1000 bytes per ns).
// At M > D, ZB-1p's order is ZB-H1's, whose steps are not post-validated, so the difference in
// busy time of every device is exactly the rollback of its one step.
TEST(Engine, PostValidatedStepsCostTheirRollback) {
  const ir::Program one_p = Lowered("zb-1p", 3, 5);
  const ir::Program h1 = Lowered("zb-h1", 3, 5);
  ASSERT_EQ(one_p.devices, h1.devices);
  CostModel c = UniformCostModel(3, 100, 200, 100, 100);
  for (auto& s : c.stages) {
    s.optimizer_step = 7;
    s.optimizer_rollback = -1;  // UniformCostModel's is 0
    s.weight_bytes = 1000;
    s.optimizer_state_bytes = 2000;
  }
  c.devices[0].memory_bandwidth = 1e12;
  auto derived = Simulate(one_p, c);
  auto plain = Simulate(h1, c);
  ASSERT_TRUE(derived.ok() && plain.ok());
  for (int32_t d = 0; d < 3; ++d)
    EXPECT_EQ(derived->stages[d].busy - plain->stages[d].busy, 6) << "device " << d;
  EXPECT_EQ(derived->makespan - plain->makespan, 6);
  for (auto& s : c.stages) s.optimizer_rollback = 50;
  auto given = Simulate(one_p, c);
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given->stages[0].busy - plain->stages[0].busy, 50);
}

// A step that replaces a version a stash still needs first saves it, as the executor does
// (copy-on-step, common/version_plan.h): read and write the weights at the memory bandwidth. The
// number of saves per device comes from the execution plan's save ops, an independent count.
TEST(Engine, StepsThatKeepAStashedVersionPayForTheCopy) {
  for (const char* method : {"pipedream", "pipedream-2bw"}) {
    const ir::Program p = Lowered(method, 3, 4, 2);
    CostModel c = UniformCostModel(3, 100, 100);
    for (auto& s : c.stages) {
      s.optimizer_step = 7;  // given: the bandwidth then only prices the copies
      s.weight_bytes = 1000;
    }
    auto free = Simulate(p, c);
    ASSERT_TRUE(free.ok());
    c.devices[0].memory_bandwidth = 1e11;  // 100 bytes per ns: a save costs 2000 / 100 = 20 ns
    auto priced = Simulate(p, c);
    ASSERT_TRUE(priced.ok());
    const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
    for (int32_t d = 0; d < 3; ++d) {
      int64_t saves = 0;
      for (const ir::WeightOp& op : plan.devices[d].ops)
        saves += op.kind == ir::WeightOpKind::kSaveCurrent ? 1 : 0;
      if (std::string(method) == "pipedream") {
        EXPECT_EQ(saves > 0, d < 2) << "device " << d;
      }
      // 2BW keeps its older buffer at a step only when a later action reads it (not at a
      // device's last step), as the executor copies it.
      if (std::string(method) == "pipedream-2bw") {
        EXPECT_EQ(saves, free->stages[d].versions.steps - 1) << "device " << d;
      }
      EXPECT_EQ(priced->stages[d].busy - free->stages[d].busy, 20 * saves)
          << method << " device " << d << " (" << saves << " saves)";
    }
  }
}

// Steady throughput excludes the fill: for 1F1B with N minibatches the window between the
// first and the last minibatch's completion holds N - 1 iterations of M (tF + tB) each...
TEST(Engine, SteadyThroughputOfFlushAndAsync) {
  auto sync = testing::Simulated("1f1b", 4, 8, 5, {}, 1, 1);
  // Each iteration is a full flush: (M + D - 1)(tF + tB) = 22 units per 8 samples.
  EXPECT_NEAR(sync.result.steady_throughput_samples_per_s, 8 / (22 * testing::kUnit * 1e-9), 1e-6);
  auto async = testing::Simulated("pipedream", 4, 8, 5, {}, 1, 1);
  // No flush: one microbatch per (tF + tB) in steady state.
  EXPECT_NEAR(async.result.steady_throughput_samples_per_s, 1 / (2 * testing::kUnit * 1e-9), 1e-6);
}

// A program whose devices wait for each other forever is reported, not hung.
TEST(Engine, DeadlockNamesEveryBlockedDevice) {
  ir::Program p = Lowered("1f1b", 2, 2);
  // Device 1 runs B1 before F1... swap device 1's microbatch order so that it waits for
  // activation 1 before sending gradient 0 that device 0 waits for: reverse its forwards.
  ir::Program q = p;
  q.devices[0] = {{ActionKind::kRecvGradient, 0, 0, {}},
                  {ActionKind::kBackward, 0, 0, {}},
                  {ActionKind::kForward, 0, 0, {}},
                  {ActionKind::kSendActivation, 0, 0, {}},
                  {ActionKind::kStep, -1, -1, {}}};
  q.devices[1] = {{ActionKind::kRecvActivation, 1, 0, {}},
                  {ActionKind::kForward, 1, 0, {}},
                  {ActionKind::kBackward, 1, 0, {}},
                  {ActionKind::kSendGradient, 1, 0, {}},
                  {ActionKind::kStep, -1, -1, {}}};
  q.microbatches = 1;
  auto r = Simulate(q, UniformCostModel(2, 1, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlock);
  EXPECT_NE(r.status().message().find("device 0 at action 1 (0B0) waits for the gradient of "
                                      "microbatch 0 from stage 1 (device 1)"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("device 1 at action 1 (1F0) waits for the activation"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace pipecast::sim
