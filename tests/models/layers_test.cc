// Tests for the layers in models/: hand-computed forwards, finite-difference checks of both
// backward passes (double, relative error < 1e-6; float with a looser bound), the causal mask,
// the split-backward semantics with a second weight version, init and FLOP counts.
#include "models/layers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "models/init.h"
#include "tests/models/gradient_check.h"

namespace pipecast::models {
namespace {

using testing::CheckLayerGradients;
using testing::GradientErrors;
using testing::RandomMatrix;
using testing::RandomVector;

constexpr double kTolerance = 1e-6;  // relative, double precision
constexpr double kStep = 1e-5;       // central-difference step in double

template <typename T>
std::vector<T> InitParams(const Layer<T>& layer, uint64_t seed) {
  std::vector<T> params(layer.num_params());
  Rng rng(seed);
  layer.Init(params, rng);
  return params;
}

void ExpectSmall(const GradientErrors& e, double tolerance = kTolerance) {
  EXPECT_LT(e.input, tolerance);
  EXPECT_LT(e.weight, tolerance);
}

TEST(LinearTest, ForwardMatchesHandComputedValues) {
  Linear<double> layer(3, 2);
  // W = [[1, 0, -1], [0.5, 1, 2]], b = [0.1, -0.2] (W row-major [out x in], then b).
  const std::vector<double> params = {1, 0, -1, 0.5, 1, 2, 0.1, -0.2};
  Matrix<double> x(2, 3);
  x << 1, 2, 3, 4, 5, 6;
  const Matrix<double> y = layer.Forward(params, x, nullptr);
  ASSERT_EQ(y.rows(), 2);
  ASSERT_EQ(y.cols(), 2);
  EXPECT_DOUBLE_EQ(y(0, 0), 1 - 3 + 0.1);        // -1.9
  EXPECT_DOUBLE_EQ(y(0, 1), 0.5 + 2 + 6 - 0.2);  // 8.3
  EXPECT_DOUBLE_EQ(y(1, 0), 4 - 6 + 0.1);        // -1.9
  EXPECT_DOUBLE_EQ(y(1, 1), 2 + 5 + 12 - 0.2);   // 18.8
}

TEST(LinearTest, GradientsMatchFiniteDifferences) {
  Linear<double> layer(5, 4);
  ExpectSmall(CheckLayerGradients<double>(layer, InitParams(layer, 1),
                                          RandomMatrix<double>(3, 5, 2), 3, kStep));
}

TEST(LinearTest, BackwardInputUsesGivenWeightsAndBackwardWeightTheForwardInput) {
  Linear<double> layer(3, 2);
  const std::vector<double> params1 = InitParams(layer, 1);
  const std::vector<double> params2 = InitParams(layer, 2);
  const Matrix<double> x = RandomMatrix<double>(4, 3, 3);
  const Matrix<double> dy = RandomMatrix<double>(4, 2, 4);
  Saved<double> saved;
  layer.Forward(params1, x, &saved);
  const Matrix<double> dx = layer.BackwardInput(params2, dy, &saved);
  const Eigen::Map<const Matrix<double>> w2(params2.data(), 2, 3);
  EXPECT_TRUE(dx.isApprox(dy * w2, 1e-14)) << dx << "\nvs\n" << dy * w2;
  std::vector<double> grad(layer.num_params(), 1.0);  // accumulates onto what is there
  layer.BackwardWeight(saved, grad);
  const Matrix<double> dw = dy.transpose() * x;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(grad[i * 3 + j], 1.0 + dw(i, j), 1e-14);
    EXPECT_NEAR(grad[6 + i], 1.0 + dy.col(i).sum(), 1e-14);
  }
}

TEST(LinearTest, InitIsTorchUniformAndDeterministic) {
  Linear<double> layer(16, 8);
  const std::vector<double> a = InitParams(layer, 7);
  EXPECT_EQ(a, InitParams(layer, 7));
  EXPECT_NE(a, InitParams(layer, 8));
  const double bound = 1.0 / 4.0;
  for (double v : a) {
    EXPECT_GE(v, -bound);
    EXPECT_LT(v, bound);
  }
  // The float layer gets the double values rounded.
  Linear<float> float_layer(16, 8);
  const std::vector<float> f = InitParams(float_layer, 7);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(f[i], static_cast<float>(a[i]));
}

TEST(LinearTest, ForwardFlops) {
  EXPECT_EQ(Linear<float>(784, 256).ForwardFlops(32), 2.0 * 784 * 256 * 32);
}

TEST(ReluTest, ForwardAndGradients) {
  Relu<double> layer(4);
  Matrix<double> x(1, 4);
  x << -1, 0.5, 0, 2;
  const Matrix<double> y = layer.Forward({}, x, nullptr);
  EXPECT_EQ(y(0, 0), 0);
  EXPECT_EQ(y(0, 1), 0.5);
  EXPECT_EQ(y(0, 3), 2);
  ExpectSmall(CheckLayerGradients<double>(layer, {}, RandomMatrix<double>(3, 4, 5), 6, kStep));
}

TEST(GeluTest, TanhApproximationValues) {
  Gelu<double> layer(3);
  Matrix<double> x(1, 3);
  x << 1.0, -0.5, 2.0;
  const Matrix<double> y = layer.Forward({}, x, nullptr);
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), evaluated independently.
  EXPECT_NEAR(y(0, 0), 0.8411919906082768, 1e-15);
  EXPECT_NEAR(y(0, 1), -0.15428599017485606, 1e-15);
  EXPECT_NEAR(y(0, 2), 1.954597694087775, 1e-15);
}

