// Devices of different speeds and memory capacities: the balanced partition with per-part speeds
// (common/partition.h) on a hand-worked case and against brute force, the cost builder's
// per-device DeviceSpecs and speed-aware partition (sim/cost_builder.h), the engine's timing of a
// 2-device pipeline with one device 2x slower against hand-worked makespans, over-memory reported
// on the small device, and the planner holding each device to its own capacity and running D
// stages on the first D devices (sim/planner.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/generators.h"
#include "common/lower.h"
#include "common/partition.h"
#include "common/plan_space.h"
#include "common/scenario.h"
#include "sim/cost_builder.h"
#include "sim/engine.h"
#include "sim/planner.h"
#include "sim/report.h"

namespace pipecast::sim {
namespace {

using ir::BalancedPartition;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kGiB = int64_t{1} << 30;

ir::Scenario Parse(const std::string& yaml) {
  Result<ir::Scenario> s = ir::ParseScenario(yaml, "h.yaml");
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? *s : ir::Scenario{};
}

// ---- BalancedPartition with speeds -----------------------------------------------------------

TEST(SpeedPartition, HandWorked) {
  // 4 equal layers on devices of speed 3 and 1: [3 layers | 1 layer] takes max(3/3, 1/1) = 1;
  // [2 | 2] takes max(2/3, 2) = 2 and [1 | 3] takes 3.
  EXPECT_EQ(BalancedPartition({1, 1, 1, 1}, {3, 1}), (std::vector<int32_t>{0, 3}));
  // The other way round, the fast device is second: [1 | 3].
  EXPECT_EQ(BalancedPartition({1, 1, 1, 1}, {1, 3}), (std::vector<int32_t>{0, 1}));
  // 6 equal layers at speeds 1 and 2: [2 | 4] takes 2 on both.
  EXPECT_EQ(BalancedPartition({1, 1, 1, 1, 1, 1}, {1, 2}), (std::vector<int32_t>{0, 2}));
  // Equal speeds other than 1 cut as the plain partition does.
  EXPECT_EQ(BalancedPartition({3, 1, 4, 1, 5}, {2, 2, 2}), BalancedPartition({3, 1, 4, 1, 5}, 3));
}

struct Best {
  double max = std::numeric_limits<double>::infinity();
  double squares = std::numeric_limits<double>::infinity();
  std::vector<int32_t> starts;
};

// Every partition into speeds.size() parts, in lexicographic order of the starts, keeping the
// best by (max part time, sum of squared part times, earliest starts): the documented order.
// Part times are sums of small integers over the speed; the squares are added from the last part
// to the first, the order common/partition.h documents, so ties compare exactly.
void BruteForce(const std::vector<double>& costs, const std::vector<double>& speeds,
                std::vector<int32_t>* starts, Best* best) {
  const auto n = static_cast<int32_t>(costs.size());
  const auto parts = static_cast<int32_t>(speeds.size());
  if (static_cast<int32_t>(starts->size()) == parts) {
    std::vector<double> times;
    for (int32_t p = 0; p < parts; ++p) {
      const int32_t end = p + 1 < parts ? (*starts)[p + 1] : n;
      double sum = 0;
      for (int32_t i = (*starts)[p]; i < end; ++i) sum += costs[i];
      times.push_back(sum / speeds[p]);
    }
    double max = 0, squares = 0;
    for (double t : times) max = std::max(max, t);
    for (auto t = times.rbegin(); t != times.rend(); ++t) squares = *t * *t + squares;
    if (max < best->max || (max == best->max && squares < best->squares)) {
      *best = Best{max, squares, *starts};
    }
    return;
  }
  const int32_t remaining = parts - static_cast<int32_t>(starts->size());
  for (int32_t s = starts->back() + 1; s + remaining <= n; ++s) {
    starts->push_back(s);
    BruteForce(costs, speeds, starts, best);
    starts->pop_back();
  }
}

TEST(SpeedPartition, MatchesBruteForceOnRandomInputs) {
  std::mt19937 rng(2026);
  const double kSpeeds[] = {0.25, 0.5, 1, 1, 2, 3, 4};
  for (int trial = 0; trial < 3000; ++trial) {
    const int32_t n = 1 + static_cast<int32_t>(rng() % 10);
    const int32_t parts = 1 + static_cast<int32_t>(rng() % static_cast<uint32_t>(n));
    std::vector<double> costs(static_cast<size_t>(n)), speeds(static_cast<size_t>(parts));
    for (double& c : costs) c = static_cast<double>(rng() % 7);
    for (double& v : speeds) v = kSpeeds[rng() % std::size(kSpeeds)];
    std::vector<int32_t> starts = {0};
    Best best;
    BruteForce(costs, speeds, &starts, &best);
    ASSERT_EQ(BalancedPartition(costs, speeds), best.starts)
        << "trial " << trial << " n " << n << " parts " << parts;
  }
}

// ---- Cost builder --------------------------------------------------------------------------

TEST(HeterogeneousCosts, ShippedScenarioGivesTheCpuOneBlock) {
  Result<ir::Scenario> s =
      ir::LoadScenarioFile(std::string(PIPECAST_SOURCE_DIR) + "/scenarios/heterogeneous.yaml");
  ASSERT_TRUE(s.ok()) << s.status().message();
  // Device 0 runs at 40 x 0.5 / (312 x 0.5) = 0.128 of a GPU.
  EXPECT_DOUBLE_EQ(ir::DeviceSpeed(*s, 0), 40.0 / 312.0);
  // In block units (F + I + W of one block = 1) the head is 3.51. The CPU can take the
  // embedding (0 FLOPs) and one block (1 / 0.128 = 7.8); 23 blocks and the head on three GPUs
  // need at least 9 on one of them (9 + 9 + 5 + 3.51), and 9, 9, 5 + H is the only split within
  // 9 (the CPU taking a second block costs 15.6, taking none leaves 24 blocks + H = 9.5 a GPU).
  Result<std::vector<int32_t>> starts = TransformerStageStarts(*s, 4);
  ASSERT_TRUE(starts.ok()) << starts.status().message();
  EXPECT_EQ(*starts, (std::vector<int32_t>{0, 2, 11, 20}));
  EXPECT_EQ(DeviceLayers(*s, 4), (std::vector<std::string>{"E+0", "1-9", "10-18", "19-23+H"}));
  Result<CostModel> c = BuildCostModel(*s, 4);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->devices.size(), 4u);
  EXPECT_EQ(c->devices[0].memory_bytes, 512 * kGiB);
  EXPECT_EQ(c->devices[0].memory_bandwidth, 300e9);
  EXPECT_DOUBLE_EQ(c->devices[0].speed, 40.0 / 312.0);
  for (size_t d = 1; d < 4; ++d) {
    EXPECT_EQ(c->devices[d].memory_bytes, 80 * kGiB);
    EXPECT_EQ(c->devices[d].memory_bandwidth, 2e12);
    EXPECT_EQ(c->devices[d].speed, 1.0);
  }
  // Stage times stay those of the reference device: stage 0 (one block) and stage 1 (nine) at
  // 312 TFLOPS x 0.5, each rounded to the nanosecond; the engine divides device 0's by its speed.
  // One block's F at b = 2 is 2 x 30.06 GFLOPs / 156 TFLOP/s = 385.4 us (docs/cost-model.md).
  EXPECT_NEAR(static_cast<double>(c->stages[0].forward), 2 * 30.0597e9 / 156e12 * 1e9, 100);
  EXPECT_NEAR(static_cast<double>(c->stages[1].forward),
              9.0 * static_cast<double>(c->stages[0].forward), 9);
}

TEST(HeterogeneousCosts, EqualDevicesCutAndCostAsWithout) {
  const std::string base = R"(pipeline: {stages: 4, microbatches: 8, microbatch_size: 2}
model: {layers: 24, hidden: 1024, heads: 16, sequence: 1024, vocabulary: 50257}
cluster:
  device: {peak_flops: 312TFLOPS, efficiency: 0.5, memory: 80GiB, memory_bandwidth: 2TB/s}
)";
  const ir::Scenario plain = Parse(base);
  const ir::Scenario listed = Parse(base + "  devices: [{count: 4}]\n");
  ASSERT_EQ(listed.devices.size(), 4u);
  for (int32_t v : {4, 8}) {
    EXPECT_EQ(*TransformerStageStarts(plain, v), *TransformerStageStarts(listed, v));
    const CostModel a = *BuildCostModel(plain, v), b = *BuildCostModel(listed, v);
    ASSERT_EQ(a.stages.size(), b.stages.size());
    for (size_t k = 0; k < a.stages.size(); ++k) {
      EXPECT_EQ(a.stages[k].forward, b.stages[k].forward);
      EXPECT_EQ(a.stages[k].backward, b.stages[k].backward);
      EXPECT_EQ(a.stages[k].weight_bytes, b.stages[k].weight_bytes);
    }
    for (int32_t d = 0; d < 4; ++d) {
      EXPECT_EQ(a.device(d).memory_bytes, b.device(d).memory_bytes);
      EXPECT_EQ(a.device(d).speed, b.device(d).speed);
    }
  }
}

