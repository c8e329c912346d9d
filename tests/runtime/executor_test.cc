// Executor semantics with a tiny linear model written here (independent of models/): equivalence
// with sequential training, version traces equal to the simulator's accounting, determinism
// under random message delays, deadlines and NaN reports.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/generators.h"
#include "common/lower.h"
#include "common/versions.h"
#include "runtime/executor.h"
#include "runtime/inproc_transport.h"

namespace pipecast::runtime {
namespace {

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
  Tensor BackwardInput(int32_t mb, std::span<const float> w, const Tensor& dy) override {
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

std::vector<std::vector<float>> InitialWeights(int32_t stages) {
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

ir::Program Lowered(const std::string& method, int32_t d, int32_t m, int32_t n,
                    std::map<std::string, std::string> params = {}) {
  auto p = ir::Generate({method, d, m, n, 1, std::move(params)});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return ir::InsertCommunication(*p);
}

Result<ExecutionResult> RunProgram(const ir::Program& p, Feed& feed, InProcessTransport* transport = nullptr,
                            ExecutorConfig config = {}) {
  Setup setup(p.num_stages);
  InProcessTransport local(p.num_devices);
  return Execute(p, setup.stages, setup.optimizers, InitialWeights(p.num_stages), feed,
                 transport ? *transport : local, config);
}

// Sequential training: per minibatch, every microbatch forward through all stages and backward,
// accumulating each stage's gradient in microbatch order, then one step per stage.
std::vector<std::vector<float>> Sequential(int32_t stages, int32_t m, int32_t n, Feed& feed) {
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
        dy = setup.stages[s]->BackwardInput(j, w[s], dy);
        setup.stages[s]->BackwardWeight(j, grad[s]);
      }
    }
    for (int32_t s = 0; s < stages; ++s)
      setup.optimizers[s]->Step(w[s], grad[s], config.learning_rate(0, it));
  }
  return w;
}

TEST(Executor, FlushSchedulesEqualSequentialTrainingBitForBit) {
  for (const char* method : {"gpipe", "1f1b", "zb-h1", "zb-h2"}) {
    Feed feed;
    const ir::Program p = Lowered(method, 4, 6, 3);
    auto r = RunProgram(p, feed);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->weights, Sequential(4, 6, 3, feed)) << method;
  }
  // Interleaved: 2 chunks on 2 devices is the same 4-stage model.
  Feed feed;
  auto r = RunProgram(Lowered("interleaved", 2, 4, 2, {{"chunks", "2"}}), feed);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->weights, Sequential(4, 4, 2, feed));
}

// The executor's version trace equals the static accounting the simulator reports.
TEST(Executor, VersionTraceEqualsSimulatorAccounting) {
  for (const ir::MethodInfo& info : ir::Methods()) {
    for (auto params : std::vector<std::map<std::string, std::string>>{{}}) {
      const int32_t m = info.name == "interleaved" ? 4 : 5;
      const ir::Program p = Lowered(info.name, 4, m, 3, params);
      Feed feed;
      auto r = RunProgram(p, feed);
      ASSERT_TRUE(r.ok()) << info.name << ": " << r.status().message();
      const ir::VersionTable t = ir::ComputeVersions(p);
      for (const auto& device : r->versions) {
        for (const VersionUse& u : device) {
          const ir::VersionRecord& rec = t.At(u.stage, u.microbatch);
          if (u.kind == ir::ActionKind::kForward) {
            EXPECT_EQ(u.counter, rec.f_counter) << info.name;
            EXPECT_EQ(u.version, rec.f_version) << info.name << " F" << u.microbatch;
            EXPECT_EQ(u.horizon, rec.f_horizon) << info.name;
          } else {
            EXPECT_EQ(u.counter, rec.b_counter) << info.name;
            EXPECT_EQ(u.version, rec.b_version) << info.name << " B" << u.microbatch;
            EXPECT_EQ(u.horizon, rec.b_horizon) << info.name;
          }
        }
      }
    }
  }
  for (auto params : std::vector<std::map<std::string, std::string>>{
           {{"vertical_sync", "true"}}}) {
    const ir::Program p = Lowered("pipedream", 4, 4, 3, params);
    Feed feed;
    auto r = RunProgram(p, feed);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const ir::VersionTable t = ir::ComputeVersions(p);
    for (const auto& device : r->versions)
      for (const VersionUse& u : device)
        EXPECT_EQ(u.version, u.kind == ir::ActionKind::kForward
                                 ? t.At(u.stage, u.microbatch).f_version
                                 : t.At(u.stage, u.microbatch).b_version);
  }
}