TEST(GeluTest, GradientsMatchFiniteDifferences) {
  Gelu<double> layer(6);
  ExpectSmall(
      CheckLayerGradients<double>(layer, {}, RandomMatrix<double>(4, 6, 7, -3, 3), 8, kStep));
}

TEST(LayerNormTest, NormalisesEachRow) {
  LayerNorm<double> layer(5);
  const std::vector<double> params = InitParams(layer, 1);  // gamma 1, beta 0
  const Matrix<double> x = RandomMatrix<double>(3, 5, 9, -4, 10);
  const Matrix<double> y = layer.Forward(params, x, nullptr);
  for (int r = 0; r < 3; ++r) {
    EXPECT_NEAR(y.row(r).mean(), 0, 1e-12);
    const double var = y.row(r).squaredNorm() / 5;
    const double x_var = (x.row(r).array() - x.row(r).mean()).square().mean();
    EXPECT_NEAR(var, x_var / (x_var + kLayerNormEps), 1e-12);
  }
}

TEST(LayerNormTest, GradientsMatchFiniteDifferences) {
  LayerNorm<double> layer(6);
  // Random gamma and beta, not the identity init, so that dgamma and the gamma in dx matter.
  ExpectSmall(CheckLayerGradients<double>(layer, RandomVector<double>(12, 10),
                                          RandomMatrix<double>(4, 6, 11, -2, 3), 12, kStep));
}

TEST(LayerNormTest, BackwardInputUsesGivenScale) {
  // xhat does not depend on gamma or beta, so after a forward with params1, BackwardInput with
  // params2 must give what a forward and backward with params2 give.
  LayerNorm<double> layer(5);
  const std::vector<double> params1 = RandomVector<double>(10, 40);
  const std::vector<double> params2 = RandomVector<double>(10, 41);
  const Matrix<double> x = RandomMatrix<double>(3, 5, 42);
  const Matrix<double> dy = RandomMatrix<double>(3, 5, 43);
  Saved<double> mixed, plain;
  layer.Forward(params1, x, &mixed);
  layer.Forward(params2, x, &plain);
  EXPECT_EQ(layer.BackwardInput(params2, dy, &mixed), layer.BackwardInput(params2, dy, &plain));
  EXPECT_NE(layer.BackwardInput(params1, dy, &mixed), layer.BackwardInput(params2, dy, &plain));
}

TEST(EmbeddingTest, ForwardAddsTokenAndPositionRows) {
  Embedding<double> layer(/*vocab=*/4, /*sequence=*/2, /*hidden=*/3);
  const std::vector<double> params = InitParams(layer, 3);
  const Eigen::Map<const Matrix<double>> tokens(params.data(), 4, 3);
  const Eigen::Map<const Matrix<double>> positions(params.data() + 12, 2, 3);
  Matrix<double> ids(4, 1);
  ids << 3, 0, 1, 3;  // two samples of two tokens
  const Matrix<double> y = layer.Forward(params, ids, nullptr);
  EXPECT_EQ(y.row(0), tokens.row(3) + positions.row(0));
  EXPECT_EQ(y.row(1), tokens.row(0) + positions.row(1));
  EXPECT_EQ(y.row(2), tokens.row(1) + positions.row(0));
  EXPECT_EQ(y.row(3), tokens.row(3) + positions.row(1));
}