// ---- Engine: a 2-device pipeline with one device 2x slower --------------------------------

// F = 1 ms and B = 2 ms on a speed-1 device; the slow device (speed 0.5) takes 2 ms and 4 ms.
// Nothing else costs: no bytes, free links, no step time.
std::string TwoDevices(int32_t microbatches, int32_t slow) {
  return "pipeline: {stages: 2, microbatches: " + std::to_string(microbatches) +
         "}\ncosts: {forward: 1ms, backward: 2ms}\ndevices: [" +
         (slow == 0 ? "{speed: 0.5}, {}" : "{}, {speed: 0.5}") + "]\n";
}

TimeNs Makespan(const ir::Scenario& s, const std::string& method) {
  Result<ir::Program> p = ir::Generate({method, 2, s.pipeline.microbatches, 1, 1, {}});
  EXPECT_TRUE(p.ok()) << p.status().message();
  Result<CostModel> c = BuildCostModel(s, 2);
  EXPECT_TRUE(c.ok()) << c.status().message();
  Result<SimResult> r = Simulate(ir::InsertCommunication(*p), *c);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r->makespan : -1;
}

TEST(HeterogeneousEngine, SlowFirstDeviceMatchesHandWorkedMakespans) {
  for (int32_t m : {2, 4, 8}) {
    SCOPED_TRACE(m);
    const ir::Scenario s = Parse(TwoDevices(m, 0));
    // GPipe: device 0's M forwards (2 each) end at 2M, device 1's last forward (1) at 2M + 1;
    // device 1's M backwards (2 each) run [2M + 1, 4M + 1]. Device 0's first backward starts
    // when the first gradient arrives, at 2M + 3, and as each later gradient arrives before
    // device 0 is free, its M backwards (4 each) end at 2M + 3 + 4M = 6M + 3.
    EXPECT_EQ(Makespan(s, "gpipe"), (6 * m + 3) * kMs);
    // 1F1B: device 0 runs two warm-up forwards [0, 4], waits for the first gradient (F0 + F1 +
    // B1 = 5), then alternates B and F without a gap: busy 6M in all, idle 1: 6M + 1.
    EXPECT_EQ(Makespan(s, "1f1b"), (6 * m + 1) * kMs);
  }
}

