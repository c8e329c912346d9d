// Tests for models/loss.h: a hand-worked example, the gradient scale, stability with large
// logits, finite differences and the accuracy count.
#include "models/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tests/models/gradient_check.h"

namespace pipecast::models {
namespace {

TEST(SoftmaxCrossEntropyTest, HandWorkedExample) {
  Matrix<double> logits(2, 3);
  logits << 1, 2, 3,  //
      1, 1, 1;
  const std::vector<int32_t> labels = {2, 0};
  const LossResult<double> r = SoftmaxCrossEntropy(logits, labels);
  // Row 0: softmax = (e^-2, e^-1, 1) / (1 + e^-1 + e^-2) = (0.0900306, 0.2447285, 0.6652410);
  //        loss = -log(0.6652410) = 0.4076060.
  // Row 1: softmax = (1/3, 1/3, 1/3); loss = log 3 = 1.0986123. Mean: 0.7531091.
  EXPECT_NEAR(r.loss, 0.7531091265562453, 1e-15);
  // dlogits = (softmax - onehot) / 2 rows.
  Matrix<double> expected(2, 3);
  expected << 0.04501528658519022, 0.12236423552739879, -0.16737952211258916,  //
      -0.33333333333333337, 0.1666666666666666, 0.1666666666666666;
  EXPECT_TRUE(r.dlogits.isApprox(expected, 1e-14)) << r.dlogits;
}

TEST(SoftmaxCrossEntropyTest, ScaleMultipliesOnlyTheGradient) {
  const Matrix<float> logits = testing::RandomMatrix<float>(4, 5, 1, -3, 3);
  const std::vector<int32_t> labels = {0, 4, 2, 2};
  const LossResult<float> plain = SoftmaxCrossEntropy(logits, labels);
  const LossResult<float> scaled = SoftmaxCrossEntropy(logits, labels, 0.25);
  EXPECT_EQ(plain.loss, scaled.loss);
  EXPECT_TRUE(scaled.dlogits.isApprox(plain.dlogits * 0.25f, 1e-6f));
  // Every row of the unscaled gradient sums to 0 (softmax sums to 1, minus the one-hot).
  EXPECT_LT(plain.dlogits.rowwise().sum().cwiseAbs().maxCoeff(), 1e-7);
}

TEST(SoftmaxCrossEntropyTest, StableWithLargeLogits) {
  Matrix<float> logits(2, 3);
  logits << 1e4f, 0, -1e4f,  //
      1e4f, 1e4f, -1e4f;
  const std::vector<int32_t> labels = {1, 0};
  const LossResult<float> r = SoftmaxCrossEntropy(logits, labels);
  // Row 0: loss 1e4 (exp(-1e4) underflows to 0 after the shift); row 1: log 2.
  EXPECT_NEAR(r.loss, (1e4 + std::log(2.0)) / 2, 1e-9);
  EXPECT_TRUE(r.dlogits.allFinite());
  EXPECT_NEAR(r.dlogits(0, 0), 0.5, 1e-7);
  EXPECT_NEAR(r.dlogits(0, 1), -0.5, 1e-7);
  EXPECT_NEAR(r.dlogits(1, 0), -0.25, 1e-7);
  EXPECT_NEAR(r.dlogits(1, 1), 0.25, 1e-7);
  EXPECT_EQ(r.dlogits(1, 2), 0);
}

TEST(SoftmaxCrossEntropyTest, GradientMatchesFiniteDifferences) {
  Matrix<double> logits = testing::RandomMatrix<double>(3, 4, 2, -2, 2);
  const std::vector<int32_t> labels = {3, 0, 1};
  const LossResult<double> r = SoftmaxCrossEntropy(logits, labels, 0.5);
  const double step = 1e-6;
  std::vector<double> numeric, analytic;
  for (int64_t i = 0; i < logits.size(); ++i) {
    const double original = logits.data()[i];
    logits.data()[i] = original + step;
    const double up = SoftmaxCrossEntropy(logits, labels).loss;
    logits.data()[i] = original - step;
    const double down = SoftmaxCrossEntropy(logits, labels).loss;
    logits.data()[i] = original;
    numeric.push_back(0.5 * (up - down) / (2 * step));
    analytic.push_back(r.dlogits.data()[i]);
  }
  EXPECT_LT(testing::RelativeError(numeric, analytic), 1e-8);
}

TEST(CountCorrectTest, ArgmaxWithFirstIndexOnTies) {
  Matrix<double> logits(4, 3);
  logits << 0, 5, 1,  //
      2, 2, 0,        // tie: index 0 wins
      -1, -3, -2,     //
      0, 0, 7;
  const std::vector<int32_t> labels = {1, 1, 0, 0};
  EXPECT_EQ(CountCorrect(logits, labels), 2);  // rows 0 and 2
}

}  // namespace
}  // namespace pipecast::models