TEST(EmbeddingTest, WeightGradientsMatchFiniteDifferencesAndInputGradientIsZero) {
  Embedding<double> layer(5, 3, 4);
  Matrix<double> ids(6, 1);
  ids << 4, 0, 4, 2, 2, 1;  // repeated tokens accumulate
  ExpectSmall(CheckLayerGradients<double>(layer, RandomVector<double>(layer.num_params(), 13), ids,
                                          14, kStep, /*check_input=*/false));
  Saved<double> saved;
  const std::vector<double> params = InitParams(layer, 1);
  layer.Forward(params, ids, &saved);
  const Matrix<double> dx = layer.BackwardInput(params, RandomMatrix<double>(6, 4, 15), &saved);
  EXPECT_EQ(dx.rows(), 6);
  EXPECT_EQ(dx.cols(), 1);
  EXPECT_TRUE(dx.isZero(0));
}

TEST(AttentionTest, GradientsMatchFiniteDifferences) {
  CausalSelfAttention<double> layer(/*hidden=*/8, /*heads=*/2, /*sequence=*/4);
  // Two samples; weights a little larger than the init so that attention is not uniform.
  ExpectSmall(CheckLayerGradients<double>(layer, RandomVector<double>(layer.num_params(), 16),
                                          RandomMatrix<double>(8, 8, 17), 18, kStep));
}

TEST(AttentionTest, BackwardInputUsesGivenProjectionWeights) {
  // Activations come from the forward; dx is linear in the given Wo (dctx = dy Wo') and ignores
  // the given biases. Doubling Wo doubles dx and the Wqkv gradient but not the Wo gradient.
  CausalSelfAttention<double> layer(4, 2, 3);
  const int64_t h = 4;
  const std::vector<double> params1 = RandomVector<double>(layer.num_params(), 44);
  std::vector<double> params2 = params1;
  const int64_t b_qkv = 3 * h * h, w_o = b_qkv + 3 * h, b_o = w_o + h * h;  // slice offsets
  for (int64_t i = w_o; i < b_o; ++i) params2[i] *= 2;
  for (int64_t i = b_qkv; i < w_o; ++i) params2[i] += 1;  // biases are not used by the backward
  const Matrix<double> x = RandomMatrix<double>(6, 4, 45);
  const Matrix<double> dy = RandomMatrix<double>(6, 4, 46);
  Saved<double> saved1, saved2;
  layer.Forward(params1, x, &saved1);
  layer.Forward(params1, x, &saved2);
  const Matrix<double> dx1 = layer.BackwardInput(params1, dy, &saved1);
  const Matrix<double> dx2 = layer.BackwardInput(params2, dy, &saved2);
  EXPECT_TRUE(dx2.isApprox(2 * dx1, 1e-13));
  std::vector<double> grad1(params1.size(), 0.0), grad2(params1.size(), 0.0);
  layer.BackwardWeight(saved1, grad1);
  layer.BackwardWeight(saved2, grad2);
  for (int64_t i = 0; i < w_o; ++i) EXPECT_NEAR(grad2[i], 2 * grad1[i], 1e-13);
  for (int64_t i = w_o; i < layer.num_params(); ++i) EXPECT_EQ(grad2[i], grad1[i]);
}

TEST(AttentionTest, OutputAtPositionTIgnoresLaterPositions) {
  CausalSelfAttention<double> layer(6, 3, 5);
  const std::vector<double> params = RandomVector<double>(layer.num_params(), 19);
  const Matrix<double> x = RandomMatrix<double>(10, 6, 20);  // samples: rows 0-4, 5-9
  const Matrix<double> y = layer.Forward(params, x, nullptr);
  for (int t = 0; t < 5; ++t) {
    Matrix<double> changed = x;
    changed.block(t + 1, 0, 4 - t, 6) = RandomMatrix<double>(4 - t, 6, 21 + t);  // sample 0
    const Matrix<double> y2 = layer.Forward(params, changed, nullptr);
    EXPECT_EQ(y2.topRows(t + 1), y.topRows(t + 1)) << "position " << t;
    EXPECT_EQ(y2.bottomRows(5), y.bottomRows(5)) << "sample 1 changed with sample 0";
    if (t < 4) {
      EXPECT_NE(y2.row(t + 1), y.row(t + 1));
    }
  }
}

