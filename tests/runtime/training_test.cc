// The executor with real models (models/): equivalences that define each method's semantics.
//   - GPipe and 1F1B equal sequential training that accumulates the same microbatch gradients
//     in the same order, bit for bit, and one large batch within a tight tolerance;
//   - PipeDream with stashing equals a sequential delayed-gradient reference (stage k's update
//     for input j uses the weights it had after j - (D - 1 - k) updates), bit for bit;
//   - 2BW equals W(b+1) = W(b) - lr * grad(W(b-1)) per minibatch, bit for bit;
//   - the measured version gaps respect PACI's bound, 2BW's two versions, PipeDream's D - k.
// Direct executor runs go through executor_adapter.h; method_reference_test.cc holds every
// method to the sequential reference trainer.
#include <gtest/gtest.h>

#include <filesystem>

#include "models/data.h"
#include "models/loss.h"
#include "models/model.h"
#include "runtime/executor_adapter.h"
#include "runtime/method_case.h"
#include "runtime/trainer.h"

namespace pipecast::runtime {
namespace {

constexpr int32_t kStages = 3;
constexpr int32_t kMicrobatch = 8;
constexpr double kLr = 0.05;

// The clusters and the MLP of method_case.h, cut into kStages stages; SGD with momentum.
struct Fixture {
  std::shared_ptr<const models::Loader> loader = testing::ClusterLoader();
  std::shared_ptr<const models::Model<float>> model = testing::ClusterMlp();
  std::vector<models::Stage<float>> stages = *models::Partition(*model, kStages);
  std::vector<float> init = model->Init(3);

