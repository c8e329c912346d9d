// Holds the executor to the methods' definitions. For every method, optimizer and depth (and the
// methods' non-default parameters), the executor's final weights equal, bit for bit, those of the
// sequential reference trainer (reference_trainer.h), which is written from the definitions and
// shares no schedule or version code with the executor. Both sides accumulate each stage's
// gradients in the same program order and call the same models/ arithmetic, so no tolerance is
// needed anywhere: any difference is a different weight version, prediction, correction, step
// cadence or loss scale.
//
// The reference is checked on its own too: with one stage and no horizon it is the plain
// training loop; flushed schedules are sequential gradient accumulation; its version records
// reproduce the hand-worked tables of docs/methods.md (D = 4, and PACI at D = 8).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "common/generators.h"
#include "models/loss.h"
#include "runtime/executor_adapter.h"
#include "runtime/method_case.h"
#include "runtime/reference_trainer.h"

namespace pipecast::runtime::testing {
namespace {

using models::OptimizerKind;
using Params = std::map<std::string, std::string>;
using Weights = std::vector<std::vector<float>>;

constexpr OptimizerKind kOptimizers[] = {OptimizerKind::kSgd, OptimizerKind::kAdam,
                                         OptimizerKind::kAdamW, OptimizerKind::kRmsprop,
                                         OptimizerKind::kLion};

struct CaseSpec {
  std::string method;
  Params params;
  OptimizerKind optimizer = OptimizerKind::kSgd;
  int32_t stages = 2;
  bool decaying_lr = false;  // a rate that changes every step and differs per device
  int32_t microbatches = 0;  // M and N; 0 = the usual shape (see MakeCase)
  int32_t minibatches = 0;
};

// Hyperparameters that train the clusters without diverging; weight decay on SGD (coupled),
// AdamW and Lion (decoupled).
models::OptimizerConfig ConfigFor(OptimizerKind kind) {
  struct Choice {
    OptimizerKind kind;
    double lr, momentum, weight_decay;
  };
  constexpr Choice kChoices[] = {{OptimizerKind::kSgd, 0.05, 0.9, 1e-3},
                                 {OptimizerKind::kAdam, 0.01, 0, 0},
                                 {OptimizerKind::kAdamW, 0.01, 0, 0.05},
                                 {OptimizerKind::kRmsprop, 0.003, 0, 0},
                                 {OptimizerKind::kLion, 0.002, 0, 0.1}};
  models::OptimizerConfig c = models::DefaultOptimizerConfig(kind);
  for (const Choice& choice : kChoices) {
    if (choice.kind != kind) continue;
    c.lr = choice.lr;
    c.momentum = choice.momentum;
    c.weight_decay = choice.weight_decay;
  }
  return c;
}

std::string CaseName(const CaseSpec& s) {
  std::string name = s.method;
  for (const auto& [key, value] : s.params) name += "_" + key + "_" + value;
  name += std::string("_") + std::string(models::OptimizerKindName(s.optimizer)) + "_D" +
          std::to_string(s.stages) + (s.decaying_lr ? "_lrdecay" : "");
  if (s.microbatches > 0)
    name += "_M" + std::to_string(s.microbatches) + "N" + std::to_string(s.minibatches);
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

void PrintTo(const CaseSpec& s, std::ostream* os) { *os << CaseName(s); }

MethodCase MakeCase(const CaseSpec& s) {
  MethodCase c;
  c.method = s.method;
  c.params = s.params;
  c.stages = s.stages;
  // Interleaved needs M mod D = 0; XPipe's closed-form horizons round ties only at T = 2.
  const bool formula = s.method == "xpipe" && s.params.count("horizon");
  c.microbatches = s.method == "interleaved" && s.stages == 3 ? 6 : formula ? 2 : 4;
  c.minibatches = formula ? 4 : 3;
  if (s.microbatches > 0) {
    c.microbatches = s.microbatches;
    c.minibatches = s.minibatches;
  }
  c.optimizer = ConfigFor(s.optimizer);
  const double lr = c.optimizer.lr;
  c.learning_rate = [lr](int32_t, int64_t) { return lr; };
  if (s.decaying_lr) {
    c.learning_rate = [lr](int32_t device, int64_t step) {
      return lr * (1.0 + 0.25 * device) / (1.0 + 0.1 * static_cast<double>(step));
    };
  }
  const int32_t chunks = s.method == "interleaved"
                             ? std::stoi(s.params.count("chunks") ? s.params.at("chunks") : "2")
                         : s.method == "zb-v" || s.method == "wpipe" ? 2
                                                                     : 1;
  // 2S Linear layers: models::Partition gives each of the S stages two, so the weights a stage's
  // backward uses always matter (they carry the gradient to the stage's first layer; with one
  // Linear, stage 0's backward weights would feed only an input gradient nobody needs).
  c.model = ClusterMlp(2 * s.stages * chunks - 1);
  static const auto loader = ClusterLoader();
  c.loader = loader;
  return c;
}

// Every method with its default parameters, then with each non-default parameter.
const std::vector<std::pair<std::string, Params>>& Variants() {
  static const auto* kVariants = new std::vector<std::pair<std::string, Params>>{
      {"gpipe", {}},
      {"1f1b", {}},
      {"interleaved", {{"chunks", "2"}}},
      {"interleaved", {{"chunks", "3"}}},
      {"zb-h1", {}},
      {"zb-h2", {}},
      {"zb-1p", {}},
      {"zb-2p", {}},
      {"zb-2p", {{"memory_limit", "3"}}},
      {"zb-v", {}},
      {"pipedream", {}},
      {"pipedream", {{"vertical_sync", "true"}}},
      {"pipedream-2bw", {}},
      {"spectrain", {}},
      {"spectrain", {{"variant", "v2"}}},
      {"xpipe", {}},
      {"xpipe", {{"horizon", "sequential"}}},
      {"xpipe", {{"horizon", "formula"}, {"rounding", "half_even"}}},
      {"xpipe", {{"horizon", "formula"}, {"rounding", "half_up"}}},
      {"pipemare", {}},
      {"pipemare", {{"correction", "false"}}},
      {"pipemare", {{"decay", "0.25"}}},
      {"pipeoptim", {}},
      {"pipeoptim", {{"horizon", "code"}}},
      {"pipeoptim", {{"delta", "exact"}}},
      {"pipeoptim", {{"delta", "code"}}},
      {"paci", {}},
      {"paci", {{"accumulation", "2"}}},
      {"paci", {{"accumulation", "5"}}},
      {"paci", {{"allowed_lagging", "1"}}},
      {"paci", {{"accumulation", "2"}, {"allowed_lagging", "2"}}},
      {"xgrad", {}},
      {"xgrad", {{"horizon", "3"}}},
      {"xgrad", {{"schedule", "gpipe"}, {"horizon", "2"}}},
      {"xgrad", {{"horizon", "0"}}},
      {"wpipe", {}}};
  return *kVariants;
}

// PipeOptim's code dW exists for SGD, Adam and AdamW only.
bool Defined(const Params& params, OptimizerKind opt) {
  const bool code_dw = params.count("delta") && params.at("delta") == "code";
  return !code_dw || opt == OptimizerKind::kSgd || opt == OptimizerKind::kAdam ||
         opt == OptimizerKind::kAdamW;
}

// Every variant with every optimizer at D = 2, 3, 4.
std::vector<CaseSpec> AllCases() {
  std::vector<CaseSpec> out;
  for (const auto& [method, params] : Variants())
    for (OptimizerKind opt : kOptimizers)
      for (int32_t d = 2; d <= 4; ++d)
        if (Defined(params, opt)) out.push_back({method, params, opt, d});
  return out;
}

// Every variant with a rate that changes every step and differs per device (D = 3).
std::vector<CaseSpec> DecayingRateCases() {
  std::vector<CaseSpec> out;
  for (const auto& [method, params] : Variants())
    for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdamW})
      out.push_back({method, params, opt, 3, true});
  return out;
}

// Shapes where minibatches and the pipeline do not line up, at D = 4 over 5 minibatches: M = 3
// (a minibatch boundary falls inside every warm-up) and M = 5. Interleaved needs M mod D = 0 and
// 2BW M >= D.
std::vector<CaseSpec> OddShapeCases() {
  std::vector<CaseSpec> out;
  for (const auto& [method, params] : Variants())
    for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdam})
      for (int32_t m : {3, 5}) {
        if (method == "interleaved" || (method == "pipedream-2bw" && m < 4)) continue;
        CaseSpec spec{method, params, opt, 4};
        spec.microbatches = m;
        spec.minibatches = 5;
        out.push_back(spec);
      }
  return out;
}