TEST(AttentionTest, FirstPositionAttendsOnlyToItself) {
  // With one visible position the softmax is exactly 1, so y_0 = v_0 Wo^T + bo.
  CausalSelfAttention<double> layer(4, 2, 3);
  const std::vector<double> params = RandomVector<double>(layer.num_params(), 22);
  const Matrix<double> x = RandomMatrix<double>(3, 4, 23);
  const Eigen::Map<const Matrix<double>> w_qkv(params.data(), 12, 4);
  const Eigen::Map<const Eigen::RowVectorXd> b_qkv(params.data() + 48, 12);
  const Eigen::Map<const Matrix<double>> w_o(params.data() + 60, 4, 4);
  const Eigen::Map<const Eigen::RowVectorXd> b_o(params.data() + 76, 4);
  const Eigen::RowVectorXd v0 = (x.row(0) * w_qkv.transpose() + b_qkv).tail(4);
  const Eigen::RowVectorXd expected = v0 * w_o.transpose() + b_o;
  EXPECT_TRUE(layer.Forward(params, x, nullptr).row(0).isApprox(expected, 1e-14));
}

TEST(AttentionTest, StableWithLargeScores) {
  CausalSelfAttention<float> layer(4, 1, 3);
  std::vector<float> params(layer.num_params());
  Rng rng(1);
  layer.Init(params, rng);
  const Matrix<float> x = RandomMatrix<float>(3, 4, 24, -1e4, 1e4);  // scores ~ 1e7
  const Matrix<float> y = layer.Forward(params, x, nullptr);
  EXPECT_TRUE(y.allFinite());
}

TEST(AttentionTest, ForwardFlops) {
  // rows (8 h^2 + 4 s h), as in the simulator's block count 24 b s h^2 + 4 b s^2 h (MLP excluded).
  EXPECT_EQ(CausalSelfAttention<float>(64, 4, 16).ForwardFlops(32),
            32.0 * (8.0 * 64 * 64 + 4.0 * 16 * 64));
}

std::vector<LayerPtr<double>> MlpBlock(int64_t h) {
  return {std::make_shared<LayerNorm<double>>(h), std::make_shared<Linear<double>>(h, 2 * h),
          std::make_shared<Gelu<double>>(2 * h), std::make_shared<Linear<double>>(2 * h, h)};
}

TEST(ResidualTest, GradientsMatchFiniteDifferences) {
  Residual<double> layer(4, MlpBlock(4));
  EXPECT_EQ(layer.num_params(), 8 + (4 * 8 + 8) + (8 * 4 + 4));
  ExpectSmall(CheckLayerGradients<double>(layer, RandomVector<double>(layer.num_params(), 25),
                                          RandomMatrix<double>(3, 4, 26), 27, kStep));
}

TEST(ResidualTest, ChildrenReadConsecutiveSlices) {
  // x + Linear2(Linear1(x)): the children's slices are [0, 6) and [6, 12).
  Residual<double> layer(
      2, {std::make_shared<Linear<double>>(2, 2), std::make_shared<Linear<double>>(2, 2)});
  const std::vector<double> params = RandomVector<double>(12, 28);
  const Matrix<double> x = RandomMatrix<double>(3, 2, 29);
  const Linear<double> linear(2, 2);
  const std::span<const double> all(params);
  const Matrix<double> expected =
      x + linear.Forward(all.subspan(6, 6), linear.Forward(all.subspan(0, 6), x, nullptr), nullptr);
  EXPECT_EQ(layer.Forward(params, x, nullptr), expected);
}

TEST(SequentialTest, GradientsMatchFiniteDifferences) {
  Sequential<double> layer({std::make_shared<Linear<double>>(3, 8),
                            std::make_shared<CausalSelfAttention<double>>(8, 4, 2),
                            std::make_shared<Relu<double>>(8),
                            std::make_shared<Linear<double>>(8, 2)});
  ExpectSmall(CheckLayerGradients<double>(layer, RandomVector<double>(layer.num_params(), 30),
                                          RandomMatrix<double>(4, 3, 31), 32, kStep));
}

TEST(FloatTest, GradientsMatchFiniteDifferencesLoosely) {
  // float: step 1e-2 and 1e-2 relative error (rounding is ~1e-7 / 1e-2 per difference).
  Sequential<float> layer(
      {std::make_shared<LayerNorm<float>>(6), std::make_shared<CausalSelfAttention<float>>(6, 2, 3),
       std::make_shared<Linear<float>>(6, 4), std::make_shared<Gelu<float>>(4)});
  ExpectSmall(CheckLayerGradients<float>(layer, RandomVector<float>(layer.num_params(), 33),
                                         RandomMatrix<float>(6, 6, 34), 35, 1e-2),
              1e-2);
}

}  // namespace
}  // namespace pipecast::models