TEST(HeterogeneousEngine, SlowLastDeviceMatchesHandWorkedMakespans) {
  for (int32_t m : {2, 4, 8}) {
    SCOPED_TRACE(m);
    const ir::Scenario s = Parse(TwoDevices(m, 1));
    // Device 1 is the bottleneck: it starts at F0 = 1 and is never idle after (2M of forwards
    // and 4M of backwards in either order); device 0's last backward (2) follows device 1's.
    EXPECT_EQ(Makespan(s, "gpipe"), (1 + 6 * m + 2) * kMs);
    EXPECT_EQ(Makespan(s, "1f1b"), (1 + 6 * m + 2) * kMs);
  }
}

TEST(HeterogeneousEngine, GivenStepsScaleWithSpeedDerivedStepsDoNot) {
  // 1F1B, slow device 0, M = 4: device 0's last backward ends at 6M + 1 = 25 ms, after device
  // 1's last (21 ms), and then it steps.
  const std::string shape = "pipeline: {stages: 2, microbatches: 4}\n";
  const std::string slow = "devices: [{speed: 0.5}, {}]\n";
  // A given 1 ms step takes 2 ms on the slow device: 27 ms.
  const ir::Scenario given =
      Parse(shape + "costs: {forward: 1ms, backward: 2ms, optimizer_step: 1ms}\n" + slow);
  EXPECT_EQ(Makespan(given, "1f1b"), 27 * kMs);
  // A derived step moves 2 x weights + gradients = 3 MB at the device's 1 GB/s: 3 ms whatever
  // the speed, so 28 ms.
  const ir::Scenario derived =
      Parse(shape + "costs: {forward: 1ms, backward: 2ms, weight_bytes: 1MB}\n" +
            "device: {memory_bandwidth: 1GB/s}\n" + slow);
  EXPECT_EQ(Makespan(derived, "1f1b"), 28 * kMs);
}

