// Tests for common/plan_space.h: the plan: section as written (every key, lists and scalars),
// its errors at file:line:column with the fix, and the scenario of one configuration.
#include "common/plan_space.h"

#include <gtest/gtest.h>

#include <string>

namespace pipecast::ir {
namespace {

const char* const kBase = R"(pipeline: {stages: 8, microbatches: 16, microbatch_size: 2}
model: {layers: 24, hidden: 1024, heads: 16, sequence: 1024, vocabulary: 50257}
cluster: {device: {peak_flops: 312TFLOPS, memory: 80GiB}}
)";

PlanSpace Parse(const std::string& plan) {
  Result<std::optional<PlanSpace>> r = ParsePlanSection(std::string(kBase) + plan, "p.yaml");
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() && *r ? **r : PlanSpace{};
}

std::string Error(const std::string& plan) {
  Result<std::optional<PlanSpace>> r = ParsePlanSection(std::string(kBase) + plan, "p.yaml");
  EXPECT_FALSE(r.ok()) << plan;
  return r.ok() ? "" : r.status().message();
}

TEST(PlanSection, EveryKey) {
  const PlanSpace p = Parse(R"(plan:
  objective: time_to_loss
  target_loss: 2.5
  convergence: c.json
  dataset: fortunes
  memory_cap: 40GiB
  max_gradient_delay: 1
  max_version_gap: 2
  global_batch: 64
  stages: [4, 8]
  microbatch_sizes: 2
  recompute: [off, on]
  partitions: [balanced, megatron-core]
  methods: [1f1b, {name: paci, accumulation: [4, 8]}]
)");
  EXPECT_EQ(p.objective, PlanObjective::kTimeToLoss);
  EXPECT_EQ(p.target_loss, 2.5);
  EXPECT_EQ(p.convergence, "c.json");
  EXPECT_EQ(p.dataset, "fortunes");
  EXPECT_EQ(p.memory_cap_bytes, int64_t{40} << 30);
  EXPECT_EQ(p.max_gradient_delay, 1);
  EXPECT_EQ(p.max_version_gap, 2);
  EXPECT_EQ(p.global_batch, 64);
  EXPECT_EQ(p.stages, (std::vector<int32_t>{4, 8}));
  EXPECT_EQ(p.microbatch_sizes, (std::vector<int32_t>{2}));  // a scalar is a list of one
  EXPECT_EQ(p.recompute, (std::vector<bool>{false, true}));
  EXPECT_EQ(p.partitions,
            (std::vector<PartitionRule>{PartitionRule::kBalanced, PartitionRule::kMegatronCore}));
  ASSERT_EQ(p.methods.size(), 2u);
  EXPECT_EQ(p.methods[0].name, "1f1b");
  EXPECT_TRUE(p.methods[0].params.empty());
  EXPECT_EQ(p.methods[1].name, "paci");
  EXPECT_EQ(p.methods[1].params.at("accumulation"), (std::vector<std::string>{"4", "8"}));
  EXPECT_EQ(p.methods[1].line, 17);
  EXPECT_EQ(p.positions.at("stages").line, 13);
  EXPECT_EQ(p.positions.at("stages").column, 3);
}

TEST(PlanSection, AbsentOrNoCap) {
  Result<std::optional<PlanSpace>> none = ParsePlanSection(kBase, "p.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(Parse("plan: {memory_cap: none}\n").memory_cap_bytes, 0);
  // The scenario parser accepts the key (other commands ignore it).
  EXPECT_TRUE(ParseScenario(std::string(kBase) + "plan: {stages: 8}\n", "p.yaml").ok());
}

TEST(PlanSection, ErrorsNameTheKeyAndTheFix) {
  EXPECT_EQ(Error("plan:\n  stage: [8]\n"),
            "p.yaml:5:3: unknown key 'stage' in plan; did you mean 'stages'?");
  EXPECT_EQ(Error("plan:\n  stages: []\n"),
            "p.yaml:5:11: plan.stages must be a value or a non-empty list of values (an empty "
            "list leaves nothing to search)");
  EXPECT_EQ(Error("plan:\n  stages: [4, 4]\n"),
            "p.yaml:5:15: plan.stages lists the same value twice");
  EXPECT_EQ(Error("plan:\n  stages: [0]\n"),
            "p.yaml:5:12: plan.stages must be a whole number from 1 to 1000000, got '0'");
  EXPECT_EQ(Error("plan:\n  objective: fastest\n"),
            "p.yaml:5:14: plan.objective must be time_per_sample or time_to_loss, got 'fastest'");
  EXPECT_EQ(Error("plan:\n  memory_cap: lots\n"),
            "p.yaml:5:15: plan.memory_cap: expected a size such as 40GiB, or none for no cap, "
            "got 'lots'");
  EXPECT_EQ(Error("plan:\n  partitions: [balance]\n"),
            "p.yaml:5:16: plan.partitions: 'balance' is not a partition rule (balanced, even, "
            "megatron-core)");
  EXPECT_EQ(Error("plan:\n  methods: [pacy]\n"),
            "p.yaml:5:13: plan.methods[0]: unknown method 'pacy'; did you mean 'paci'? "
            "(pipecast methods lists them)");
  EXPECT_EQ(Error("plan:\n  methods: [{name: paci, accumulations: 4}]\n"),
            "p.yaml:5:13: plan.methods[0]: method 'paci' has no parameter 'accumulations' "
            "(pipecast methods lists its parameters)");
  EXPECT_NE(Error("plan:\n  methods: [{name: paci, accumulation: [4, 0]}]\n")
                .find("parameter 'accumulation' of method 'paci' must be a positive integer"),
            std::string::npos);
  EXPECT_EQ(Error("plan:\n  target_loss: -1\n"),
            "p.yaml:5:16: plan.target_loss must be a positive number (a test loss in nats), got "
            "'-1'");
  EXPECT_EQ(Error("plan:\n  stages: 8\n  stages: 4\n"), "p.yaml:6:3: duplicate key 'plan.stages'");
}

TEST(PlanSection, WherePlanKeyPointsAtTheKey) {
  Scenario s;
  s.source = "p.yaml";
  const PlanSpace p = Parse("plan:\n  memory_cap: 1GiB\n");
  EXPECT_EQ(WherePlanKey(s, p, "memory_cap"), "p.yaml:5:3: plan.memory_cap");
  EXPECT_EQ(WherePlanKey(s, p, "stages"), "plan.stages");  // not written: set by a flag
}

// At least 8 x D microbatches: 8 stages of 1 microbatch need 64 minibatches; 32 microbatches
// need 2, fewer than the scenario's 4; the cap of 1000000 microbatches holds.
TEST(SimulatedMinibatches, FillsThePipelineEightTimes) {
  EXPECT_EQ(SimulatedMinibatches(4, 8, 1), 64);
  EXPECT_EQ(SimulatedMinibatches(4, 8, 32), 4);
  EXPECT_EQ(SimulatedMinibatches(1, 4, 8), 4);
  EXPECT_EQ(SimulatedMinibatches(1, 8, 3), 22);  // ceil(64 / 3)
  EXPECT_EQ(SimulatedMinibatches(2, 64, 1024), 2);
  EXPECT_EQ(SimulatedMinibatches(1, 1000, 1000000), 1);
}

TEST(ConfiguredScenario, SetsTheShapeAndOneMethod) {
  Result<Scenario> base = ParseScenario(std::string(kBase) + "methods: [gpipe, 1f1b]\n", "p.yaml");
  ASSERT_TRUE(base.ok());
  const PlanConfig c{"paci", {{"accumulation", "4"}}, 4, 8, 4, true, PartitionRule::kEven, 5};
  const Scenario s = ConfiguredScenario(*base, c);
  EXPECT_EQ(s.pipeline.stages, 4);
  EXPECT_EQ(s.pipeline.microbatches, 8);
  EXPECT_EQ(s.pipeline.microbatch_size, 4);
  EXPECT_EQ(s.pipeline.minibatches, 5);
  EXPECT_TRUE(s.model->recompute);
  EXPECT_EQ(s.model->partition, PartitionRule::kEven);
  ASSERT_EQ(s.methods.size(), 1u);
  EXPECT_EQ(s.methods[0].name, "paci");
  EXPECT_EQ(s.methods[0].params.at("accumulation"), "4");
}

}  // namespace
}  // namespace pipecast::ir
