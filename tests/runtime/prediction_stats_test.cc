// Holds the CPU device's prediction-accuracy numbers (Device::Predictions after a run prepared
// with DeviceSetup::track_predictions) to the tracking rule, recomputed here from the sequential
// reference trainer's versions and predictions (reference_trainer.h, ReferenceOptions::history),
// which shares no schedule, generator or version-plan code with the executor.
//
// The rule, per stage, tracking every K steps: one tracked prediction at a time. A prediction
// computed while none is tracked, whose base is at least K steps after the last tracked one's
// (any base for the first), is tracked: base W_t (t = the stage's steps so far), predicted Ŵ,
// target t + s. When a
// step of the stage produces W_target it is measured, err = ||Ŵ - W_target|| / ||W_target - W_t||
// and cos = <Ŵ - W_t, W_target - W_t> / (||Ŵ - W_t|| ||W_target - W_t||) (0 when Ŵ = W_t), unless
// W_target = W_t (skipped); a prediction whose target the run never reaches is dropped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/executor_adapter.h"
#include "runtime/method_case.h"
#include "runtime/reference_trainer.h"

namespace pipecast::runtime::testing {
namespace {

using models::OptimizerKind;
using Params = std::map<std::string, std::string>;
using Weights = std::vector<float>;

struct Spec {
  std::string method;
  Params params;
  OptimizerKind optimizer = OptimizerKind::kSgd;
  int32_t stages = 2;
};

std::string CaseName(const Spec& s) {
  std::string name = s.method;
  for (const auto& [key, value] : s.params) name.append("_").append(key).append("_").append(value);
  name.append("_").append(models::OptimizerKindName(s.optimizer));
  name.append("_D").append(std::to_string(s.stages));
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

void PrintTo(const Spec& s, std::ostream* os) { *os << CaseName(s); }

// SGD with momentum (and coupled weight decay) or AdamW, at rates that train the clusters;
// `lr` < 0 keeps the optimizer's rate.
MethodCase MakeCase(const Spec& s, double lr = -1) {
  MethodCase c;
  c.method = s.method;
  c.params = s.params;
  c.stages = s.stages;
  // XPipe steps once per minibatch: more, shorter minibatches give it more steps to predict.
  c.microbatches = s.method == "xpipe" ? 2 : 4;
  c.minibatches = s.method == "xpipe" ? 5 : 3;
  c.optimizer = models::DefaultOptimizerConfig(s.optimizer);
  const bool sgd = s.optimizer == OptimizerKind::kSgd;
  c.optimizer.lr = sgd ? 0.05 : 0.01;
  c.optimizer.momentum = sgd ? 0.9 : 0;
  c.optimizer.weight_decay = sgd ? 1e-3 : 0.05;
  const double rate = lr < 0 ? c.optimizer.lr : lr;
  c.learning_rate = [rate](int32_t, int64_t) { return rate; };
  c.model = ClusterMlp(2 * s.stages - 1);  // two Linear layers per stage
  static const auto loader = ClusterLoader();
  c.loader = loader;
  return c;
}

double Distance(const Weights& a, const Weights& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += d * d;
  }
  return std::sqrt(sum);
}

// <a - base, b - base>.
double Dot(const Weights& a, const Weights& b, const Weights& base) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i)
    sum += (static_cast<double>(a[i]) - base[i]) * (static_cast<double>(b[i]) - base[i]);
  return sum;
}

// Adds the measurement of `p` against the versions of its stage, unless its target was never
// reached or the stage did not move.
void Measure(const std::vector<Weights>& versions, const PredictionRecord& p,
             PredictionStats& stats) {
  const size_t target = static_cast<size_t>(p.version + p.horizon);
  if (target >= versions.size()) return;  // dropped
  const Weights& base = versions[p.version];
  const Weights& reached = versions[target];
  const double moved = Distance(reached, base);
  if (moved == 0) return;  // skipped
  const double predicted = Distance(p.weights, base);
  ++stats.count;
  stats.error_sum += Distance(p.weights, reached) / moved;
  stats.cosine_sum += predicted == 0 ? 0.0 : Dot(p.weights, reached, base) / (predicted * moved);
}

// The rule along a stage's predictions in program order. A step of the stage separates two
// predictions exactly when their base versions differ, so the tracked one is measured (its
// target reached) before the first prediction made from version target or later.
PredictionStats Expected(const std::vector<Weights>& versions,
                         const std::vector<PredictionRecord>& predictions, int32_t every) {
  PredictionStats stats;
  const PredictionRecord* tracked = nullptr;
  int64_t next_base = 0;
  for (const PredictionRecord& p : predictions) {
    if (tracked != nullptr && p.version >= tracked->version + tracked->horizon) {
      Measure(versions, *tracked, stats);
      tracked = nullptr;
    }
    if (tracked == nullptr && p.version >= next_base) {
      tracked = &p;
      next_base = p.version + every;
    }
  }
  if (tracked != nullptr) Measure(versions, *tracked, stats);
  return stats;
}