// One stage: every method, plus the two whose horizon is not zero at D = 1 (PipeOptim's code
// horizon s = D - k = 1; XPipe's formula with T = 2, rounded half up, s = round(1/2) = 1), and
// XGrad, whose horizon is its own parameter (the paper's setting: no pipeline at all).
std::vector<CaseSpec> OneStageCases() {
  std::vector<CaseSpec> out;
  for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdamW, OptimizerKind::kLion}) {
    for (const char* method :
         {"gpipe", "1f1b", "interleaved", "zb-h1", "zb-h2", "zb-1p", "zb-2p", "zb-v", "pipedream",
          "pipedream-2bw", "spectrain", "xpipe", "pipemare", "pipeoptim", "paci", "xgrad",
          "wpipe"})
      out.push_back({method, {}, opt, 1});
    out.push_back({"xgrad", {{"horizon", "2"}}, opt, 1});
    out.push_back({"pipeoptim", {{"horizon", "code"}}, opt, 1});
    out.push_back({"xpipe", {{"horizon", "formula"}, {"rounding", "half_up"}}, opt, 1});
  }
  return out;
}

// What the reference recorded for a stage, for failure messages: per microbatch
// "j: F counter/version+horizon, B counter/version+horizon, step".
std::string DescribeStage(const ReferenceRun& run, size_t s) {
  std::ostringstream os;
  for (size_t j = 0; j < run.records[s].size(); ++j) {
    const MicrobatchRecord& r = run.records[s][j];
    os << "\n    " << j << ": F " << r.forward.counter << "/" << r.forward.version << "+"
       << r.forward.horizon << ", B " << r.backward.counter << "/" << r.backward.version << "+"
       << r.backward.horizon << ", step " << r.applied_step << ", scale " << r.loss_scale;
  }
  return os.str();
}

