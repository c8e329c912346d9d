// Tests for models/model.h and models/stage.h: the builders and their errors, deterministic
// init, an end-to-end gradient check of a tiny GPT with the loss, and partitioning into stages
// (slices tile the buffer, stages chained equal the whole model bit for bit, balance).
#include "models/model.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "models/balance.h"
#include "models/loss.h"
#include "tests/models/gradient_check.h"

namespace pipecast::models {
namespace {

using testing::RandomMatrix;

// 7 layers: embedding, 2 x (attention block, MLP block), final LayerNorm, head.
constexpr GptConfig kTinyGpt = {.vocab = 7, .sequence = 3, .hidden = 4, .heads = 2, .layers = 2};

template <typename T>
Matrix<T> TokenIds(int64_t rows, int64_t vocab, uint64_t seed) {
  Matrix<T> ids(rows, 1);
  std::mt19937_64 rng(seed);
  for (int64_t r = 0; r < rows; ++r) ids(r, 0) = static_cast<T>(rng() % vocab);
  return ids;
}

std::string ErrorOf(const std::vector<LayerSpec>& specs) {
  Result<Model<double>> model = Model<double>::FromSpecs(specs);
  EXPECT_FALSE(model.ok());
  if (model.ok()) return "";
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  return model.status().message();
}

TEST(ModelTest, MlpParameterCountAndOffsets) {
  Result<Model<float>> mlp = MakeMlp<float>(784, {256, 128}, 10);
  ASSERT_TRUE(mlp.ok()) << mlp.status().message();
  EXPECT_EQ(mlp->num_params(), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  ASSERT_EQ(mlp->num_layers(), 5);
  EXPECT_EQ(mlp->layers()[1]->name(), "relu");
  EXPECT_EQ(mlp->param_offset(1), 784 * 256 + 256);
  EXPECT_EQ(mlp->param_offset(2), 784 * 256 + 256);
  EXPECT_EQ(mlp->param_offset(5), mlp->num_params());
  EXPECT_EQ(mlp->input_width(), 784);
  EXPECT_EQ(mlp->output_width(), 10);
}

TEST(ModelTest, InitIsDeterministicAndFloatIsTheRoundedDouble) {
  Result<Model<double>> d = MakeGpt<double>(kTinyGpt);
  Result<Model<float>> f = MakeGpt<float>(kTinyGpt);
  ASSERT_TRUE(d.ok() && f.ok());
  const std::vector<double> a = d->Init(5);
  EXPECT_EQ(a, d->Init(5));
  EXPECT_NE(a, d->Init(6));
  const std::vector<float> b = f->Init(5);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(b[i], static_cast<float>(a[i])) << i;
}

TEST(ModelTest, GptStructureAndParameterCount) {
  Result<Model<float>> gpt = MakeGpt<float>(kTinyGpt);
  ASSERT_TRUE(gpt.ok()) << gpt.status().message();
  std::vector<std::string> names;
  for (const LayerPtr<float>& layer : gpt->layers()) names.push_back(layer->name());
  EXPECT_EQ(names, (std::vector<std::string>{"embedding", "residual", "residual", "residual",
                                             "residual", "layernorm", "linear"}));
  const int64_t v = 7, s = 3, h = 4;
  const int64_t attention_block = 2 * h + 4 * h * h + 4 * h;
  const int64_t mlp_block = 2 * h + (4 * h * h + 4 * h) + (4 * h * h + h);
  EXPECT_EQ(gpt->num_params(), (v + s) * h + 2 * (attention_block + mlp_block) + 2 * h + h * v + v);
  EXPECT_EQ(gpt->input_width(), 1);
  EXPECT_EQ(gpt->output_width(), v);
}

TEST(ModelTest, SpecErrorsNameTheLayerAndTheProblem) {
  EXPECT_EQ(ErrorOf({{"linear", {4, 3}, {}}, {"conv", {3}, {}}}),
            "layer 1: unknown kind 'conv' (known: linear, relu, gelu, layernorm, embedding, "
            "attention, residual, sequential)");
  EXPECT_EQ(ErrorOf({{"linear", {4, 3}, {}}, {"relu", {3}, {}}, {"linear", {4, 2}, {}}}),
            "layer 2 (linear): takes 4 columns but layer 1 (relu) gives 3");
  EXPECT_EQ(ErrorOf({{"residual", {6}, {{"layernorm", {6}, {}}, {"attention", {6, 4, 3}, {}}}}}),
            "layer 0.1 (attention): hidden 6 is not divisible by heads 4");
  EXPECT_EQ(ErrorOf({{"residual", {4}, {{"linear", {4, 5}, {}}}}}),
            "layer 0 (residual): has width 4 but its children map 4 to 5 columns");
  EXPECT_EQ(ErrorOf({{"linear", {4}, {}}}), "layer 0 (linear): takes 2 dims {in, out}, got 1");
  EXPECT_EQ(ErrorOf({{"relu", {0}, {}}}), "layer 0 (relu): size 0 is out of range [1, 16777216]");
  EXPECT_EQ(ErrorOf({{"residual", {4}, {}}}), "layer 0 (residual): needs at least one child layer");
  EXPECT_EQ(ErrorOf({}), "a model needs at least one layer");
  EXPECT_EQ(MakeGpt<float>({.vocab = 10, .sequence = 4, .hidden = 10, .heads = 3, .layers = 1})
                .status()
                .message(),
            "layer 1.1 (attention): hidden 10 is not divisible by heads 3");
  EXPECT_FALSE(MakeMlp<float>(784, {-5}, 10).ok());
}

TEST(ModelTest, TinyGptLossGradientMatchesFiniteDifferences) {
  Result<Model<double>> gpt =
      MakeGpt<double>({.vocab = 5, .sequence = 3, .hidden = 4, .heads = 2, .layers = 1});
  ASSERT_TRUE(gpt.ok());
  std::vector<double> params = gpt->Init(1);
  const Matrix<double> ids = TokenIds<double>(6, 5, 2);  // two samples
  const std::vector<int32_t> labels = {1, 4, 0, 0, 2, 3};
  const double scale = 0.5;  // as for one of two microbatches
  StageSaved<double> saved;
  const LossResult<double> loss =
      SoftmaxCrossEntropy(gpt->Forward(params, ids, &saved), labels, scale);
  gpt->BackwardInput(params, loss.dlogits, &saved);
  std::vector<double> grad(params.size(), 0.0);
  gpt->BackwardWeight(saved, grad);

  const auto loss_at = [&]() {
    return SoftmaxCrossEntropy(gpt->Forward(params, ids, nullptr), labels).loss;
  };
  const double step = 1e-5;
  std::vector<double> numeric, analytic;
  for (size_t i = 0; i < params.size(); ++i) {
    const double original = params[i];
    params[i] = original + step;
    const double up = loss_at();
    params[i] = original - step;
    const double down = loss_at();
    params[i] = original;
    numeric.push_back(scale * (up - down) / (2 * step));
    analytic.push_back(grad[i]);
  }
  EXPECT_LT(testing::RelativeError(numeric, analytic), 1e-6);
}

TEST(PartitionTest, StageSlicesTileTheModelBuffer) {
  Result<Model<float>> gpt = MakeGpt<float>(kTinyGpt);
  ASSERT_TRUE(gpt.ok());
  for (int32_t d = 1; d <= gpt->num_layers(); ++d) {
    Result<std::vector<Stage<float>>> stages = Partition(*gpt, d);
    ASSERT_TRUE(stages.ok()) << stages.status().message();
    ASSERT_EQ(static_cast<int32_t>(stages->size()), d);
    int64_t offset = 0;
    int32_t layer = 0;
    for (const Stage<float>& stage : *stages) {
      EXPECT_EQ(stage.param_offset(), offset);
      EXPECT_EQ(stage.first_layer(), layer);
      EXPECT_GT(stage.num_layers(), 0);
      offset += stage.num_params();
      layer += stage.num_layers();
    }
    EXPECT_EQ(offset, gpt->num_params());
    EXPECT_EQ(layer, gpt->num_layers());
  }
}

// Runs the stages one after the other (forward, then both backward passes in reverse) and checks
// that output, input gradient and weight gradient equal the whole model's, bit for bit.
template <typename T>
void ExpectStagesEqualWholeModel(const Model<T>& model, const Matrix<T>& x, uint64_t seed) {
  const std::vector<T> params = model.Init(seed);
  StageSaved<T> whole_saved;
  const Matrix<T> y = model.Forward(params, x, &whole_saved);
  const Matrix<T> dy = RandomMatrix<T>(y.rows(), y.cols(), seed + 1);
  const Matrix<T> dx = model.BackwardInput(params, dy, &whole_saved);
  std::vector<T> grad(params.size(), T(0));
  model.BackwardWeight(whole_saved, grad);

  for (int32_t d = 1; d <= model.num_layers(); ++d) {
    Result<std::vector<Stage<T>>> stages = Partition(model, d);
    ASSERT_TRUE(stages.ok()) << stages.status().message();
    std::vector<StageSaved<T>> saved(stages->size());
    Matrix<T> h = x;
    for (size_t k = 0; k < stages->size(); ++k) {
      const Stage<T>& stage = (*stages)[k];
      h = stage.Forward(stage.Slice(std::span<const T>(params)), h, &saved[k]);
    }
    EXPECT_EQ(h, y) << d << " stages";
    Matrix<T> g = dy;
    std::vector<T> stage_grad(params.size(), T(0));
    for (size_t k = stages->size(); k-- > 0;) {
      const Stage<T>& stage = (*stages)[k];
      g = stage.BackwardInput(stage.Slice(std::span<const T>(params)), g, &saved[k]);
      stage.BackwardWeight(saved[k], stage.Slice(std::span<T>(stage_grad)));
    }
    EXPECT_EQ(g, dx) << d << " stages";
    EXPECT_EQ(stage_grad, grad) << d << " stages";
  }
}

TEST(PartitionTest, ChainedStagesEqualTheWholeModelBitForBit) {
  Result<Model<float>> gpt = MakeGpt<float>(kTinyGpt);
  ASSERT_TRUE(gpt.ok());
  ExpectStagesEqualWholeModel(*gpt, TokenIds<float>(6, kTinyGpt.vocab, 3), 4);
  Result<Model<float>> mlp = MakeMlp<float>(12, {16, 8}, 3);
  ASSERT_TRUE(mlp.ok());
  ExpectStagesEqualWholeModel(*mlp, RandomMatrix<float>(5, 12, 5), 6);
}

TEST(PartitionTest, BalancedByForwardFlops) {
  Result<Model<float>> mlp = MakeMlp<float>(784, {256, 128}, 10);
  ASSERT_TRUE(mlp.ok());
  // Costs per row: 401408, 256, 65536, 128, 2560: the first Linear is a stage of its own.
  Result<std::vector<Stage<float>>> two = Partition(*mlp, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ((*two)[0].num_layers(), 1);
  EXPECT_EQ((*two)[1].first_layer(), 1);
  EXPECT_EQ((*two)[0].ForwardFlops(1), 2.0 * 784 * 256);

  Result<Model<float>> gpt =
      MakeGpt<float>({.vocab = 50, .sequence = 8, .hidden = 16, .heads = 2, .layers = 4});
  ASSERT_TRUE(gpt.ok());
  std::vector<double> costs;
  for (const LayerPtr<float>& layer : gpt->layers()) costs.push_back(layer->ForwardFlops(1));
  Result<std::vector<Stage<float>>> stages = Partition(*gpt, 3);
  ASSERT_TRUE(stages.ok());
  std::vector<int32_t> starts;
  for (const Stage<float>& stage : *stages) starts.push_back(stage.first_layer());
  EXPECT_EQ(starts, *MinMaxPartition(costs, 3));
}

TEST(PartitionTest, Errors) {
  Result<Model<float>> gpt = MakeGpt<float>(kTinyGpt);
  ASSERT_TRUE(gpt.ok());
  EXPECT_EQ(Partition(*gpt, 8).status().message(),
            "model has 7 layers but 8 stages were asked for");
  EXPECT_EQ(Partition(*gpt, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(PartitionAt(*gpt, std::vector<int32_t>{1, 3}).ok());
  EXPECT_FALSE(PartitionAt(*gpt, std::vector<int32_t>{0, 3, 3}).ok());
  EXPECT_FALSE(PartitionAt(*gpt, std::vector<int32_t>{0, 7}).ok());
  Result<std::vector<Stage<float>>> at = PartitionAt(*gpt, std::vector<int32_t>{0, 1, 5});
  ASSERT_TRUE(at.ok());
  EXPECT_EQ((*at)[2].num_layers(), 2);
  EXPECT_EQ((*at)[2].param_offset(), gpt->param_offset(5));
}

}  // namespace
}  // namespace pipecast::models
