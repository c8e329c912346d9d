// One check run by both the host test of the fused optimizer ops and the GPU test of
// CudaOptimizer: several steps of a fused implementation against models::Optimizer, from the
// same weights and gradients, comparing bit for bit (NaN-tolerant) the weights, every state
// tensor, PipeMare's velocity, the fused prediction (against the CPU's Predict and against the
// implementation's own separate Predict), and every rule's prediction for several (lr, s)
// before the first step and after each one.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "models/optimizer.h"
#include "runtime/cuda/cuda_optimizer.h"
#include "runtime/cuda/optim_reference.h"

namespace pipecast::runtime::cuda::testing {

// The implementation under test, seen through host vectors (it copies them in and out of its
// own buffers, which start `offset` floats into their allocations).
class FusedOptimizer {
 public:
  struct Extras {
    std::vector<float>* velocity = nullptr;  // updated in place when not null
    float gamma = 0;
    std::vector<float>* predicted = nullptr;  // written when not null
    double predict_lr = 0;
    int predict_s = 0;
    models::DeltaRule rule = models::DeltaRule::kPaper;
  };
  virtual ~FusedOptimizer() = default;
  // CudaOptimizer's extras for these, with the implementation's own buffers.
  static StepExtras ToStepExtras(const Extras& x, float* velocity, float* predicted) {
    StepExtras extras;
    if (x.velocity != nullptr) {
      extras.velocity = velocity;
      extras.gamma = x.gamma;
    }
    if (x.predicted != nullptr) {
      extras.predicted = predicted;
      extras.predict_lr = x.predict_lr;
      extras.predict_s = x.predict_s;
      extras.rule = x.rule;
    }
    return extras;
  }
  virtual void Step(std::vector<float>& params, const std::vector<float>& grad, double lr,
                    const Extras& extras) = 0;
  virtual std::vector<float> Predict(const std::vector<float>& params, double lr, int s,
                                     models::DeltaRule rule) = 0;
  virtual std::vector<models::StateTensor> StateTensors() = 0;
  virtual int64_t steps() const = 0;
};

// The same names in the same order, each with the same values.
inline void ExpectSameTensors(const std::vector<models::StateTensor>& want,
                              const std::vector<models::StateTensor>& got) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(got[k].first, want[k].first);
    EXPECT_TRUE(SameFloats(want[k].second, got[k].second)) << want[k].first;
  }
}

inline void ExpectSameState(const models::Optimizer& cpu, FusedOptimizer& fused) {
  ExpectSameTensors(cpu.StateTensors(), fused.StateTensors());
  EXPECT_EQ(fused.steps(), cpu.steps());
}

inline void ExpectSamePredictions(const models::Optimizer& cpu, FusedOptimizer& fused,
                                  const std::vector<float>& params) {
  std::vector<float> want(params.size());
  for (models::DeltaRule rule : RulesOf(cpu)) {
    for (auto [lr, s] :
         {std::pair{0.05, 2}, std::pair{0.3, -1}, std::pair{0.0, 4}, std::pair{0.1, 0}}) {
      cpu.Predict(params, lr, s, rule, want);
      EXPECT_TRUE(SameFloats(want, fused.Predict(params, lr, s, rule)))
          << DeltaRuleName(rule) << " lr " << lr << " s " << s << " after " << cpu.steps();
    }
  }
}

// Four steps of `make(n)` against the CPU optimizer: velocity on all but step 3, a fused
// prediction on all but step 4 (step 2's a copy: lr 0), its rule cycling through the supported
// ones.
template <typename Make>
void RunAgainstCpu(const models::OptimizerConfig& config, size_t n, Make make) {
  SCOPED_TRACE("n " + std::to_string(n));
  std::mt19937 rng(static_cast<unsigned>(n * 31 + 7));
  std::unique_ptr<models::Optimizer> cpu = models::Optimizer::Create(config, n).value();
  std::unique_ptr<FusedOptimizer> fused = make(n);
  ASSERT_NE(fused, nullptr);
  const std::vector<models::DeltaRule> rules = RulesOf(*cpu);

  std::vector<float> params = StartWeights(n, rng);
  std::vector<float> fused_params = params;
  std::vector<float> velocity = Normal(n, rng, 0.01f);
  std::vector<float> fused_velocity = velocity;
  ExpectSamePredictions(*cpu, *fused, params);  // before any step: ΔW = 0

  const float gamma = 0.75f;
  for (int t = 1; t <= 4; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    const std::vector<float> grad = StepGradient(n, t, rng);
    const double lr = config.lr * t;
    std::vector<float> fused_predicted(n, -1.0f);
    FusedOptimizer::Extras extras;
    if (t != 4) {
      extras.predicted = &fused_predicted;
      extras.predict_lr = t == 2 ? 0.0 : 0.05;
      extras.predict_s = t;
      extras.rule = rules[static_cast<size_t>(t) % rules.size()];
    }
    if (t != 3) {
      extras.velocity = &fused_velocity;
      extras.gamma = gamma;
    }
    const std::vector<float> before = params;
    cpu->Step(params, grad, lr);
    fused->Step(fused_params, grad, lr, extras);
    EXPECT_TRUE(SameFloats(params, fused_params)) << "weights";
    ExpectSameState(*cpu, *fused);
    if (extras.velocity != nullptr) VelocityReference(velocity, gamma, params, before);
    EXPECT_TRUE(SameFloats(velocity, fused_velocity)) << "velocity";
    if (extras.predicted != nullptr) {
      std::vector<float> want(n);
      cpu->Predict(params, extras.predict_lr, extras.predict_s, extras.rule, want);
      EXPECT_TRUE(SameFloats(want, fused_predicted)) << "fused " << DeltaRuleName(extras.rule);
      EXPECT_TRUE(SameFloats(
          fused.get()->Predict(fused_params, extras.predict_lr, extras.predict_s, extras.rule),
          fused_predicted))
          << "fused against a separate Predict";
    }
    ExpectSamePredictions(*cpu, *fused, params);
  }
}

}  // namespace pipecast::runtime::cuda::testing