// Bit-for-bit equality per stage; on a difference, how many weights differ, by how much, and the
// reference's version record of that stage.
void ExpectBitIdentical(const Weights& executor, const ReferenceRun& reference) {
  ASSERT_EQ(executor.size(), reference.weights.size());
  for (size_t s = 0; s < executor.size(); ++s) {
    const std::vector<float>& e = executor[s];
    const std::vector<float>& r = reference.weights[s];
    ASSERT_EQ(e.size(), r.size()) << "stage " << s;
    int64_t differ = 0, first = -1;
    double worst = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      if (std::bit_cast<uint32_t>(e[i]) == std::bit_cast<uint32_t>(r[i])) continue;
      if (differ++ == 0) first = static_cast<int64_t>(i);
      worst = std::max(worst, std::abs(static_cast<double>(e[i]) - r[i]));
    }
    EXPECT_EQ(differ, 0) << "stage " << s << ": " << differ << " of " << e.size()
                         << " weights differ, the first at " << first << ", at most by " << worst
                         << "; the reference's versions:" << DescribeStage(reference, s);
  }
}

// Every stage's weights moved away from the initial ones (the case really trained).
void ExpectTrained(const MethodCase& c, const Weights& w) {
  auto stages = models::Partition(*c.model, static_cast<int32_t>(w.size()));
  ASSERT_TRUE(stages.ok());
  const Weights init = StageSlices(*stages, c.model->Init(c.init_seed));
  for (size_t s = 0; s < w.size(); ++s) EXPECT_NE(w[s], init[s]) << "stage " << s;
}

class ExecutorMatchesReference : public ::testing::TestWithParam<CaseSpec> {};

TEST_P(ExecutorMatchesReference, FinalWeightsBitForBit) {
  const MethodCase c = MakeCase(GetParam());
  auto reference = RunReference(c);
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  auto executor = RunExecutor(c);
  ASSERT_TRUE(executor.ok()) << executor.status().message();
  ExpectBitIdentical(*executor, *reference);
  ExpectTrained(c, reference->weights);
}

std::string NameOf(const ::testing::TestParamInfo<CaseSpec>& info) { return CaseName(info.param); }

INSTANTIATE_TEST_SUITE_P(Methods, ExecutorMatchesReference, ::testing::ValuesIn(AllCases()),
                         NameOf);
INSTANTIATE_TEST_SUITE_P(DecayingRate, ExecutorMatchesReference,
                         ::testing::ValuesIn(DecayingRateCases()), NameOf);
INSTANTIATE_TEST_SUITE_P(OddShapes, ExecutorMatchesReference, ::testing::ValuesIn(OddShapeCases()),
                         NameOf);
INSTANTIATE_TEST_SUITE_P(OneStage, ExecutorMatchesReference, ::testing::ValuesIn(OneStageCases()),
                         NameOf);

// ---------------------------------------------------------------------------------------------
// The reference on its own.

// Plain training without a pipeline: microbatches in order through every stage, the gradients
// of each run of `group` microbatches accumulated (loss scaled by one over the run's length, the
// last run possibly shorter), then one step of every stage with device 0's rate of that step
// (the cases that compare with it have one rate everywhere). With `xgrad_s` > 0 it is XGrad's
// Algorithm 1, written from the paper and not through the reference trainer: each run's
// gradients are taken at W_hat = W - lr·s·dW (Table I's dW, from the optimizer state before the
// step), and the step updates W.
Weights PlainLoop(const MethodCase& c, int32_t num_stages, int32_t group, int32_t xgrad_s = 0) {
  const auto stages = *models::Partition(*c.model, num_stages);
  Weights w = StageSlices(stages, c.model->Init(c.init_seed));
  std::vector<std::unique_ptr<models::Optimizer>> opt;
  for (const auto& v : w)
    opt.push_back(std::move(models::Optimizer::Create(c.optimizer, v.size())).value());
  const int32_t total = c.microbatches * c.minibatches;
  for (int32_t first = 0, step = 0; first < total; first += group, ++step) {
    const int32_t size = std::min(group, total - first);
    const double lr = c.learning_rate(0, step);
    Weights at = w, grad;
    for (size_t s = 0; s < w.size(); ++s) {
      if (xgrad_s > 0) opt[s]->Predict(w[s], lr, xgrad_s, models::DeltaRule::kPaper, at[s]);
      grad.emplace_back(w[s].size(), 0.0f);
    }
    for (int32_t j = first; j < first + size; ++j)
      AccumulateGradients(stages, at, *c.loader, j, c.microbatch_size,
                          1.0f / static_cast<float>(size), grad);
    for (size_t s = 0; s < stages.size(); ++s) opt[s]->Step(w[s], grad[s], lr);
  }
  return w;
}

ReferenceRun Reference(const CaseSpec& spec) {
  auto run = RunReference(MakeCase(spec));
  EXPECT_TRUE(run.ok()) << CaseName(spec) << ": " << run.status().message();
  return run.ok() ? std::move(*run) : ReferenceRun{};
}