TEST(HeterogeneousEngine, SpeedIsTheSameAsTheScaledPerStageCosts) {
  // The slow device's speed 0.5 times the same as writing its stage's costs twice as long.
  const ir::Scenario scaled = Parse(TwoDevices(8, 0));
  const ir::Scenario written = Parse(
      "pipeline: {stages: 2, microbatches: 8}\ncosts: {forward: [2ms, 1ms], backward: "
      "[4ms, 2ms]}\n");
  for (const char* method : {"gpipe", "1f1b", "zb-h1", "pipedream-2bw", "pipemare"}) {
    SCOPED_TRACE(method);
    EXPECT_EQ(Makespan(scaled, method), Makespan(written, method));
  }
}

TEST(HeterogeneousEngine, OverMemoryIsReportedOnTheSmallDevice) {
  // GPipe with 4 microbatches keeps 4 x 1 GiB of activations on each device at its peak.
  const ir::Scenario s = Parse(
      "pipeline: {stages: 2, microbatches: 4}\ncosts: {forward: 1ms, backward: 2ms, "
      "activation_bytes: 1GiB}\ndevice: {memory: 100GiB}\ndevices: [{}, {speed: 0.5, "
      "memory: 3GiB}]\n");
  Result<ir::Program> p = ir::Generate({"gpipe", 2, 4, 1, 1, {}});
  ASSERT_TRUE(p.ok());
  Result<CostModel> c = BuildCostModel(s, 2);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const ir::Program lowered = ir::InsertCommunication(*p);
  Result<SimResult> r = Simulate(lowered, *c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->stages[0].peak_memory_bytes, 4 * kGiB);
  EXPECT_EQ(r->stages[1].peak_memory_bytes, 4 * kGiB);
  EXPECT_FALSE(r->stages[0].over_memory);  // 4 GiB of its 100 GiB
  EXPECT_TRUE(r->stages[1].over_memory);   // 4 GiB of its 3 GiB
  EXPECT_EQ(r->stages[0].memory_capacity_bytes, 100 * kGiB);
  EXPECT_EQ(r->stages[1].memory_capacity_bytes, 3 * kGiB);
  // The per-stage table marks device 1's peak, not device 0's.
  MethodRun run{"gpipe", {}, lowered, *r, {}, std::nullopt};
  const std::string table = FormatTable({"h", "h.yaml", 0}, {run}, {.per_stage = true});
  const size_t section = table.find("per stage: gpipe");
  ASSERT_NE(section, std::string::npos) << table;
  const std::string rows = table.substr(section);
  const size_t row0 = rows.find("\n  0 "), row1 = rows.find("\n  1 ");
  ASSERT_NE(row0, std::string::npos) << rows;
  ASSERT_NE(row1, std::string::npos) << rows;
  EXPECT_EQ(rows.substr(row0, row1 - row0).find("GiB!"), std::string::npos) << rows;
  EXPECT_NE(rows.substr(row1).find("4.00 GiB!"), std::string::npos) << rows;
  // The JSON gives each device's own capacity next to its flag.
  const std::string json = FormatJson({"h", "h.yaml", 100 * kGiB}, {run});
  EXPECT_NE(json.find("\"memory_capacity_bytes\": 3221225472"), std::string::npos) << json;
  EXPECT_NE(json.find("\"memory_capacity_bytes\": 107374182400"), std::string::npos) << json;
}

// ---- Planner ------------------------------------------------------------------------------

// Explicit costs, D = 2, M = 4, 1 GiB of activations per microbatch: GPipe peaks at 4 GiB on both
// devices, 1F1B at 2 GiB on device 0 and 1 GiB on device 1.
const char* const kTwoCapacities = R"(pipeline: {stages: 2, microbatches: 4}
costs: {forward: 1ms, backward: 2ms, activation_bytes: 1GiB}
devices: [{memory: 8GiB}, {speed: 0.5, memory: 1.5GiB}]
)";