// The reference with its history, checked for what Expected relies on.
ReferenceRun Reference(const MethodCase& c) {
  auto run = RunReference(c, {.history = true});
  EXPECT_TRUE(run.ok()) << run.status().message();
  if (!run.ok()) return {};
  EXPECT_EQ(run->versions.size(), run->weights.size());
  EXPECT_EQ(run->predictions.size(), run->weights.size());
  for (size_t s = 0; s < run->versions.size(); ++s) {
    EXPECT_EQ(run->versions[s].size(), static_cast<size_t>(run->steps[s % c.stages] + 1));
    EXPECT_EQ(run->versions[s].back(), run->weights[s]);
    for (size_t i = 0; i < run->predictions[s].size(); ++i) {
      const PredictionRecord& p = run->predictions[s][i];
      EXPECT_GT(p.horizon, 0);
      if (i > 0) {
        EXPECT_GE(p.version, run->predictions[s][i - 1].version) << "program order";
      }
    }
  }
  return std::move(*run);
}

Result<CpuRun> Executor(const MethodCase& c, int32_t every = 1) {
  CpuRunOptions options;
  options.track_predictions_every = every;
  return RunExecutorOnCpu(c, options);
}

// Both sides measure the same float weights (the executor's final weights equal the
// reference's bit for bit, checked below), but the rule fixes the values only up to double
// rounding: the device takes sqrt(err² / real²) where this test takes ||.|| / ||.||, and sums in
// its own order. Those differ by a few ulps; a wrong version or prediction changes a mean at the
// percent level. Hence 1e-9, relative.
void ExpectMean(double device_sum, double expected_sum, int64_t count, const std::string& what) {
  if (count == 0) return;
  const double device = device_sum / static_cast<double>(count);
  const double expected = expected_sum / static_cast<double>(count);
  EXPECT_NEAR(device, expected, 1e-9 * std::abs(expected)) << what;
}

class PredictionStatsMatchRule : public ::testing::TestWithParam<Spec> {};

TEST_P(PredictionStatsMatchRule, PerStageCountErrorAndCosine) {
  const MethodCase c = MakeCase(GetParam());
  const ReferenceRun reference = Reference(c);
  // Every step, and every third (fewer tracked, bases at least 3 apart).
  for (int32_t every : {1, 3}) {
    auto executor = Executor(c, every);
    ASSERT_TRUE(executor.ok()) << executor.status().message();
    ASSERT_EQ(executor->weights, reference.weights) << "the runs trained differently";
    ASSERT_EQ(executor->predictions.size(), reference.predictions.size());
    for (size_t s = 0; s < reference.predictions.size(); ++s) {
      const PredictionStats want = Expected(reference.versions[s], reference.predictions[s], every);
      const PredictionStats& got = executor->predictions[s];
      const std::string where = "every " + std::to_string(every) + ", stage " + std::to_string(s);
      EXPECT_EQ(got.count, want.count) << where;
      if (every == 1) {
        EXPECT_EQ(want.count > 0, !reference.predictions[s].empty()) << where;
      }
      if (got.count != want.count) continue;
      ExpectMean(got.error_sum, want.error_sum, want.count, where + " error");
      ExpectMean(got.cosine_sum, want.cosine_sum, want.count, where + " cosine");
    }
  }
}

// PipeOptim (both horizons), SpecTrain v1 and v2, XPipe (its three horizons) with SGD + momentum
// and AdamW at D = 2, 3, 4.
std::vector<Spec> AllCases() {
  const std::vector<std::pair<std::string, Params>> variants = {
      {"pipeoptim", {{"horizon", "paper"}}},
      {"pipeoptim", {{"horizon", "code"}}},
      {"spectrain", {{"variant", "v1"}}},
      {"spectrain", {{"variant", "v2"}}},
      {"xpipe", {}},
      {"xpipe", {{"horizon", "sequential"}}},
      {"xpipe", {{"horizon", "formula"}}}};
  std::vector<Spec> out;
  for (const auto& [method, params] : variants)
    for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdamW})
      for (int32_t d = 2; d <= 4; ++d) out.push_back({method, params, opt, d});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Methods, PredictionStatsMatchRule, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Spec>& info) {
                           return CaseName(info.param);
                         });