TEST(ReferenceTrainer, OneStageWithoutHorizonsIsThePlainLoop) {
  struct Plain {
    std::string method;
    Params params;
    int32_t group;  // gradients per step (M = 4; 2 for XPipe's formula case, which has T = 2)
    int32_t stages = 1;
  };
  const std::vector<Plain> cases = {
      {"gpipe", {}, 4},
      {"1f1b", {}, 4},
      {"interleaved", {{"chunks", "2"}}, 4, 2},
      {"zb-h1", {}, 4},
      {"zb-h2", {}, 4},
      {"zb-1p", {}, 4},
      {"zb-2p", {}, 4},
      {"zb-v", {}, 4, 2},
      {"pipedream", {}, 1},
      {"pipedream", {{"vertical_sync", "true"}}, 1},
      {"pipedream-2bw", {}, 4},
      {"spectrain", {}, 1},
      {"spectrain", {{"variant", "v2"}}, 1},
      {"xpipe", {}, 4},
      {"xpipe", {{"horizon", "formula"}, {"rounding", "half_even"}}, 2},
      {"pipemare", {}, 1},
      {"pipeoptim", {}, 1},
      {"paci", {}, 4},
      {"paci", {{"accumulation", "5"}}, 5}};
  for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdam}) {
    for (const Plain& p : cases) {
      const CaseSpec spec{p.method, p.params, opt, 1};
      const ReferenceRun run = Reference(spec);
      ASSERT_EQ(run.records.size(), static_cast<size_t>(p.stages)) << CaseName(spec);
      for (const auto& stage : run.records)
        for (const MicrobatchRecord& r : stage) {
          EXPECT_EQ(r.forward.horizon, 0) << CaseName(spec);
          EXPECT_EQ(r.backward.horizon, 0) << CaseName(spec);
        }
      EXPECT_EQ(run.weights, PlainLoop(MakeCase(spec), p.stages, p.group)) << CaseName(spec);
    }
  }
}

TEST(ReferenceTrainer, FlushSchedulesAreSequentialAccumulation) {
  for (const auto& [method, params] :
       std::vector<std::pair<std::string, Params>>{{"gpipe", {}},
                                                   {"1f1b", {}},
                                                   {"interleaved", {{"chunks", "2"}}},
                                                   {"interleaved", {{"chunks", "3"}}},
                                                   {"zb-h1", {}},
                                                   {"zb-h2", {}},
                                                   {"zb-1p", {}},
                                                   {"zb-2p", {}},
                                                   {"zb-v", {}}}) {
    for (int32_t d = 2; d <= 4; ++d) {
      const CaseSpec spec{method, params, OptimizerKind::kAdamW, d};
      const MethodCase c = MakeCase(spec);
      const ReferenceRun run = Reference(spec);
      for (const auto& stage : run.records)
        for (size_t j = 0; j < stage.size(); ++j) {
          const int32_t b = static_cast<int32_t>(j) / c.microbatches;  // one version per minibatch
          EXPECT_EQ(stage[j].forward.version, b) << CaseName(spec) << " F" << j;
          EXPECT_EQ(stage[j].backward.version, b) << CaseName(spec) << " B" << j;
          EXPECT_EQ(stage[j].applied_step, b + 1) << CaseName(spec);
          EXPECT_EQ(stage[j].loss_scale, 1.0f / static_cast<float>(c.microbatches));
        }
      EXPECT_EQ(run.weights, PlainLoop(c, static_cast<int32_t>(run.records.size()), c.microbatches))
          << CaseName(spec);
    }
  }
}

// PipeOptim Fig. 1 (D = 4): microbatch 4 (the paper's 5th) runs its forward at versions
// 1, 2, 3, 4 predicted s = 3, 2, 1, 0 ahead (D - k with horizon=code), all aiming at version 4
// with the paper horizon, and its backward at the current version 4 everywhere.
TEST(ReferenceTrainer, PipeOptimVersionsAtDepthFour) {
  const ReferenceRun paper = Reference({"pipeoptim", {}, OptimizerKind::kSgd, 4});
  const ReferenceRun code = Reference({"pipeoptim", {{"horizon", "code"}}, OptimizerKind::kSgd, 4});
  ASSERT_EQ(paper.records.size(), 4u);
  for (int32_t k = 0; k < 4; ++k) {
    const MicrobatchRecord& r = paper.records[k][4];
    EXPECT_EQ(r.forward.version, 1 + k);
    EXPECT_EQ(r.forward.horizon, 3 - k);
    EXPECT_EQ(r.forward.Effective(), 4);
    EXPECT_EQ(r.backward.kind, WeightKind::kCurrent);
    EXPECT_EQ(r.backward.version, 4);
    EXPECT_EQ(code.records[k][4].forward.horizon, 4 - k);
    for (int32_t j = 0; j < 12; ++j)  // warm-up D - 1 - k forwards, one step per backward
      EXPECT_EQ(paper.records[k][j].forward.version, std::max(0, j - (3 - k))) << j;
  }
  EXPECT_EQ(paper.steps, (std::vector<int32_t>{12, 12, 12, 12}));
}

// SpecTrain at D = 4: v1 predicts F by 3, 2, 2, 1 and B by 0, 0, 1, 1; v2 predicts F by
// 3, 2, 1, 0 once and the B reuses those weights.
TEST(ReferenceTrainer, SpecTrainHorizonsAtDepthFour) {
  const ReferenceRun v1 = Reference({"spectrain", {}, OptimizerKind::kSgd, 4});
  const ReferenceRun v2 = Reference({"spectrain", {{"variant", "v2"}}, OptimizerKind::kSgd, 4});
  const int32_t forward[] = {3, 2, 2, 1}, backward[] = {0, 0, 1, 1}, once[] = {3, 2, 1, 0};
  ASSERT_EQ(v1.records.size(), 4u);
  for (int32_t k = 0; k < 4; ++k)
    for (int32_t j = 0; j < 12; ++j) {
      EXPECT_EQ(v1.records[k][j].forward.horizon, forward[k]);
      EXPECT_EQ(v1.records[k][j].backward.horizon, backward[k]);
      EXPECT_EQ(v2.records[k][j].forward.horizon, once[k]);
      EXPECT_EQ(v2.records[k][j].backward.kind, WeightKind::kForwards);
      EXPECT_EQ(v2.records[k][j].backward.version, v2.records[k][j].forward.version);
      EXPECT_EQ(v2.records[k][j].backward.horizon, once[k]);
    }
}

