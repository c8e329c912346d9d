// A tiny linear model for executor tests, independent of models/: each stage is y = x W with a
// 4 x 4 matrix, SGD with momentum (prediction W - lr * s * buf), a deterministic data feed with a
// squared-error loss, and sequential training as the reference.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "runtime/executor.h"

namespace pipecast::runtime::testing_toy {

constexpr int64_t kRows = 3, kWidth = 4;

// y = x W with W a kWidth x kWidth matrix (flat, row-major); keeps x per microbatch.
class LinearBackend : public StageBackend {
 public:
  int64_t num_params() const override { return kWidth * kWidth; }
  Tensor Forward(int32_t mb, std::span<const float> w, const Tensor& x) override {
    Tensor y(x.rows, kWidth);
    for (int64_t r = 0; r < x.rows; ++r)
      for (int64_t j = 0; j < kWidth; ++j) {
        float acc = 0;
        for (int64_t k = 0; k < kWidth; ++k) acc += x.data[r * kWidth + k] * w[k * kWidth + j];
        y.data[r * kWidth + j] = acc;
      }
    std::lock_guard<std::mutex> lock(mu_);
    saved_x_[mb] = x;
    return y;
  }
  Tensor BackwardInput(int32_t mb, std::span<const float> w, const Tensor& dy,
                       bool /*need_dx*/) override {
    Tensor dx(dy.rows, kWidth);
    for (int64_t r = 0; r < dy.rows; ++r)
      for (int64_t k = 0; k < kWidth; ++k) {
        float acc = 0;
        for (int64_t j = 0; j < kWidth; ++j) acc += dy.data[r * kWidth + j] * w[k * kWidth + j];
        dx.data[r * kWidth + k] = acc;
      }
    std::lock_guard<std::mutex> lock(mu_);
    saved_dy_[mb] = dy;
    return dx;
  }
  void BackwardWeight(int32_t mb, std::span<float> grad) override {
    std::lock_guard<std::mutex> lock(mu_);
    const Tensor& x = saved_x_.at(mb);
    const Tensor& dy = saved_dy_.at(mb);
    for (int64_t k = 0; k < kWidth; ++k)
      for (int64_t j = 0; j < kWidth; ++j) {
        float acc = 0;
        for (int64_t r = 0; r < x.rows; ++r) acc += x.data[r * kWidth + k] * dy.data[r * kWidth + j];
        grad[k * kWidth + j] += acc;
      }
    saved_x_.erase(mb);
    saved_dy_.erase(mb);
  }

 private:
  std::mutex mu_;
  std::map<int32_t, Tensor> saved_x_, saved_dy_;
};

// SGD with momentum; prediction W - lr * s * buf (PipeOptim's SGDM rule).
class MomentumSgd : public StageOptimizer {
 public:
  explicit MomentumSgd(size_t n) : buf_(n, 0.0f) {}
  void Step(std::span<float> w, std::span<const float> g, double lr) override {
    for (size_t i = 0; i < w.size(); ++i) {
      buf_[i] = first_ ? g[i] : 0.9f * buf_[i] + g[i];
      w[i] -= static_cast<float>(lr) * buf_[i];
    }
    first_ = false;
  }
  void Predict(std::span<const float> w, double lr, int32_t s,
               std::span<float> out) const override {
    for (size_t i = 0; i < w.size(); ++i)
      out[i] = w[i] - static_cast<float>(lr) * static_cast<float>(s) * buf_[i];
  }

 private:
  std::vector<float> buf_;
  bool first_ = true;
};

// Deterministic inputs; the loss is 0.5 * mean over rows of |y - target|^2.
class Feed : public DataFeed {
 public:
  Feed() = default;
  Tensor Input(int32_t mb) override {
    Tensor x(kRows, kWidth);
    std::mt19937 rng(1000 + mb);
    std::uniform_real_distribution<float> u(-1, 1);
    for (float& v : x.data) v = u(rng);
    return x;
  }
  double Loss(int32_t mb, const Tensor& y, float scale, Tensor* dy) override {
    if (nan_at == mb) return std::nan("");
    *dy = Tensor(y.rows, y.cols);
    double loss = 0;
    for (size_t i = 0; i < y.data.size(); ++i) {
      const float target = static_cast<float>((i + mb) % 3) - 1.0f;
      const float e = y.data[i] - target;
      loss += 0.5 * e * e / y.rows;
      dy->data[i] = scale * e / static_cast<float>(y.rows);
    }
    return loss;
  }
  int32_t nan_at = -1;
};

inline std::vector<std::vector<float>> InitialWeights(int32_t stages) {
  std::vector<std::vector<float>> w(stages, std::vector<float>(kWidth * kWidth));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  for (auto& s : w)
    for (float& v : s) v = u(rng);
  return w;
}

struct Setup {
  std::vector<std::unique_ptr<StageBackend>> stages;
  std::vector<std::unique_ptr<StageOptimizer>> optimizers;
  explicit Setup(int32_t n) {
    for (int32_t s = 0; s < n; ++s) {
      stages.push_back(std::make_unique<LinearBackend>());
      optimizers.push_back(std::make_unique<MomentumSgd>(kWidth * kWidth));
    }
  }
};


// Sequential training: per minibatch, every microbatch forward through all stages and backward,
// accumulating each stage's gradient in microbatch order, then one step per stage.
inline std::vector<std::vector<float>> Sequential(int32_t stages, int32_t m, int32_t n,
                                                  Feed& feed) {
  Setup setup(stages);
  auto w = InitialWeights(stages);
  ExecutorConfig config;
  for (int32_t it = 0; it < n; ++it) {
    std::vector<std::vector<float>> grad(stages, std::vector<float>(kWidth * kWidth, 0.0f));
    for (int32_t j = it * m; j < (it + 1) * m; ++j) {
      Tensor x = feed.Input(j);
      for (int32_t s = 0; s < stages; ++s) x = setup.stages[s]->Forward(j, w[s], x);
      Tensor dy;
      feed.Loss(j, x, 1.0f / static_cast<float>(m), &dy);
      for (int32_t s = stages - 1; s >= 0; --s) {
        dy = setup.stages[s]->BackwardInput(j, w[s], dy, true);
        setup.stages[s]->BackwardWeight(j, grad[s]);
      }
    }
    for (int32_t s = 0; s < stages; ++s)
      setup.optimizers[s]->Step(w[s], grad[s], config.learning_rate(0, it));
  }
  return w;
}

}  // namespace pipecast::runtime::testing_toy