TEST(HeterogeneousPlanner, EachDeviceIsHeldToItsOwnCapacity) {
  const ir::Scenario s = Parse(kTwoCapacities);
  ir::PlanSpace space;
  space.methods = {{"gpipe", {}, true, 0}, {"1f1b", {}, true, 0}};
  Result<PlanResult> r = RunPlan(s, space, {.memory_budget = kGiB});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->per_device_capacity);
  EXPECT_FALSE(r->memory_cap_bytes.has_value());
  ASSERT_EQ(r->entries.size(), 2u);
  // 1F1B fits (2 GiB of 8, 1 GiB of 1.5) although its 2 GiB peak is above the smaller device's
  // capacity; GPipe's 4 GiB on device 1 does not.
  const PlanEntry& best = r->entries[0];
  EXPECT_EQ(best.config.method, "1f1b");
  EXPECT_TRUE(best.feasible);
  EXPECT_EQ(best.metrics.peak_memory_bytes, 2 * kGiB);
  const PlanEntry& gpipe = r->entries[1];
  EXPECT_EQ(gpipe.config.method, "gpipe");
  EXPECT_FALSE(gpipe.feasible);
  EXPECT_EQ(gpipe.infeasible_reason,
            "peak memory 4.00 GiB of device 1 is above its capacity of 1.50 GiB");
  // A cap given for the plan applies to every device instead.
  space.memory_cap_bytes = 3 * kGiB;
  Result<PlanResult> capped = RunPlan(s, space, {.memory_budget = kGiB});
  ASSERT_TRUE(capped.ok());
  EXPECT_FALSE(capped->per_device_capacity);
  EXPECT_EQ(capped->memory_cap_bytes, 3 * kGiB);
  EXPECT_EQ(capped->feasible, 1);
}

TEST(HeterogeneousPlanner, NothingFitsNamesTheDeviceCapacities) {
  ir::Scenario s = Parse(kTwoCapacities);
  s.devices[0].memory_bytes = kGiB;  // 1F1B's 2 GiB on device 0 no longer fits
  ir::PlanSpace space;
  space.methods = {{"gpipe", {}, true, 0}, {"1f1b", {}, true, 0}};
  Result<PlanResult> r = RunPlan(s, space, {.memory_budget = kGiB});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->feasible, 0);
  const std::string message = DescribeInfeasible(s, *r);
  EXPECT_NE(message.find("the devices' own capacities (devices[].memory) bind"), std::string::npos)
      << message;
  // Closest: 1F1B, 2 GiB on device 0 (2x its capacity) beats GPipe's 4 GiB on device 1.
  EXPECT_NE(message.find("1f1b with D=2"), std::string::npos) << message;
  EXPECT_NE(message.find("whose device 0 needs 2.00 GiB of its 1.00 GiB"), std::string::npos)
      << message;
}

const char* const kModelCluster = R"(pipeline: {stages: 4, microbatches: 8}
model: {layers: 8, hidden: 256, heads: 4, sequence: 128, vocabulary: 1000}
cluster:
  device: {peak_flops: 100TFLOPS, efficiency: 0.5}
  devices: [{peak_flops: 10TFLOPS}, {count: 3}]
)";

TEST(HeterogeneousPlanner, DStagesRunOnTheFirstDDevices) {
  const ir::Scenario s = Parse(kModelCluster);
  ir::PlanConfig c;
  c.method = "1f1b";
  c.stages = 2;
  c.microbatches = 8;
  const ir::Scenario two = ir::ConfiguredScenario(s, c);
  ASSERT_EQ(two.devices.size(), 2u);
  EXPECT_DOUBLE_EQ(ir::DeviceSpeed(two, 0), 0.1);
  EXPECT_EQ(ir::DeviceSpeed(two, 1), 1.0);
  // The planner's evaluation of the configuration is the simulation of that scenario.
  c.minibatches = ir::SimulatedMinibatches(1, 2, 8);
  Result<ir::Program> p = ir::Generate({"1f1b", 2, 8, c.minibatches, 1, {}});
  ASSERT_TRUE(p.ok());
  Result<SimResult> r =
      Simulate(*p, *BuildCostModel(ir::ConfiguredScenario(s, c), 2), {.record_timeline = false});
  ASSERT_TRUE(r.ok());
  Result<PlanMetrics> m = EvaluateConfig(s, c, kGiB);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->makespan, r->makespan);
  // Device 0 at a tenth of the others' speed is slower than on the default device.
  ir::Scenario uniform = s;
  uniform.devices.clear();
  Result<PlanMetrics> fast = EvaluateConfig(uniform, c, kGiB);
  ASSERT_TRUE(fast.ok());
  EXPECT_GT(m->makespan, fast->makespan);
}

TEST(HeterogeneousPlanner, DepthBeyondTheDescribedDevicesIsAnError) {
  const ir::Scenario s = Parse(kModelCluster);
  ir::PlanSpace space;
  space.stages = {2, 8};
  space.methods = {{"1f1b", {}, true, 0}};
  Result<PlanResult> r = RunPlan(s, space, {.memory_budget = kGiB});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "plan.stages: D = 8 needs 8 devices, but cluster.devices describes 4 (a pipeline of "
            "D stages runs on the first D of them); list D up to 4, or describe more devices");
}

}  // namespace
}  // namespace pipecast::sim
