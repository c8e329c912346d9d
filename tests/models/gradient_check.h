// Test helpers for models/: random matrices and parameters from fixed seeds, and central
// finite-difference checks of BackwardInput and BackwardWeight against a random linear
// functional L(y) = sum(R .* y) of a layer's (or stage's) output, so that dL/dy = R.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "models/layer.h"
#include "models/stage.h"

namespace pipecast::models::testing {

// Values uniform in [lo, hi), from a fixed-seed engine (test data, not model init).
template <typename T>
Matrix<T> RandomMatrix(int64_t rows, int64_t cols, uint64_t seed, double lo = -1, double hi = 1) {
  std::mt19937_64 rng(seed);
  Matrix<T> m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) {
    m.data()[i] = static_cast<T>(lo + (hi - lo) * static_cast<double>(rng() >> 11) * 0x1.0p-53);
  }
  return m;
}

template <typename T>
std::vector<T> RandomVector(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  Matrix<T> m = RandomMatrix<T>(1, n, seed, lo, hi);
  return std::vector<T>(m.data(), m.data() + n);
}

// ||a - b|| / max(||a||, ||b||), or 0 when both are 0.
inline double RelativeError(std::span<const double> a, std::span<const double> b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const double scale = std::sqrt(std::max(na, nb));
  return scale == 0 ? 0 : std::sqrt(diff) / scale;
}

struct GradientErrors {
  double input = 0;   // relative error of dx (0 when the input is not checked)
  double weight = 0;  // relative error of the weight gradient (0 when there are no params)
};

// A forward pass without saving, for the finite differences.
template <typename T>
using ForwardFn = std::function<Matrix<T>(std::span<const T> params, const Matrix<T>& x)>;

// Central differences of L(params, x) = sum(R .* forward(params, x)), compared with the given
// analytic dx and weight gradient. `check_input` false skips dx (token ids).
template <typename T>
GradientErrors CompareWithFiniteDifferences(const ForwardFn<T>& forward, std::vector<T> params,
                                            Matrix<T> x, const Matrix<T>& r, const Matrix<T>& dx,
                                            const std::vector<T>& grad, double step,
                                            bool check_input) {
  const auto functional = [&]() {
    const Matrix<T> y = forward(params, x);
    double sum = 0;
    for (int64_t i = 0; i < y.size(); ++i) {
      sum += static_cast<double>(r.data()[i]) * static_cast<double>(y.data()[i]);
    }
    return sum;
  };
  const auto central = [&](T* value) {
    const T original = *value;
    *value = static_cast<T>(original + step);
    const double up = functional();
    *value = static_cast<T>(original - step);
    const double down = functional();
    *value = original;
    return (up - down) / (2 * step);
  };
  GradientErrors errors;
  if (!params.empty()) {
    std::vector<double> numeric, analytic;
    for (size_t i = 0; i < params.size(); ++i) {
      numeric.push_back(central(&params[i]));
      analytic.push_back(static_cast<double>(grad[i]));
    }
    errors.weight = RelativeError(numeric, analytic);
  }
  if (check_input) {
    std::vector<double> numeric, analytic;
    for (int64_t i = 0; i < x.size(); ++i) {
      numeric.push_back(central(&x.data()[i]));
      analytic.push_back(static_cast<double>(dx.data()[i]));
    }
    errors.input = RelativeError(numeric, analytic);
  }
  return errors;
}

// Runs Forward, BackwardInput(dy = R) and BackwardWeight (into a zeroed buffer) of `layer`,
// then compares with finite differences.
template <typename T>
GradientErrors CheckLayerGradients(const Layer<T>& layer, const std::vector<T>& params,
                                   const Matrix<T>& x, uint64_t seed, double step,
                                   bool check_input = true) {
  Saved<T> saved;
  const Matrix<T> y = layer.Forward(params, x, &saved);
  const Matrix<T> r = RandomMatrix<T>(y.rows(), y.cols(), seed);
  const Matrix<T> dx = layer.BackwardInput(params, r, &saved);
  EXPECT_EQ(dx.rows(), x.rows());
  std::vector<T> grad(params.size(), T(0));
  layer.BackwardWeight(saved, grad);
  const ForwardFn<T> forward = [&](std::span<const T> p, const Matrix<T>& in) {
    return layer.Forward(p, in, nullptr);
  };
  return CompareWithFiniteDifferences<T>(forward, params, x, r, dx, grad, step, check_input);
}

// The same for a stage (a chain of layers).
template <typename T>
GradientErrors CheckStageGradients(const Stage<T>& stage, const std::vector<T>& params,
                                   const Matrix<T>& x, uint64_t seed, double step,
                                   bool check_input = true) {
  StageSaved<T> saved;
  const Matrix<T> y = stage.Forward(params, x, &saved);
  const Matrix<T> r = RandomMatrix<T>(y.rows(), y.cols(), seed);
  const Matrix<T> dx = stage.BackwardInput(params, r, &saved);
  std::vector<T> grad(params.size(), T(0));
  stage.BackwardWeight(saved, grad);
  const ForwardFn<T> forward = [&](std::span<const T> p, const Matrix<T>& in) {
    return stage.Forward(p, in, nullptr);
  };
  return CompareWithFiniteDifferences<T>(forward, params, x, r, dx, grad, step, check_input);
}

}  // namespace pipecast::models::testing