// PipeDream at D = 4: in steady state the gradient stage k applies was computed with weights
// D - 1 - k = 3, 2, 1, 0 steps old; with vertical sync every stage uses stage 0's version.
TEST(ReferenceTrainer, PipeDreamDelaysAtDepthFour) {
  const ReferenceRun stash = Reference({"pipedream", {}, OptimizerKind::kSgd, 4});
  const ReferenceRun vertical =
      Reference({"pipedream", {{"vertical_sync", "true"}}, OptimizerKind::kSgd, 4});
  ASSERT_EQ(stash.records.size(), 4u);
  for (int32_t k = 0; k < 4; ++k)
    for (int32_t j = 3; j < 12; ++j) {
      const MicrobatchRecord& r = stash.records[k][j];
      EXPECT_EQ(r.Delay(), 3 - k) << "stage " << k << " microbatch " << j;
      EXPECT_EQ(r.backward.kind, WeightKind::kForwards);
      EXPECT_EQ(r.backward.version, r.forward.version);
      EXPECT_EQ(vertical.records[k][j].forward.version, j - 3);  // stage 0's version for j
      EXPECT_EQ(vertical.records[k][j].Delay(), 3);
    }
}

// PACI at D = 8 (the PACI paper's code rule, docs/methods.md): the largest forward/backward gap is
// 2, 2, 2, 1, 1, 1, 1, 0 with a = 4 and 1, ..., 1, 0 with a = 8; with a = 4 the share of
// steady-state microbatches whose F and B straddle a step is 1, 1, 1, 1, 0.75, 0.5, 0.25, 0.
TEST(ReferenceTrainer, PaciGapsAtDepthEight) {
  const int32_t gaps4[] = {2, 2, 2, 1, 1, 1, 1, 0}, gaps8[] = {1, 1, 1, 1, 1, 1, 1, 0};
  const double cross4[] = {1, 1, 1, 1, 0.75, 0.5, 0.25, 0};
  const ReferenceRun a4 = Reference({"paci", {{"accumulation", "4"}}, OptimizerKind::kAdamW, 8});
  const ReferenceRun a8 = Reference({"paci", {{"accumulation", "8"}}, OptimizerKind::kAdamW, 8});
  ASSERT_EQ(a4.records.size(), 8u);
  ASSERT_EQ(a8.records.size(), 8u);
  for (int32_t k = 0; k < 8; ++k) {
    int32_t max4 = 0, max8 = 0, crossing = 0;
    for (const MicrobatchRecord& r : a4.records[k]) max4 = std::max(max4, r.Gap());
    for (const MicrobatchRecord& r : a8.records[k]) max8 = std::max(max8, r.Gap());
    for (int32_t j = 8; j < 12; ++j) crossing += a4.records[k][j].Gap() > 0;
    EXPECT_EQ(max4, gaps4[k]) << "stage " << k;
    EXPECT_EQ(max8, gaps8[k]) << "stage " << k;
    EXPECT_DOUBLE_EQ(crossing / 4.0, cross4[k]) << "stage " << k;
  }
  EXPECT_EQ(a4.steps[0], 3);  // 12 microbatches, a step every 4 backwards
}

// XGrad: the executor trains exactly the paper's algorithm, on either flushed order, at every
// depth; every F and its B see the prediction from the version of their minibatch (gap 0, delay
// -s: the weights stand s steps ahead of the step that applies the gradient).
TEST(XGrad, ExecutorTrainsThePapersAlgorithm) {
  for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdamW}) {
    for (const Params& params : {Params{}, Params{{"schedule", "gpipe"}, {"horizon", "2"}}}) {
      for (int32_t d = 1; d <= 3; ++d) {
        const CaseSpec spec{"xgrad", params, opt, d};
        const MethodCase c = MakeCase(spec);
        auto executor = RunExecutor(c);
        ASSERT_TRUE(executor.ok()) << executor.status().message();
        const int32_t s = params.count("horizon") ? std::stoi(params.at("horizon")) : 1;
        EXPECT_EQ(*executor, PlainLoop(c, d, c.microbatches, s)) << CaseName(spec);
        const ReferenceRun run = Reference(spec);
        for (int32_t k = 0; k < d; ++k) {
          for (int32_t j = 0; j < c.microbatches * c.minibatches; ++j) {
            const MicrobatchRecord& r = run.records[k][j];
            EXPECT_EQ(r.forward.kind, WeightKind::kPredicted);
            EXPECT_EQ(r.forward.version, j / c.microbatches);
            EXPECT_EQ(r.forward.horizon, s);
            EXPECT_EQ(r.backward.kind, WeightKind::kForwards);
            EXPECT_EQ(r.Gap(), 0);
            EXPECT_EQ(r.Delay(), -s) << CaseName(spec) << " stage " << k << " microbatch " << j;
          }
        }
      }
    }
  }
}

