// Tests for sim/time_to_loss.h with hand-worked numbers: steps to a loss by interpolation, which
// profile entry predicts which configuration, and the split of a speedup into throughput and
// convergence.
#include "sim/time_to_loss.h"

#include <gtest/gtest.h>

#include <string>

namespace pipecast::sim {
namespace {

ir::ConvergenceMethod Method(const std::string& method, std::map<std::string, std::string> params,
                             bool async, double steps_per_minibatch,
                             std::vector<std::vector<std::pair<double, double>>> seeds) {
  ir::ConvergenceMethod m;
  m.method = method;
  m.label = method;
  m.params = std::move(params);
  m.asynchronous = async;
  m.steps_per_minibatch = steps_per_minibatch;
  uint64_t seed = 1;
  for (const auto& points : seeds) {
    ir::ConvergenceSeed s{seed++, {}};
    for (const auto& [steps, loss] : points) s.points.push_back({steps, 0, 0, 0, loss, loss, 0});
    m.seeds.push_back(s);
  }
  return m;
}

// The profile of a job with 8 microbatches of 8 samples: 1F1B steps once per minibatch, PACI
// with a = 4 twice.
ir::ConvergenceProfile Profile() {
  ir::ConvergenceProfile p;
  p.source = "c.json";
  p.model_type = "gpt";
  p.model = "gpt: 2 layers";
  p.dataset = "fortunes";
  p.job_source = "job.yaml";
  p.microbatches = 8;
  p.microbatch_size = 8;
  p.methods.push_back(Method("1f1b", {}, false, 1, {{{10, 3.0}, {20, 2.0}, {30, 1.5}}}));
  p.methods.push_back(
      Method("paci", {{"accumulation", "4"}}, true, 2, {{{20, 3.0}, {40, 2.2}, {60, 1.8}}}));
  return p;
}

TEST(StepsToLoss, InterpolatesAndAveragesSeeds) {
  std::string note;
  // Seed 1 crosses 2.5 halfway from 10 to 20 steps: 15; seed 2 at 25 (from 3.0 at 20 to 2.0 at 30).
  const ir::ConvergenceMethod m =
      Method("1f1b", {}, false, 1, {{{10, 3.0}, {20, 2.0}}, {{20, 3.0}, {30, 2.0}}});
  EXPECT_DOUBLE_EQ(*StepsToLoss(m, 2.5, &note), 20.0);
  EXPECT_DOUBLE_EQ(*StepsToLoss(m, 3.5, &note), 15.0);  // below it at once: the first points
  EXPECT_FALSE(StepsToLoss(m, 1.0, &note).has_value());
  EXPECT_EQ(note, "1f1b seed 1 did not reach test loss 1 (best 2.0000 in 20 steps)");
}

PlanMetrics Metrics(double time_per_sample, double samples_per_step) {
  PlanMetrics m;
  m.time_per_sample_s = time_per_sample;
  m.samples_per_step = samples_per_step;
  m.time_per_step_s = time_per_sample * samples_per_step;
  return m;
}

TEST(PredictTimeToLoss, MatchesMethodParametersAndStepShare) {
  const ir::ConvergenceProfile p = Profile();
  // Target: 8 microbatches of 16 (global batch 128). PACI a = 4 steps every 64 samples, half a
  // batch as in the profile; loss 2.5 lies between 3.0 at 20 steps and 2.2 at 40: 32.5 steps.
  const ir::PlanConfig paci{"paci", {{"accumulation", "4"}}, 8, 8, 16, false, {}};
  TimeToLoss t = PredictTimeToLoss(p, paci, Metrics(0.001, 64), 128, 2.5);
  ASSERT_TRUE(t.seconds.has_value()) << t.note;
  EXPECT_DOUBLE_EQ(t.steps_to_loss, 32.5);
  EXPECT_DOUBLE_EQ(*t.seconds, 32.5 * 0.064);
  EXPECT_EQ(t.note, "measured at D=1, predicted at D=8: the staleness differs");
  // The same accumulation over 16 microbatches of 8 is a quarter of the batch: no prediction.
  const ir::PlanConfig quarter{"paci", {{"accumulation", "4"}}, 8, 16, 8, false, {}};
  t = PredictTimeToLoss(p, quarter, Metrics(0.001, 32), 128, 2.5);
  EXPECT_FALSE(t.seconds.has_value());
  EXPECT_EQ(t.note,
            "paci was measured stepping every 0.5 of the global batch; this "
            "configuration steps every 0.25");
  // ZB-H1 has no entry; it is synchronous and takes 1F1B's steps (15 to reach 2.5).
  const ir::PlanConfig zb{"zb-h1", {}, 8, 8, 16, false, {}};
  t = PredictTimeToLoss(p, zb, Metrics(0.002, 128), 128, 2.5);
  ASSERT_TRUE(t.seconds.has_value());
  EXPECT_DOUBLE_EQ(*t.seconds, 15 * 0.256);
  EXPECT_EQ(t.note, "steps of 1f1b (synchronous methods compute the same updates)");
  // An asynchronous method without an entry borrows nothing.
  const ir::PlanConfig pd{"pipedream", {}, 8, 8, 16, false, {}};
  EXPECT_FALSE(PredictTimeToLoss(p, pd, Metrics(0.001, 16), 128, 2.5).seconds.has_value());
}

TEST(CompareWithBaseline, SpeedupIsThroughputTimesConvergence) {
  const ir::ConvergenceProfile p = Profile();
  std::vector<PlanEntry> entries(2);
  entries[0].config = {"paci", {{"accumulation", "4"}}, 8, 8, 16, false, {}};
  entries[0].metrics = Metrics(0.001, 64);
  entries[1].config = {"1f1b", {}, 8, 8, 16, false, {}};
  entries[1].metrics = Metrics(0.0015, 128);
  for (PlanEntry& e : entries) {
    e.time_to_loss = PredictTimeToLoss(p, e.config, e.metrics, 128, 2.5);
  }
  const std::optional<size_t> base = CompareWithBaseline(&entries);
  ASSERT_EQ(base, 1u);  // the synchronous one
  const TimeToLoss& t = entries[0].time_to_loss;
  // 1F1B: 15 steps x 0.192 s = 2.88 s over 1920 samples; PACI: 32.5 x 0.064 = 2.08 s over 2080.
  EXPECT_DOUBLE_EQ(*entries[1].time_to_loss.seconds, 2.88);
  EXPECT_DOUBLE_EQ(t.speedup, 2.88 / 2.08);
  EXPECT_DOUBLE_EQ(t.throughput_factor, 1.5);
  EXPECT_DOUBLE_EQ(t.convergence_factor, 1920.0 / 2080.0);
  EXPECT_NEAR(t.speedup, t.throughput_factor * t.convergence_factor, 1e-12);
  EXPECT_DOUBLE_EQ(entries[1].time_to_loss.speedup, 1.0);
}

TEST(CheckProfile, RefusesAnotherModelOrDataSet) {
  ir::ConvergenceProfile p = Profile();
  ir::Scenario s;
  s.source = "s.yaml";
  s.model = ir::TransformerSpec{};
  ir::PlanSpace space;
  EXPECT_TRUE(CheckProfile(p, s, space).ok());
  p.model_type = "mlp";
  p.model = "mlp: hidden sizes [256]";
  EXPECT_EQ(CheckProfile(p, s, space).message(),
            "plan.convergence: plan.convergence c.json was measured on a mlp model (mlp: hidden "
            "sizes [256], job job.yaml), but the scenario's model is a gpt; measure convergence "
            "on a gpt job (pipecast run JOB --convergence-out FILE)");
  p.model_type = "gpt";
  space.dataset = "fashion-mnist";
  EXPECT_NE(CheckProfile(p, s, space).message().find("was measured on the fortunes data set"),
            std::string::npos);
}

}  // namespace
}  // namespace pipecast::sim
