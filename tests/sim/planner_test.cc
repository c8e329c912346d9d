// Tests for sim/planner.h: the space's size in closed form, hand-worked times on the uniform toy,
// the ranking against an independent re-simulation of every configuration (the slow path:
// generate, lower, record the timeline), the Pareto front against its definition, and the
// messages for contradictory, empty and infeasible spaces.
#include "sim/planner.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/generators.h"
#include "common/lower.h"
#include "sim/cost_builder.h"
#include "sim/engine.h"
#include "sim/report.h"

namespace pipecast::sim {
namespace {

constexpr int64_t kBudget = int64_t{1} << 30;

ir::Scenario Load(const std::string& name) {
  Result<ir::Scenario> s =
      name.empty() ? ir::DefaultScenario()
                   : ir::LoadScenarioFile(std::string(PIPECAST_SOURCE_DIR) + "/scenarios/" + name);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return *s;
}

PlanResult Plan(const ir::Scenario& s, const ir::PlanSpace& space) {
  PlanOptions o;
  o.memory_budget = kBudget;
  Result<PlanResult> r = RunPlan(s, space, o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : PlanResult{};
}

std::string PlanError(const ir::Scenario& s, const ir::PlanSpace& space) {
  Result<PlanResult> r = RunPlan(s, space, {.memory_budget = kBudget});
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(EnumerateSpace, CountsEveryCombination) {
  const ir::Scenario s = Load("");  // global batch 16 x 2 = 32
  ir::PlanSpace space;
  space.methods = {{"1f1b", {}, true, 0},
                   {"interleaved", {{"chunks", {"2", "3"}}}, true, 0},
                   {"paci", {}, true, 0}};
  space.stages = {4, 8};
  space.microbatch_sizes = {1, 2, 4};
  space.recompute = {false, true};
  space.partitions = {ir::PartitionRule::kBalanced};
  int64_t batch = 0;
  Result<std::vector<ir::PlanConfig>> configs = EnumerateSpace(s, &space, &batch);
  ASSERT_TRUE(configs.ok()) << configs.status().message();
  EXPECT_EQ(batch, 32);
  // Per (D, b, recompute): 1f1b, 2 chunk counts, PACI's accumulation M, M/2, M/4 (M = 32/b is
  // 32, 16 or 8, all divisible by 4): 6. Times 2 depths x 3 sizes x 2.
  EXPECT_EQ(configs->size(), 72u);
  std::vector<std::string> paci_at_m8;
  for (const ir::PlanConfig& c : *configs) {
    EXPECT_EQ(c.microbatches * c.microbatch_size, 32);
    if (c.method == "paci" && c.microbatches == 8 && c.stages == 4 && !c.recompute) {
      paci_at_m8.push_back(c.params.at("accumulation"));
    }
  }
  EXPECT_EQ(paci_at_m8, (std::vector<std::string>{"8", "4", "2"}));
}

// Data-parallel copies split the global batch and must fit the scenario's 8 devices: (D, R) in
// (2,1) (4,1) (8,1) (2,2) (4,2) (2,4), each with b = 1, 2, 4.
TEST(EnumerateSpace, DataParallelSplitsTheBatchAndFitsTheDevices) {
  const ir::Scenario s = Load("");  // 8 devices, global batch 32
  ir::PlanSpace space;
  space.methods = {{"1f1b", {}, true, 0}};
  space.stages = {2, 4, 8};
  space.data_parallel = {1, 2, 4};
  space.microbatch_sizes = {1, 2, 4};
  space.recompute = {false};
  space.partitions = {ir::PartitionRule::kBalanced};
  int64_t batch = 0;
  Result<std::vector<ir::PlanConfig>> configs = EnumerateSpace(s, &space, &batch);
  ASSERT_TRUE(configs.ok()) << configs.status().message();
  EXPECT_EQ(configs->size(), 18u);
  for (const ir::PlanConfig& c : *configs) {
    EXPECT_EQ(c.microbatches * c.microbatch_size * c.data_parallel, 32);
    EXPECT_LE(c.stages * c.data_parallel, 8);
  }
  space.data_parallel = {3};
  EXPECT_NE(PlanError(s, space).find("plan.data_parallel: 3 data-parallel copies do not divide "
                                     "the global batch of 32 samples"),
            std::string::npos)
      << PlanError(s, space);
}

TEST(EnumerateSpace, DefaultsAndContradictions) {
  const ir::Scenario s = Load("");
  ir::PlanSpace space;
  int64_t batch = 0;
  ASSERT_TRUE(EnumerateSpace(s, &space, &batch).ok());
  EXPECT_EQ(space.stages, (std::vector<int32_t>{1, 2, 4, 8}));
  EXPECT_EQ(space.microbatch_sizes, (std::vector<int32_t>{1, 2, 4, 8, 16, 32}));
  EXPECT_EQ(space.methods.size(), ir::Methods().size());

  ir::PlanSpace odd;
  odd.microbatch_sizes = {3};
  EXPECT_NE(PlanError(s, odd).find("microbatch size 3 does not divide the global batch of 32"),
            std::string::npos);
  ir::PlanSpace deep;
  deep.stages = {64};  // 26 layers cannot fill 64 stages
  EXPECT_NE(PlanError(s, deep).find("the search space is empty: none of its"), std::string::npos);

  ir::PlanSpace explicit_depth;
  explicit_depth.stages = {2, 4};
  EXPECT_NE(PlanError(Load("toy-uniform.yaml"), explicit_depth)
                .find("plan.stages: only pipeline.stages = 4 can be planned; explicit per-stage "
                      "costs"),
            std::string::npos);
}

// Uniform toy (F = 1 ms, B = 2 ms, D = 4, M = 8): GPipe and 1F1B take (M + D - 1)(tF + tB) =
// 33 ms a minibatch; interleaved with v chunks M(tF + tB) + (D - 1)(tF + tB)/v: 28.5 ms at v = 2
// and 26.25 ms at v = 4 (Narayanan et al., SC'21). The planner runs 8 x D = 32 microbatches, 4
// minibatches where the scenario has 1; device 0 is busy from the first F to the last B, so the
// next minibatch starts when it steps: 4 minibatches take 4 times as long.
TEST(RunPlan, UniformToyByHand) {
  ir::PlanSpace space;
  space.methods = {{"gpipe", {}, true, 0},
                   {"1f1b", {}, true, 0},
                   {"interleaved", {{"chunks", {"2", "4"}}}, true, 0}};
  const PlanResult r = Plan(Load("toy-uniform.yaml"), space);
  ASSERT_EQ(r.entries.size(), 4u);
  EXPECT_EQ(r.entries[0].config.params.at("chunks"), "4");
  EXPECT_EQ(r.entries[0].config.minibatches, 4);
  EXPECT_EQ(r.entries[0].metrics.makespan, 4 * 26'250'000);
  EXPECT_NEAR(r.entries[0].metrics.time_per_sample_s, 26.25e-3 / 8, 1e-15);
  EXPECT_NEAR(r.entries[0].metrics.time_per_step_s, 26.25e-3, 1e-12);
  EXPECT_EQ(r.entries[1].metrics.makespan, 4 * 28'500'000);
  EXPECT_NEAR(r.entries[1].metrics.time_per_sample_s, 28.5e-3 / 8, 1e-15);
  EXPECT_EQ(r.entries[2].metrics.makespan, 4 * 33'000'000);
  EXPECT_NEAR(r.entries[2].metrics.time_per_sample_s, 33e-3 / 8, 1e-15);
  EXPECT_EQ(r.entries[2].config.method, "gpipe");  // ties keep the enumeration order
  EXPECT_EQ(r.entries[3].config.method, "1f1b");
  for (size_t i = 0; i < r.entries.size(); ++i) EXPECT_EQ(r.entries[i].rank, int32_t(i + 1));
  // Nothing costs memory and nothing is stale: the fastest alone is on the front.
  EXPECT_EQ(r.pareto, (std::vector<size_t>{0}));
}

// The metrics of one configuration on the slow path, independent of the planner's: the
// configured scenario's cost model, the full program lowered, the timeline recorded.
PlanMetrics Resimulate(const ir::Scenario& base, const ir::PlanConfig& c) {
  const ir::Scenario s = ir::ConfiguredScenario(base, c);
  ir::GenerateOptions o{c.method,          c.stages, c.microbatches,   c.minibatches,
                        c.microbatch_size, c.params, c.data_parallel};
  Result<ir::Program> p = ir::Generate(o);
  EXPECT_TRUE(p.ok());
  const ir::Program lowered = ir::InsertCommunication(*p);
  Result<CostModel> cost = BuildCostModel(s, lowered.num_stages);
  EXPECT_TRUE(cost.ok());
  Result<SimResult> r = Simulate(lowered, *cost, {.record_timeline = true});
  EXPECT_TRUE(r.ok());
  PlanMetrics m;
  m.samples_per_s = r->steady_throughput_samples_per_s;
  for (const StageMetrics& st : r->stages) {
    m.peak_memory_bytes = std::max(m.peak_memory_bytes, st.peak_memory_bytes);
    m.max_gradient_delay = std::max(m.max_gradient_delay, st.versions.delay_max);
    m.max_version_gap = std::max(m.max_version_gap, st.versions.gap_max);
  }
  return m;
}

TEST(RunPlan, BestIsTheBestOfEveryConfigurationResimulated) {
  const ir::Scenario s = Load("");
  ir::PlanSpace space;
  space.memory_cap_bytes = int64_t{24} << 30;  // some configurations are infeasible
  const PlanResult r = Plan(s, space);
  ASSERT_GT(r.entries.size(), 2000u);
  ASSERT_GT(r.feasible, 0);
  ASSERT_LT(r.feasible, static_cast<int64_t>(r.entries.size()));
  double best_time = 1e300;
  for (const PlanEntry& e : r.entries) {
    const PlanMetrics m = Resimulate(s, e.config);
    EXPECT_EQ(m.samples_per_s, e.metrics.samples_per_s) << ConfigLabel(e.config);
    EXPECT_EQ(m.peak_memory_bytes, e.metrics.peak_memory_bytes) << ConfigLabel(e.config);
    EXPECT_EQ(m.max_gradient_delay, e.metrics.max_gradient_delay);
    EXPECT_EQ(m.max_version_gap, e.metrics.max_version_gap);
    EXPECT_EQ(e.feasible, m.peak_memory_bytes <= *space.memory_cap_bytes);
    if (e.feasible) best_time = std::min(best_time, 1.0 / m.samples_per_s);
  }
  EXPECT_TRUE(r.entries[0].feasible);
  EXPECT_EQ(r.entries[0].metrics.time_per_sample_s, best_time);
  // Ranks follow the objective: feasible first, then by time per sample.
  for (size_t i = 1; i < r.entries.size(); ++i) {
    const PlanEntry &a = r.entries[i - 1], &b = r.entries[i];
    if (a.feasible == b.feasible) {
      EXPECT_LE(a.metrics.time_per_sample_s, b.metrics.time_per_sample_s);
    } else {
      EXPECT_TRUE(a.feasible);
    }
  }
}

// Data-parallel configurations: the planner's numbers are the slow path's.
TEST(RunPlan, DataParallelConfigurationsResimulate) {
  const ir::Scenario s = Load("");
  ir::PlanSpace space;
  space.methods = {{"1f1b", {}, true, 0}, {"pipedream-2bw", {}, true, 0}, {"chimera", {}, true, 0}};
  space.stages = {2, 4};
  space.data_parallel = {2};
  space.microbatch_sizes = {2, 4};
  const PlanResult r = Plan(s, space);
  // (1f1b, 2bw, chimera with 2 pipelines at D = 2; the same and chimera with 4 at D = 4) x b x
  // recompute x partitions, some invalid (an even partition that does not divide the blocks, a
  // method's own precondition: docs/plan.md)
  ASSERT_EQ(r.entries.size() + static_cast<size_t>(r.invalid), (3u + 4u) * 2 * 2 * 3);
  ASSERT_GE(r.entries.size(), 48u);
  for (const PlanEntry& e : r.entries) {
    EXPECT_EQ(e.config.data_parallel, 2);
    const PlanMetrics m = Resimulate(s, e.config);
    EXPECT_EQ(m.samples_per_s, e.metrics.samples_per_s) << ConfigLabel(e.config);
    EXPECT_EQ(m.peak_memory_bytes, e.metrics.peak_memory_bytes) << ConfigLabel(e.config);
  }
}

// Definition: on the front iff feasible and no feasible entry is at most as large in all three
// and smaller in one, nor equal in all three and earlier.
TEST(ParetoFront, MatchesTheDefinitionWithTies) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> small(0, 4);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<PlanEntry> entries(40);
    for (PlanEntry& e : entries) {
      e.metrics.time_per_sample_s = small(rng);
      e.metrics.peak_memory_bytes = small(rng);
      e.metrics.max_gradient_delay = small(rng);
      e.feasible = small(rng) != 0;
    }
    std::vector<size_t> expected;
    for (size_t i = 0; i < entries.size(); ++i) {
      const PlanMetrics& a = entries[i].metrics;
      bool dominated = !entries[i].feasible;
      for (size_t j = 0; j < entries.size() && !dominated; ++j) {
        const PlanMetrics& b = entries[j].metrics;
        if (j == i || !entries[j].feasible) continue;
        const bool le = b.time_per_sample_s <= a.time_per_sample_s &&
                        b.peak_memory_bytes <= a.peak_memory_bytes &&
                        b.max_gradient_delay <= a.max_gradient_delay;
        const bool equal = b.time_per_sample_s == a.time_per_sample_s &&
                           b.peak_memory_bytes == a.peak_memory_bytes &&
                           b.max_gradient_delay == a.max_gradient_delay;
        dominated = le && (!equal || j < i);
      }
      if (!dominated) expected.push_back(i);
    }
    EXPECT_EQ(ParetoFront(entries, false), expected) << "trial " << trial;
  }
}

TEST(RunPlan, InfeasibleCapNamesTheClosestConfiguration) {
  const ir::Scenario s = Load("");
  ir::PlanSpace space;
  space.memory_cap_bytes = int64_t{1} << 30;  // 1 GiB: below every configuration
  const PlanResult r = Plan(s, space);
  ASSERT_EQ(r.feasible, 0);
  const PlanEntry* least = &r.entries[0];
  for (const PlanEntry& e : r.entries) {
    if (e.metrics.peak_memory_bytes < least->metrics.peak_memory_bytes) least = &e;
  }
  const std::string message = DescribeInfeasible(s, r);
  EXPECT_NE(message.find("the memory cap binds: --memory-cap allows 1.00 GiB per device"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("the configuration needing the least is " + ConfigLabel(least->config)),
            std::string::npos)
      << message;
  EXPECT_NE(
      message.find("raise the cap to at least " + FormatBytes(least->metrics.peak_memory_bytes)),
      std::string::npos)
      << message;
}

TEST(RunPlan, StalenessLimitBinds) {
  const ir::Scenario s = Load("");
  ir::PlanSpace space;
  space.methods = {{"pipedream", {}, true, 0}};
  space.stages = {8};
  space.max_gradient_delay = 0;
  const PlanResult r = Plan(s, space);
  ASSERT_EQ(r.feasible, 0);
  EXPECT_NE(DescribeInfeasible(s, r).find("the staleness limits bind (plan.max_gradient_delay)"),
            std::string::npos)
      << DescribeInfeasible(s, r);
}

TEST(RunPlan, TimeToLossNeedsATargetAndAProfile) {
  const ir::Scenario s = Load("");
  ir::PlanSpace space;
  space.objective = ir::PlanObjective::kTimeToLoss;
  EXPECT_NE(PlanError(s, space).find("plan.objective: time_to_loss needs a target loss"),
            std::string::npos);
  space.target_loss = 2.0;
  EXPECT_NE(PlanError(s, space).find("time_to_loss needs measured convergence: add "
                                     "plan.convergence"),
            std::string::npos);
}

}  // namespace
}  // namespace pipecast::sim