  std::vector<std::vector<float>> StageWeights(const std::vector<float>& flat) const {
    return testing::StageSlices(stages, flat);
  }
  static models::OptimizerConfig SgdConfig() {
    models::OptimizerConfig c;
    c.kind = models::OptimizerKind::kSgd;
    c.momentum = 0.9;
    return c;
  }
  std::unique_ptr<models::Optimizer> Sgd(size_t n) const {
    return std::move(models::Optimizer::Create(SgdConfig(), n)).value();
  }
  // The executor's final weights for `method` with m microbatches per minibatch, n minibatches.
  Result<std::vector<std::vector<float>>> Run(const std::string& method, int32_t m,
                                              int32_t n) const {
    testing::MethodCase c;
    c.method = method;
    c.stages = kStages;
    c.microbatches = m;
    c.minibatches = n;
    c.microbatch_size = kMicrobatch;
    c.optimizer = SgdConfig();
    c.learning_rate = [](int32_t, int64_t) { return kLr; };
    c.model = model;
    c.init_seed = 3;
    c.loader = loader;
    return testing::RunExecutor(c);
  }
  // Gradient of every stage for microbatch j with per-stage weights `w` (scale applied to the
  // loss gradient), accumulated into `grads` in the executor's order.
  void Accumulate(int32_t j, const std::vector<std::vector<float>>& w, float scale,
                  std::vector<std::vector<float>>& grads) const {
    testing::AccumulateGradients(stages, w, *loader, j, kMicrobatch, scale, grads);
  }
};

std::vector<std::vector<float>> Zeros(const std::vector<std::vector<float>>& like) {
  std::vector<std::vector<float>> z;
  for (const auto& v : like) z.emplace_back(v.size(), 0.0f);
  return z;
}

TEST(Training, FlushSchedulesEqualSequentialAccumulationBitForBit) {
  Fixture f;
  const int32_t m = 4, n = 3;
  // Reference: per minibatch, microbatches in order, then one step per stage.
  auto w = f.StageWeights(f.init);
  std::vector<std::unique_ptr<models::Optimizer>> opt;
  for (const auto& s : f.stages) opt.push_back(f.Sgd(s.num_params()));
  for (int32_t it = 0; it < n; ++it) {
    auto g = Zeros(w);
    for (int32_t j = it * m; j < (it + 1) * m; ++j) f.Accumulate(j, w, 1.0f / m, g);
    for (int32_t s = 0; s < kStages; ++s) opt[s]->Step(w[s], g[s], kLr);
  }
  for (const char* method : {"gpipe", "1f1b", "zb-h1", "zb-h2"}) {
    auto r = f.Run(method, m, n);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(*r, w) << method;
  }
}

TEST(Training, FlushScheduleMatchesOneLargeBatch) {
  Fixture f;
  const int32_t m = 4;
  auto r = f.Run("1f1b", m, 1);
  ASSERT_TRUE(r.ok());
  // One batch of m * kMicrobatch examples: the same examples as the four microbatches.
  auto w = f.StageWeights(f.init);
  models::Batch big;
  big.x.resize(m * kMicrobatch, 12);
  for (int32_t j = 0; j < m; ++j) {
    const models::Batch b = f.loader->Get(j, kMicrobatch);
    big.x.middleRows(j * kMicrobatch, kMicrobatch) = b.x;
    big.labels.insert(big.labels.end(), b.labels.begin(), b.labels.end());
  }
  std::vector<models::StageSaved<float>> saved(kStages);
  models::Matrix<float> x = big.x;
  for (int32_t s = 0; s < kStages; ++s) x = f.stages[s].Forward(w[s], x, &saved[s]);
  models::Matrix<float> dy = models::SoftmaxCrossEntropy<float>(x, big.labels, 1.0).dlogits;
  auto g = Zeros(w);
  for (int32_t s = kStages - 1; s >= 0; --s) {
    dy = f.stages[s].BackwardInput(w[s], dy, &saved[s]);
    f.stages[s].BackwardWeight(saved[s], g[s]);
  }
  for (int32_t s = 0; s < kStages; ++s) {
    auto opt = f.Sgd(w[s].size());
    opt->Step(w[s], g[s], kLr);
    for (size_t i = 0; i < w[s].size(); ++i)
      EXPECT_NEAR((*r)[s][i], w[s][i], 1e-6) << "stage " << s << " param " << i;
  }
}

// PipeDream: stage k's update for input j (one update per input) uses the gradient computed
// with its own version max(0, j - (D - 1 - k)) in both F and B; inputs of stage k come from
// stage k - 1's forward with that stage's version.
TEST(Training, PipeDreamEqualsDelayedGradientReference) {
  Fixture f;
  const int32_t total = 10;
  auto r = f.Run("pipedream", total, 1);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<std::vector<std::vector<float>>> history(kStages);  // versions per stage
  auto w = f.StageWeights(f.init);
  for (int32_t s = 0; s < kStages; ++s) history[s].push_back(w[s]);
  std::vector<std::unique_ptr<models::Optimizer>> opt;
  for (const auto& s : f.stages) opt.push_back(f.Sgd(s.num_params()));
  for (int32_t j = 0; j < total; ++j) {
    std::vector<std::vector<float>> used(kStages);
    for (int32_t s = 0; s < kStages; ++s) used[s] = history[s][std::max(0, j - (kStages - 1 - s))];
    auto g = Zeros(w);
    f.Accumulate(j, used, 1.0f, g);
    for (int32_t s = 0; s < kStages; ++s) {
      opt[s]->Step(w[s], g[s], kLr);
      history[s].push_back(w[s]);
    }
  }
  EXPECT_EQ(*r, w);
}

// 2BW: every microbatch of minibatch b uses version max(0, b - 1); one step per minibatch.
TEST(Training, TwoBufferEqualsOneStepStaleReference) {
  Fixture f;
  const int32_t m = 4, n = 4;
  auto r = f.Run("pipedream-2bw", m, n);
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto w = f.StageWeights(f.init);
  auto previous = w;
  std::vector<std::unique_ptr<models::Optimizer>> opt;
  for (const auto& s : f.stages) opt.push_back(f.Sgd(s.num_params()));
  for (int32_t b = 0; b < n; ++b) {
    const auto& used = b == 0 ? w : previous;  // W(b-1), and W(0) for the first two
    auto g = Zeros(w);
    for (int32_t j = b * m; j < (b + 1) * m; ++j) f.Accumulate(j, used, 1.0f / m, g);
    previous = w;
    for (int32_t s = 0; s < kStages; ++s) opt[s]->Step(w[s], g[s], kLr);
  }
  EXPECT_EQ(*r, w);
}

// An MLP job on the seeded synthetic clusters, with `train` and `test` examples.
ir::Job SyntheticJob(std::vector<int64_t> hidden, int64_t train, int64_t test) {
  ir::Job job;
  job.model.type = "mlp";
  job.model.hidden_sizes = std::move(hidden);
  job.data.dataset = "synthetic";
  job.data.train_examples = train;
  job.data.test_examples = test;
  return job;
}

// The measured version gaps respect each method's bound (from the executor's own trace).
TEST(Training, MeasuredGapsRespectTheBounds) {
  ir::Job job = SyntheticJob({16, 16, 16}, 1024, 128);
  job.optimizer.momentum = 0.9;
  job.optimizer.lr = 0.01;
  job.pipeline = {4, 8, 1, 8};
  job.epochs = 3;
  auto paci = TrainMethod(job, {"paci", {{"accumulation", "2"}}, 0, 0});
  ASSERT_TRUE(paci.ok()) << paci.status().message();
  for (int32_t k = 0; k < 4; ++k)
    EXPECT_LE(paci->versions[k].gap_max, (4 - k - 1 + 2 - 1) / 2) << "stage " << k;
  EXPECT_EQ(paci->versions[0].gap_max, 2);
  auto pd = TrainMethod(job, {"pipedream", {}, 0, 0});
  ASSERT_TRUE(pd.ok());
  for (int32_t k = 0; k < 4; ++k) EXPECT_EQ(pd->versions[k].delay_max, 4 - 1 - k);
  auto bw = TrainMethod(job, {"pipedream-2bw", {}, 0, 0});
  ASSERT_TRUE(bw.ok());
  for (int32_t k = 0; k < 4; ++k) EXPECT_EQ(bw->versions[k].delay_max, 1);
  // Training works: on 10 seeded clusters, well above chance (10%).
  EXPECT_GT(paci->final_accuracy, 0.5);
  EXPECT_GT(pd->final_accuracy, 0.5);
}

// A run interrupted after two evaluations and resumed from its checkpoint ends bit-identical
// to an uninterrupted one; a checkpoint from another run is refused. With replicas (Chimera,
// GEMS, data-parallel copies) every copy is loaded from replica 0's state; AvgPipe's copies (two
// pipelines) each from its own, with its reference weights (a resumed run that lost either
// would end elsewhere).
TEST(Training, ResumeFromCheckpointIsBitIdentical) {
  ir::Job job = SyntheticJob({16, 16}, 512, 64);
  job.name = "resume";
  job.optimizer.name = "adamw";
  job.optimizer.lr = 0.01;
  job.pipeline = {3, 4, 1, 8};
  job.epochs = 2;
  job.evaluations = 4;
  struct Case {
    const char* method;
    int32_t stages, data_parallel;
  };
  for (const auto& [method, stages, dp] :
       {Case{"1f1b", 3, 1}, Case{"pipeoptim", 3, 1}, Case{"paci", 3, 1}, Case{"chimera", 2, 1},
        Case{"gems", 2, 1}, Case{"avgpipe", 2, 1}, Case{"1f1b", 2, 2}, Case{"pipedream", 2, 2}}) {
    job.pipeline.stages = stages;
    job.pipeline.data_parallel = dp;
    const ir::MethodSpec spec{method, {}, 0, 0};
    auto straight = TrainMethod(job, spec);
    ASSERT_TRUE(straight.ok()) << straight.status().message();
    TrainOptions first;
    first.checkpoint =
        (std::filesystem::temp_directory_path() /
         (std::string("pipecast_resume_") + method + std::to_string(dp) + ".safetensors"))
            .string();
    std::filesystem::remove(first.checkpoint);
    first.stop_after = 2;
    auto part = TrainMethod(job, spec, first);
    ASSERT_TRUE(part.ok()) << part.status().message();
    EXPECT_EQ(part->evaluations.size(), 2u);
    TrainOptions second = first;
    second.stop_after = 0;
    second.resume = true;
    auto rest = TrainMethod(job, spec, second);
    ASSERT_TRUE(rest.ok()) << rest.status().message();
    EXPECT_TRUE(rest->resumed);
    EXPECT_EQ(rest->final_weights, straight->final_weights) << method << " x" << dp;
    ASSERT_EQ(rest->evaluations.size(), 4u);
    EXPECT_EQ(rest->evaluations.back().test_loss, straight->evaluations.back().test_loss);
    // Another method cannot continue this checkpoint.
    auto other = TrainMethod(job, {"gpipe", {}, 0, 0}, second);
    ASSERT_FALSE(other.ok());
    EXPECT_NE(other.status().message().find("from another run"), std::string::npos);
  }
}

// AvgPipe with period 2 averages every second step of the whole run, however the run is cut into
// evaluation segments: the run in one segment or in three ends bit-identical, since an evaluation only reads the weights. A minibatch is
// both pipelines' 2 x 4 x 8 samples, so the 512 examples make 8 minibatches: segments of 3, 3
// and 2, the second starting after 3 steps (where a per-segment count would average after
// global steps 5 and 8 instead of 4, 6 and 8).
TEST(Training, AvgPipeAveragesOnOneCadenceAcrossEvaluations) {
  ir::Job job = SyntheticJob({16, 16}, 512, 64);
  job.name = "cadence";
  job.optimizer.name = "adamw";
  job.optimizer.lr = 0.01;
  job.pipeline = {2, 4, 1, 8};
  job.epochs = 1;
  const ir::MethodSpec spec{"avgpipe", {{"period", "2"}}, 0, 0};
  job.evaluations = 1;
  auto whole = TrainMethod(job, spec);
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  job.evaluations = 3;
  auto cut = TrainMethod(job, spec);
  ASSERT_TRUE(cut.ok()) << cut.status().message();
  ASSERT_EQ(cut->evaluations.size(), 3u);
  EXPECT_EQ(cut->evaluations.back().minibatches, 8);
  EXPECT_EQ(cut->final_weights, whole->final_weights);
}

// Replicas through the whole trainer: two data-parallel copies of 1F1B train like one 1F1B
// pipeline on twice the microbatches (the same data per minibatch; only the order of the
// gradient sum differs, so the test loss agrees to float rounding, here within 1e-4 relative,
// while a wrong loss scale would change the step size by 2x). Their checkpoints are tested with
// the others' above.
TEST(Training, ReplicasTrainAndResume) {
  ir::Job job = SyntheticJob({16, 16, 16}, 512, 64);
  job.name = "replicas";
  job.optimizer.momentum = 0.9;
  job.optimizer.lr = 0.05;
  job.pipeline = {2, 4, 1, 8, 2};
  job.epochs = 2;
  job.evaluations = 4;
  ir::Job whole = job;
  whole.pipeline = {2, 8, 1, 8, 1};
  auto copies = TrainMethod(job, {"1f1b", {}, 0, 0});
  ASSERT_TRUE(copies.ok()) << copies.status().message();
  auto one = TrainMethod(whole, {"1f1b", {}, 0, 0});
  ASSERT_TRUE(one.ok()) << one.status().message();
  ASSERT_EQ(copies->evaluations.size(), one->evaluations.size());
  EXPECT_EQ(copies->versions.size(), 4u);  // per device: two copies of two stages
  for (size_t e = 0; e < one->evaluations.size(); ++e) {
    EXPECT_EQ(copies->evaluations[e].minibatches, one->evaluations[e].minibatches);
    EXPECT_NEAR(copies->evaluations[e].test_loss, one->evaluations[e].test_loss,
                1e-4 * one->evaluations[e].test_loss)
        << "evaluation " << e;
  }
  EXPECT_GT(copies->final_accuracy, 0.25);  // 16 steps on 10 classes: well above chance
}

}  // namespace
}  // namespace pipecast::runtime