// At D = 4 over T = 12 microbatches, one step per backward, stage k's forward of microbatch j
// runs at version max(0, j - w), w = D - 1 - k, predicting s ahead; nothing else predicts. The
// tracked predictions start at versions 0, s, 2s, ...: with the paper's s = w those are the
// forwards' versions up to T - 1 - w, floor((T - 1) / s) of them (none for s = 0); with the
// code's s = w + 1, floor(T / s), the last one's target T reached by the last step. SpecTrain v2
// predicts the forward exactly as PipeOptim's paper horizon (its backward reuses the forward's).
// Tracking every 3 steps, the paper horizon's bases are 0, 3, 6 on stage 0 (s = 3), 0, 3, 6, 9 on
// stage 1 (s = 2; target 11 <= 12) and 0, 3, 6, 9 on stage 2 (s = 1).
TEST(PredictionStats, HandCountedAtDepthFour) {
  struct Counted {
    Spec spec;
    std::vector<int64_t> counts;
    int32_t every = 1;
  };
  const std::vector<Counted> cases = {
      {{"pipeoptim", {{"horizon", "paper"}}, OptimizerKind::kSgd, 4}, {3, 5, 11, 0}},
      {{"pipeoptim", {{"horizon", "code"}}, OptimizerKind::kSgd, 4}, {3, 4, 6, 12}},
      {{"spectrain", {{"variant", "v2"}}, OptimizerKind::kAdamW, 4}, {3, 5, 11, 0}},
      {{"pipeoptim", {{"horizon", "paper"}}, OptimizerKind::kSgd, 4}, {3, 4, 4, 0}, 3}};
  for (const Counted& counted : cases) {
    auto run = Executor(MakeCase(counted.spec), counted.every);
    ASSERT_TRUE(run.ok()) << run.status().message();
    ASSERT_EQ(run->predictions.size(), 4u);
    for (size_t k = 0; k < 4; ++k) {
      const PredictionStats& p = run->predictions[k];
      EXPECT_EQ(p.count, counted.counts[k]) << CaseName(counted.spec) << " stage " << k;
      if (p.count == 0) continue;
      // A relative error is >= 0 and a cosine in [-1, 1]; one step of momentum SGD or AdamW
      // predicted from the optimizer state points roughly where the weights go.
      const double n = static_cast<double>(p.count);
      EXPECT_GE(p.error_sum / n, 0.0);
      EXPECT_GT(p.cosine_sum / n, 0.0) << CaseName(counted.spec) << " stage " << k;
      EXPECT_LE(p.cosine_sum / n, 1.0 + 1e-12);
    }
  }
}

// With a zero learning rate no stage ever moves, so every measurement is skipped, though the
// passes still predict (Ŵ = W).
TEST(PredictionStats, NothingCountedWhenTheStagesNeverMove) {
  for (const Spec& spec : AllCases()) {
    if (spec.stages != 3) continue;
    const MethodCase c = MakeCase(spec, 0.0);
    const ReferenceRun reference = Reference(c);
    auto run = Executor(c);
    ASSERT_TRUE(run.ok()) << run.status().message();
    bool predicted = false;
    for (size_t s = 0; s < run->predictions.size(); ++s) {
      predicted = predicted || !reference.predictions[s].empty();
      EXPECT_EQ(Expected(reference.versions[s], reference.predictions[s], 1).count, 0);
      EXPECT_EQ(run->predictions[s].count, 0) << CaseName(spec) << " stage " << s;
      EXPECT_EQ(run->predictions[s].error_sum, 0.0);
      EXPECT_EQ(run->predictions[s].cosine_sum, 0.0);
    }
    EXPECT_TRUE(predicted) << CaseName(spec);
  }
}

// Asking for the history changes nothing the reference trains; without it none is kept.
TEST(PredictionStats, ReferenceHistoryIsOnlyExtra) {
  const MethodCase c = MakeCase({"spectrain", {{"variant", "v1"}}, OptimizerKind::kSgd, 3});
  auto plain = RunReference(c);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  const ReferenceRun with = Reference(c);
  EXPECT_EQ(plain->weights, with.weights);
  EXPECT_EQ(plain->steps, with.steps);
  EXPECT_TRUE(plain->versions.empty());
  EXPECT_TRUE(plain->predictions.empty());
  // SpecTrain v1 at D = 3 predicts every forward (by 2, 1, 1) and only stage 2's backwards (by
  // k / 2 = 0, 0, 1): 12, 12 and 24 predictions over 12 microbatches.
  ASSERT_EQ(with.predictions.size(), 3u);
  EXPECT_EQ(with.predictions[0].size(), 12u);
  EXPECT_EQ(with.predictions[1].size(), 12u);
  EXPECT_EQ(with.predictions[2].size(), 24u);
}

}  // namespace
}  // namespace pipecast::runtime::testing