// WPipe's update rule written out from the paper's two groups, not through the reference
// trainer: minibatch b takes its gradients at the second group's weights after b updates and the
// first group's after max(0, b - 1); then the device's step b updates the second group with
// minibatch b's gradients and the first with minibatch b - 1's (a last step N applies the first
// group's last ones), each at the device's rate of step b.
Weights WPipeLoop(const MethodCase& c) {
  const int32_t d = c.stages, stages = 2 * c.stages;
  const auto parts = *models::Partition(*c.model, stages);
  Weights w = StageSlices(parts, c.model->Init(c.init_seed));
  std::vector<std::unique_ptr<models::Optimizer>> opt;
  for (const auto& v : w)
    opt.push_back(std::move(models::Optimizer::Create(c.optimizer, v.size())).value());
  Weights pending;  // the first group's gradients of the previous minibatch
  for (int32_t b = 0; b <= c.minibatches; ++b) {
    Weights grad;
    for (const auto& v : w) grad.emplace_back(v.size(), 0.0f);
    if (b < c.minibatches) {
      for (int32_t j = b * c.microbatches; j < (b + 1) * c.microbatches; ++j)
        AccumulateGradients(parts, w, *c.loader, j, c.microbatch_size,
                            1.0f / static_cast<float>(c.microbatches), grad);
    }
    for (int32_t s = 0; s < stages; ++s) {
      const double lr = c.learning_rate(s % d, b);
      if (s >= d && b < c.minibatches) opt[s]->Step(w[s], grad[s], lr);
      if (s < d && b > 0) opt[s]->Step(w[s], pending[s], lr);
    }
    pending = std::move(grad);
  }
  return w;
}

TEST(WPipe, ExecutorTrainsTheTwoGroupRule) {
  for (OptimizerKind opt : {OptimizerKind::kSgd, OptimizerKind::kAdamW, OptimizerKind::kLion}) {
    for (int32_t d = 1; d <= 3; ++d) {
      for (bool decaying : {false, true}) {
        const CaseSpec spec{"wpipe", {}, opt, d, decaying};
        const MethodCase c = MakeCase(spec);
        auto executor = RunExecutor(c);
        ASSERT_TRUE(executor.ok()) << executor.status().message();
        EXPECT_EQ(*executor, WPipeLoop(c)) << CaseName(spec);
      }
    }
  }
}

// The reference's own records for WPipe at D = 4 (M = 4, N = 3), in each group's update count:
// the second group (stages 4-7) computes minibatch b at its version b and applies it with its
// update b + 1 (delay 0); the first (stages 0-3) at its version max(0, b - 1), applied by its
// update b + 1 (delay 1 from the second minibatch on, 0 in the first, where no update came yet).
TEST(ReferenceTrainer, WPipeGroupVersions) {
  const ReferenceRun run = Reference({"wpipe", {}, OptimizerKind::kSgd, 4});
  ASSERT_EQ(run.records.size(), 8u);
  for (int32_t s = 0; s < 8; ++s) {
    for (int32_t j = 0; j < 12; ++j) {
      const MicrobatchRecord& r = run.records[s][j];
      const int32_t b = j / 4;
      EXPECT_EQ(r.forward.version, s >= 4 ? b : std::max(0, b - 1)) << s << " " << j;
      EXPECT_EQ(r.backward.version, r.forward.version);
      EXPECT_EQ(r.applied_step, b + 1);
      EXPECT_EQ(r.Delay(), s >= 4 || b == 0 ? 0 : 1) << s << " " << j;
      EXPECT_EQ(r.loss_scale, 0.25f);
    }
  }
  EXPECT_EQ(run.steps, (std::vector<int32_t>{6, 6, 6, 6}));  // three per group
}

// Horizon 0 is its flushed order's plain training; a horizon changes what is trained.
TEST(XGrad, HorizonZeroIsPlainTraining) {
  const MethodCase zero = MakeCase({"xgrad", {{"horizon", "0"}}, OptimizerKind::kSgd, 3});
  const MethodCase one = MakeCase({"xgrad", {}, OptimizerKind::kSgd, 3});
  const MethodCase flush = MakeCase({"1f1b", {}, OptimizerKind::kSgd, 3});
  auto a = RunExecutor(zero), b = RunExecutor(one), base = RunExecutor(flush);
  ASSERT_TRUE(a.ok() && b.ok() && base.ok());
  EXPECT_EQ(*a, *base);
  EXPECT_NE(*b, *base);
}