// Random delays in message delivery change the timing, never the numbers.
TEST(Executor, DeterministicUnderRandomDeliveryDelays) {
  for (const char* method : {"1f1b", "pipedream", "pipeoptim", "paci", "pipedream-2bw"}) {
    const ir::Program p = Lowered(method, 4, 4, 3);
    Feed feed;
    auto reference = RunProgram(p, feed);
    ASSERT_TRUE(reference.ok());
    InProcessTransport slow(p.num_devices);
    std::mutex mu;
    std::mt19937 rng(99);
    slow.SetDeliveryDelay([&](const MessageKey&) {
      int us;
      {
        std::lock_guard<std::mutex> lock(mu);
        us = std::uniform_int_distribution<int>(0, 300)(rng);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(us));
    });
    auto delayed = RunProgram(p, feed, &slow);
    ASSERT_TRUE(delayed.ok());
    EXPECT_EQ(delayed->weights, reference->weights) << method;
    EXPECT_EQ(delayed->losses, reference->losses) << method;
  }
}

// With one stage every method is the plain optimizer: identical weights to sequential training
// with the method's step cadence.
TEST(Executor, OneStageReducesToThePlainOptimizer) {
  Feed feed;
  for (const char* method : {"gpipe", "1f1b", "pipedream", "pipedream-2bw", "pipeoptim",
                             "pipemare", "spectrain"}) {
    const bool per_minibatch = std::string(method) == "gpipe" || std::string(method) == "1f1b" ||
                               std::string(method) == "pipedream-2bw";
    const ir::Program p = Lowered(method, 1, 3, 2);
    auto r = RunProgram(p, feed);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const auto expected = per_minibatch ? Sequential(1, 3, 2, feed) : Sequential(1, 1, 6, feed);
    EXPECT_EQ(r->weights, expected) << method;
  }
}

TEST(Executor, MissingMessageHitsTheDeadlineAndNamesEveryDevice) {
  ir::Program p = Lowered("1f1b", 2, 2, 1);
  // Drop device 0's second activation send.
  auto& d0 = p.devices[0];
  for (size_t i = 0, seen = 0; i < d0.size(); ++i) {
    if (d0[i].kind == ir::ActionKind::kSendActivation && seen++ == 1) {
      d0.erase(d0.begin() + static_cast<long>(i));
      break;
    }
  }
  Feed feed;
  ExecutorConfig config;
  config.deadline = std::chrono::milliseconds(200);
  auto r = RunProgram(p, feed, nullptr, config);
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  // Both devices report what they wait for (whichever deadline expires first stops the other).
  EXPECT_NE(msg.find("waited 200 ms for the"), std::string::npos) << msg;
  EXPECT_NE(msg.find("device 1: at action 4 (1RA1), after 1SG0: device 1 "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("the activation of microbatch 1 for stage 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("device 0: at action 5 (0RG1), after 0B0: device 0 "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("the gradient of microbatch 1 for stage 0"), std::string::npos) << msg;
}

TEST(Executor, NanLossStopsTheRunNamingMethodStageAndStep) {
  Feed feed;
  feed.nan_at = 2;
  auto r = RunProgram(Lowered("pipedream", 3, 2, 2), feed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("NaN or Inf in the loss of microbatch 2: pipedream, "
                                      "device 2, stage 2"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace pipecast::runtime
