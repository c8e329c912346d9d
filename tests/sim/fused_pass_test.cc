// The engine's one-pass shortcuts against their definitions, for every method and random sizes
// and costs:
//   - transfers derived from an unlowered program time exactly like the lowered program's sends
//     and receives (with and without LogP overheads);
//   - the version metrics counted during the pass equal ComputeVersionStats over the version
//     plan (common/version_stats.h), field by field;
//   - peak memory equals the definition of docs/metrics.md evaluated from the plan's per-action
//     weight copies and the activations in flight in program order.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/compact_program.h"
#include "common/generators.h"
#include "common/lower.h"
#include "common/version_plan.h"
#include "common/version_stats.h"
#include "sim/engine.h"
#include "sim/sim_test_util.h"

namespace pipecast::sim {
namespace {

using testing::RandomCosts;

using ir::Action;
using ir::ActionKind;

struct Variant {
  std::string method;
  std::map<std::string, std::string> params;
  int32_t data_parallel = 1;
};

std::vector<Variant> Variants() {
  std::vector<Variant> v;
  for (const ir::MethodInfo& m : ir::Methods()) v.push_back({m.name, {}});
  v.push_back({"pipedream", {{"vertical_sync", "true"}}});
  v.push_back({"spectrain", {{"variant", "v2"}}});
  v.push_back({"pipemare", {{"correction", "false"}}});
  v.push_back({"pipeoptim", {{"horizon", "code"}}});
  v.push_back({"xpipe", {{"horizon", "formula"}}});
  v.push_back({"paci", {{"accumulation", "3"}, {"allowed_lagging", "2"}}});
  // Data-parallel copies: all-reduces before every Step, on every cadence.
  v.push_back({"1f1b", {}, 2});
  v.push_back({"pipedream", {}, 3});
  v.push_back({"pipedream-2bw", {}, 2});
  v.push_back({"chimera", {}, 2});
  return v;
}

ir::Program RandomProgram(const Variant& v, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> dd(1, 7), mm(1, 10), nn(1, 4);
  ir::GenerateOptions o{v.method, dd(rng), mm(rng), nn(rng), 1, v.params, v.data_parallel};
  if (v.method == "pipedream-2bw") o.microbatches = std::max(o.microbatches, o.devices);
  if (v.method == "interleaved") {
    o.microbatches = o.devices * (1 + o.microbatches % 3);
    o.params["chunks"] = std::to_string(1 + o.microbatches % 3);
  }
  if (v.method == "chimera" || v.method == "gems") o.devices += o.devices % 2;  // device pairs
  auto p = ir::Generate(o);
  EXPECT_TRUE(p.ok()) << v.method << ": " << p.status().message();
  return *p;
}

// The compact encoding is the same program, and the pass over it gives the same results.
TEST(FusedPass, CompactProgramsSimulateLikeThePrograms) {
  std::mt19937_64 rng(11);
  for (const Variant& v : Variants()) {
    for (int iter = 0; iter < 6; ++iter) {
      const ir::Program p = RandomProgram(v, rng);
      // The program's devices and microbatches are every copy's: one copy's are the options.
      const int32_t copies = v.method == "avgpipe" ? p.replicas : v.data_parallel;
      ir::GenerateOptions o{p.method,      p.num_devices / copies, p.microbatches / copies,
                            p.minibatches, 1,                      v.params,
                            v.data_parallel};
      if (v.method == "interleaved")
        o.params.emplace("chunks", std::to_string(p.num_stages / p.num_devices));
      Result<ir::CompactProgram> compact = ir::GenerateCompact(o);
      ASSERT_TRUE(compact.ok()) << v.method << ": " << compact.status().message();
      const ir::Program expanded = compact->Expand();
      EXPECT_EQ(expanded, p) << v.method;
      const CostModel c = RandomCosts(expanded, rng, iter % 2 == 1);
      auto a = Simulate(*compact, c);
      auto b = Simulate(expanded, c, {.record_timeline = false});
      ASSERT_TRUE(a.ok() && b.ok()) << v.method;
      EXPECT_EQ(a->makespan, b->makespan) << v.method;
      for (size_t d = 0; d < a->stages.size(); ++d) {
        EXPECT_EQ(a->stages[d].busy, b->stages[d].busy) << v.method;
        EXPECT_EQ(a->stages[d].peak_memory_bytes, b->stages[d].peak_memory_bytes) << v.method;
        EXPECT_EQ(a->stages[d].versions, b->stages[d].versions) << v.method;
      }
    }
  }
}

// docs/metrics.md's memory of device d at its compute actions and steps, in program order:
// weight_bytes x copies held (the plan's count) + optimizer state + gradients + extra +
// activations in flight (an F's own activations included).
int64_t ReferencePeak(const ir::Program& p, const CostModel& c, const ir::VersionPlan& plan,
                      int32_t d) {
  int64_t weights = 0, fixed = 0;
  for (int32_t s = 0; s < p.num_stages; ++s) {
    if (!p.holds(d, s)) continue;  // each replica's copy costs its own device
    const StageCost& sc = c.stages[s];
    weights += sc.weight_bytes;
    fixed +=
        sc.optimizer_state_bytes + (sc.gradient_bytes < 0 ? sc.weight_bytes : sc.gradient_bytes);
    if (plan.uses_correction[d]) fixed += sc.weight_bytes;
    if (p.options.elastic_alpha > 0) fixed += sc.weight_bytes;  // AvgPipe's reference weights
  }
  int64_t activations = 0, peak = 0;
  const std::vector<Action>& prog = p.devices[d];
  for (size_t i = 0; i < prog.size(); ++i) {
    const Action& a = prog[i];
    if (!ir::IsCompute(a.kind) && a.kind != ActionKind::kStep) continue;
    const StageCost* sc = a.stage >= 0 ? &c.stages[a.stage] : nullptr;
    if (a.kind == ActionKind::kForward) activations += sc->activation_bytes;
    peak = std::max(peak, weights * plan.LiveDuring(d, i, a) + fixed + activations);
    if (a.kind == ActionKind::kBackward) activations -= sc->activation_bytes;
    if (a.kind == ActionKind::kBackwardInput) {
      activations += sc->activation_bytes_after_input_grad - sc->activation_bytes;
    }
    if (a.kind == ActionKind::kWeightGrad) activations -= sc->activation_bytes_after_input_grad;
  }
  return peak;
}

TEST(FusedPass, DerivedTransfersTimeLikeLoweredSends) {
  std::mt19937_64 rng(20261201);
  for (const Variant& v : Variants()) {
    for (int iter = 0; iter < 12; ++iter) {
      const ir::Program p = RandomProgram(v, rng);
      const ir::Program lowered = ir::InsertCommunication(p);
      const CostModel c = RandomCosts(p, rng, iter % 2 == 1);
      auto fast = Simulate(p, c, {.record_timeline = false});
      auto reference = Simulate(lowered, c, {.record_timeline = true});
      ASSERT_TRUE(fast.ok()) << v.method << ": " << fast.status().message();
      ASSERT_TRUE(reference.ok()) << v.method << ": " << reference.status().message();
      EXPECT_EQ(fast->makespan, reference->makespan) << v.method;
      EXPECT_EQ(fast->steady_throughput_samples_per_s, reference->steady_throughput_samples_per_s);
      ASSERT_EQ(fast->stages.size(), reference->stages.size());
      for (size_t d = 0; d < fast->stages.size(); ++d) {
        const StageMetrics& a = fast->stages[d];
        const StageMetrics& b = reference->stages[d];
        EXPECT_EQ(a.busy, b.busy) << v.method << " device " << d;
        EXPECT_EQ(a.first_start, b.first_start) << v.method << " device " << d;
        EXPECT_EQ(a.last_end, b.last_end) << v.method << " device " << d;
        EXPECT_EQ(a.peak_memory_bytes, b.peak_memory_bytes) << v.method << " device " << d;
        EXPECT_EQ(a.versions, b.versions) << v.method << " device " << d;
      }
      EXPECT_TRUE(fast->timing.empty() && fast->transfers.empty() && fast->memory.empty());
    }
  }
}

TEST(FusedPass, VersionMetricsAndMemoryEqualThePlan) {
  std::mt19937_64 rng(7);
  for (const Variant& v : Variants()) {
    for (int iter = 0; iter < 12; ++iter) {
      const ir::Program p = RandomProgram(v, rng);
      const CostModel c = RandomCosts(p, rng, false);
      auto r = Simulate(p, c, {.record_timeline = false});
      ASSERT_TRUE(r.ok()) << v.method << ": " << r.status().message();
      const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kLivePerAction);
      const std::vector<ir::DeviceVersionStats> stats = ir::ComputeVersionStats(p, plan);
      for (int32_t d = 0; d < p.num_devices; ++d) {
        EXPECT_EQ(r->stages[d].versions, stats[d]) << v.method << " device " << d;
        EXPECT_EQ(r->stages[d].peak_memory_bytes, ReferencePeak(p, c, plan, d))
            << v.method << " device " << d;
      }
    }
  }
}

// Times and sizes that do not fit int64 are errors that name the quantity.
TEST(FusedPass, OverflowIsAnErrorNamingTheQuantity) {
  auto p = ir::Generate({"1f1b", 2, 2, 1, 1, {}});
  ASSERT_TRUE(p.ok());
  CostModel c = UniformCostModel(2, 1000, 2000);
  c.stages[0].message_bytes = 2'000'000'000;
  c.link.bandwidth = 0.125;  // 1 bit/s
  auto slow = Simulate(*p, c, {.record_timeline = false});
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(slow.status().message().find("stage 0: moving message_bytes (2000000000 bytes) at "
                                         "0.125 bytes/s takes longer than the simulator's clock"),
            std::string::npos)
      << slow.status().message();

  // Each action fits, the run does not: 4 microbatches of 2^61 ns each on one device.
  auto q = ir::Generate({"gpipe", 1, 4, 1, 1, {}});
  ASSERT_TRUE(q.ok());
  CostModel big = UniformCostModel(1, TimeNs{1} << 61, TimeNs{1} << 61);
  auto r = Simulate(*q, big, {.record_timeline = false});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("the simulated time at device 0, action 3 (0F3) does not "
                                      "fit the simulator's int64"),
            std::string::npos)
      << r.status().message();
}

// The busy time summed over devices exceeds int64 while every device's fits: the idle share is
// still a fraction.
TEST(FusedPass, IdleShareStaysAFractionForLongRuns) {
  auto p = ir::Generate({"pipedream", 8, 4, 1, 1, {}});
  ASSERT_TRUE(p.ok());
  const TimeNs t = TimeNs{1} << 58;
  auto r = Simulate(*p, UniformCostModel(8, t, t), {.record_timeline = false});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GE(r->bubble.idle_fraction, 0.0);
  EXPECT_LE(r->bubble.idle_fraction, 1.0);
  EXPECT_GT(r->makespan, TimeNs{1} << 61);
}

}  // namespace
}  // namespace pipecast::sim