// XPipe, T = 2, D = 4, minibatch 2 (microbatches 4 and 5), worked out by hand from the
// definition (docs/methods.md, "XPipe's horizon"). round_trip (the default): the target is the
// version at the end of the minibatch's round trip, 2 on stage 0 and 3 on stages 1-3, so the
// bellwether (microbatch 4) predicts s = 2, 2, 2, 1 (the seed's closed form) and microbatch 5
// s = 1, 2, 1, 1; backwards s = 0, 1, 1, 1. sequential (the paper's figure): version 2 on every
// stage, s = 2, 1, 1, 0. The closed forms: 2, 2, 2, 1 forward and 0, 0, 1, 1 (half_even) or
// 1, 1, 1, 1 (half_up) backward.
TEST(ReferenceTrainer, XPipeHorizonsAtDepthFour) {
  const Params even = {{"horizon", "formula"}, {"rounding", "half_even"}};
  const Params up = {{"horizon", "formula"}, {"rounding", "half_up"}};
  auto run = [](Params params) {
    MethodCase c = MakeCase({"xpipe", std::move(params), OptimizerKind::kAdam, 4});
    c.microbatches = 2;
    auto r = RunReference(c);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return std::move(*r);
  };
  const ReferenceRun round_trip = run({});
  const ReferenceRun sequential = run({{"horizon", "sequential"}});
  const ReferenceRun half_even = Reference({"xpipe", even, OptimizerKind::kAdam, 4});
  const ReferenceRun half_up = Reference({"xpipe", up, OptimizerKind::kAdam, 4});
  const int32_t bellwether[] = {2, 2, 2, 1}, second[] = {1, 2, 1, 1}, back[] = {0, 1, 1, 1};
  const int32_t target[] = {2, 3, 3, 3}, figure[] = {2, 1, 1, 0};
  const int32_t forward[] = {2, 2, 2, 1}, back_even[] = {0, 0, 1, 1}, back_up[] = {1, 1, 1, 1};
  for (int32_t k = 0; k < 4; ++k) {
    EXPECT_EQ(round_trip.records[k][4].forward.horizon, bellwether[k]) << "stage " << k;
    EXPECT_EQ(round_trip.records[k][5].forward.horizon, second[k]) << "stage " << k;
    EXPECT_EQ(round_trip.records[k][4].backward.horizon, back[k]) << "stage " << k;
    EXPECT_EQ(round_trip.records[k][5].backward.horizon, back[k]) << "stage " << k;
    EXPECT_EQ(round_trip.records[k][4].forward.Effective(), target[k]) << "stage " << k;
    EXPECT_EQ(sequential.records[k][4].forward.horizon, figure[k]) << "stage " << k;
    EXPECT_EQ(sequential.records[k][4].forward.Effective(), 2);
    EXPECT_EQ(sequential.records[k][4].backward.Effective(), 2);
    for (const MicrobatchRecord& r : round_trip.records[k])  // never a target in the past
      EXPECT_GE(r.forward.horizon, 0);
    EXPECT_EQ(half_even.records[k][4].forward.horizon, forward[k]);
    EXPECT_EQ(half_up.records[k][4].forward.horizon, forward[k]);
    EXPECT_EQ(half_even.records[k][4].backward.horizon, back_even[k]);
    EXPECT_EQ(half_up.records[k][4].backward.horizon, back_up[k]);
  }
}

// 2BW: every microbatch of minibatch b uses version max(0, b - 1) in F and B, one step per
// minibatch, so every gradient is one step stale (delay 1 from the second minibatch on).
TEST(ReferenceTrainer, TwoBufferVersions) {
  const ReferenceRun run = Reference({"pipedream-2bw", {}, OptimizerKind::kSgd, 4});
  ASSERT_EQ(run.records.size(), 4u);
  for (int32_t k = 0; k < 4; ++k)
    for (int32_t j = 0; j < 12; ++j) {
      const MicrobatchRecord& r = run.records[k][j];
      EXPECT_EQ(r.forward.version, std::max(0, j / 4 - 1));
      EXPECT_EQ(r.backward.version, r.forward.version);
      EXPECT_EQ(r.applied_step, j / 4 + 1);
      EXPECT_EQ(r.loss_scale, 0.25f);
      if (j >= 4) {
        EXPECT_EQ(r.Delay(), 1);
      }
    }
}

// PipeMare corrects the backward by the stage's own gap, D - 1 - k = 3, 2, 1, 0 in steady state.
TEST(ReferenceTrainer, PipeMareCorrectionGaps) {
  const ReferenceRun run = Reference({"pipemare", {}, OptimizerKind::kSgd, 4});
  ASSERT_EQ(run.records.size(), 4u);
  for (int32_t k = 0; k < 4; ++k)
    for (int32_t j = 3; j < 12; ++j) {
      const MicrobatchRecord& r = run.records[k][j];
      EXPECT_EQ(r.Gap(), 3 - k);
      EXPECT_EQ(r.backward.horizon, 3 - k);
      EXPECT_EQ(r.backward.kind, k < 3 ? WeightKind::kCorrected : WeightKind::kCurrent);
    }
}

// PACI with a = 5 over 12 microbatches: steps after 5, 10 and the last 2; the losses are scaled
// by 1/5 and by 1/2 for the trailing partial group.
TEST(ReferenceTrainer, PaciTrailingGroupScale) {
  const ReferenceRun run = Reference({"paci", {{"accumulation", "5"}}, OptimizerKind::kSgd, 3});
  ASSERT_EQ(run.records.size(), 3u);
  EXPECT_EQ(run.steps, (std::vector<int32_t>{3, 3, 3}));
  for (int32_t j = 0; j < 12; ++j) {
    EXPECT_EQ(run.records[0][j].loss_scale, j < 10 ? 0.2f : 0.5f) << j;
    EXPECT_EQ(run.records[2][j].applied_step, j / 5 + 1) << j;
  }
}

// What the definitions exclude is refused, with the reason.
TEST(ReferenceTrainer, RefusesWhatTheDefinitionsExclude) {
  const std::vector<std::pair<CaseSpec, std::string>> refused = {
      {{"pipedream-3bw", {}, OptimizerKind::kSgd, 2}, "unknown method"},
      {{"pipedream", {{"vertical", "true"}}, OptimizerKind::kSgd, 2}, "no parameter 'vertical'"},
      {{"spectrain", {{"variant", "v3"}}, OptimizerKind::kSgd, 2}, "variant=v3"},
      {{"pipeoptim", {{"delta", "code"}}, OptimizerKind::kLion, 2}, "code"},
      {{"pipemare", {{"lr_warmup_steps", "10"}}, OptimizerKind::kSgd, 2}, "learning_rate"},
      {{"paci", {{"accumulation", "0"}}, OptimizerKind::kSgd, 2}, "accumulation=0"},
      {{"interleaved", {}, OptimizerKind::kSgd, 3}, "multiple of stages"}};
  for (const auto& [spec, reason] : refused) {
    MethodCase c = MakeCase(spec);
    c.microbatches = 4;  // interleaved at D = 3 needs 6
    auto run = RunReference(c);
    ASSERT_FALSE(run.ok()) << CaseName(spec);
    EXPECT_NE(run.status().message().find(reason), std::string::npos) << run.status().message();
  }
  MethodCase two_buffers = MakeCase({"pipedream-2bw", {}, OptimizerKind::kSgd, 4});
  two_buffers.microbatches = 3;
  EXPECT_FALSE(RunReference(two_buffers).ok());  // 2BW needs M >= D
}

// Each non-default parameter changes what is trained (at D = 3), so no case above repeats
// another under a different name.
TEST(ReferenceTrainer, ParametersChangeTheResult) {
  const std::vector<std::tuple<std::string, OptimizerKind, Params>> changes = {
      {"pipedream", OptimizerKind::kSgd, {{"vertical_sync", "true"}}},
      {"spectrain", OptimizerKind::kSgd, {{"variant", "v2"}}},
      {"xpipe", OptimizerKind::kAdam, {{"horizon", "formula"}}},
      {"pipemare", OptimizerKind::kSgd, {{"correction", "false"}}},
      {"pipemare", OptimizerKind::kSgd, {{"decay", "0.25"}}},
      {"pipeoptim", OptimizerKind::kSgd, {{"horizon", "code"}}},
      {"pipeoptim", OptimizerKind::kAdamW, {{"delta", "exact"}}},
      {"pipeoptim", OptimizerKind::kSgd, {{"delta", "code"}}},
      {"paci", OptimizerKind::kSgd, {{"allowed_lagging", "1"}}},
      {"paci", OptimizerKind::kSgd, {{"accumulation", "2"}}}};
  for (const auto& [method, opt, params] : changes) {
    const CaseSpec plain{method, {}, opt, 3}, changed{method, params, opt, 3};
    EXPECT_NE(Reference(plain).weights, Reference(changed).weights) << CaseName(changed);
  }
}

// At D = 1 the horizon of PipeOptim's code variant and of XPipe's half-up formula is 1: the
// generated program really annotates predictions, the reference really predicts, the executor
// equals it bit for bit, and the result is not the plain optimizer's.
TEST(OneStageHorizons, ExecutorAndReferenceReallyPredict) {
  for (const CaseSpec& spec : std::vector<CaseSpec>{
           {"pipeoptim", {{"horizon", "code"}}, OptimizerKind::kSgd, 1},
           {"pipeoptim", {{"horizon", "code"}}, OptimizerKind::kAdamW, 1},
           {"pipeoptim", {{"horizon", "code"}, {"delta", "exact"}}, OptimizerKind::kLion, 1},
           {"xpipe", {{"horizon", "formula"}, {"rounding", "half_up"}}, OptimizerKind::kAdam, 1},
           {"xpipe", {{"horizon", "formula"}, {"rounding", "half_up"}}, OptimizerKind::kSgd, 1}}) {
    const MethodCase c = MakeCase(spec);
    const bool xpipe = spec.method == "xpipe";  // predicts in B too
    auto program = ir::Generate(
        {c.method, c.stages, c.microbatches, c.minibatches, c.microbatch_size, c.params});
    ASSERT_TRUE(program.ok()) << program.status().message();
    int32_t predicted = 0;
    for (const ir::Action& a : program->devices[0]) {
      if (!ir::UsesWeights(a.kind) || (a.kind != ir::ActionKind::kForward && !xpipe)) continue;
      EXPECT_EQ(a.weights.source, ir::WeightSource::kPredicted) << ir::ActionToken(a, true);
      EXPECT_EQ(a.weights.value, 1) << ir::ActionToken(a, true);
      ++predicted;
    }
    const int32_t total = c.microbatches * c.minibatches;
    EXPECT_EQ(predicted, xpipe ? 2 * total : total) << CaseName(spec);
    const ReferenceRun run = Reference(spec);
    ASSERT_EQ(run.records.size(), 1u);
    for (const MicrobatchRecord& r : run.records[0]) {
      EXPECT_EQ(r.forward.kind, WeightKind::kPredicted);
      EXPECT_EQ(r.forward.horizon, 1);
      EXPECT_EQ(r.backward.horizon, xpipe ? 1 : 0);
    }
    auto executor = RunExecutor(c);
    ASSERT_TRUE(executor.ok()) << executor.status().message();
    ExpectBitIdentical(*executor, run);
    EXPECT_NE(run.weights, PlainLoop(c, 1, xpipe ? c.microbatches : 1)) << CaseName(spec);
  }
}

}  // namespace
}  // namespace pipecast::runtime::testing
