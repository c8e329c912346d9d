// What the tests of the CUDA optimizer and weight kernels compare with: the optimizer
// configurations to cover, NaN-tolerant bitwise comparison, and CpuDevice's element formulas
// (runtime/cpu/cpu_device_ops.cc) restated from its source for the velocity, the correction,
// the gradient sums, the elastic averaging and the prediction measurement.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "models/optimizer.h"

namespace pipecast::runtime::cuda::testing {

// The same bits at every index, or NaN on both sides (CPU and GPU NaNs differ in sign and
// payload, and nothing reads them).
inline ::testing::AssertionResult SameFloats(const std::vector<float>& want,
                                             const std::vector<float>& got) {
  if (want.size() != got.size()) {
    return ::testing::AssertionFailure() << "sizes " << want.size() << " vs " << got.size();
  }
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const bool both_nan = std::isnan(want[i]) && std::isnan(got[i]);
    if (!both_nan && std::memcmp(&want[i], &got[i], sizeof(float)) != 0) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << want.size() << " differ; first at " << first << ": want "
         << want[first] << " got " << got[first];
}

inline std::vector<float> Normal(size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// A configuration with every option that changes the arithmetic, under a readable name.
struct OptimizerCase {
  const char* name;
  models::OptimizerConfig config;
};
inline void PrintTo(const OptimizerCase& c, std::ostream* os) { *os << c.name; }

inline std::vector<OptimizerCase> OptimizerCases() {
  using models::OptimizerConfig;
  using models::OptimizerKind;
  std::vector<OptimizerCase> cases;
  auto add = [&](const char* name, OptimizerKind kind, auto edit) {
    OptimizerConfig c = models::DefaultOptimizerConfig(kind);
    edit(c);
    cases.push_back({name, c});
  };
  add("sgd", OptimizerKind::kSgd, [](OptimizerConfig&) {});
  add("sgd_decay", OptimizerKind::kSgd, [](OptimizerConfig& c) { c.weight_decay = 0.01; });
  add("sgd_momentum", OptimizerKind::kSgd, [](OptimizerConfig& c) { c.momentum = 0.9; });
  add("sgd_dampening_decay", OptimizerKind::kSgd, [](OptimizerConfig& c) {
    c.momentum = 0.9;
    c.dampening = 0.3;
    c.weight_decay = 0.01;
  });
  add("sgd_nesterov_decay", OptimizerKind::kSgd, [](OptimizerConfig& c) {
    c.momentum = 0.8;
    c.nesterov = true;
    c.weight_decay = 1e-50;  // rounds to 0 in float, still applied
  });
  add("adam", OptimizerKind::kAdam, [](OptimizerConfig&) {});
  add("adam_amsgrad", OptimizerKind::kAdam, [](OptimizerConfig& c) { c.amsgrad = true; });
  add("adam_decay_amsgrad", OptimizerKind::kAdam, [](OptimizerConfig& c) {
    c.weight_decay = 0.02;
    c.amsgrad = true;
    c.beta1 = 0.8;
    c.beta2 = 0.95;
    c.eps = 1e-6;
  });
  add("adamw", OptimizerKind::kAdamW, [](OptimizerConfig&) {});
  add("adamw_amsgrad", OptimizerKind::kAdamW, [](OptimizerConfig& c) {
    c.weight_decay = 0.05;
    c.amsgrad = true;
  });
  add("rmsprop", OptimizerKind::kRmsprop, [](OptimizerConfig&) {});
  add("rmsprop_centered_decay", OptimizerKind::kRmsprop, [](OptimizerConfig& c) {
    c.centered = true;
    c.weight_decay = 0.05;
    c.alpha = 0.9;
  });
  add("rmsprop_momentum", OptimizerKind::kRmsprop, [](OptimizerConfig& c) { c.momentum = 0.7; });
  add("rmsprop_momentum_centered", OptimizerKind::kRmsprop, [](OptimizerConfig& c) {
    c.momentum = 0.7;
    c.centered = true;
  });
  add("lion", OptimizerKind::kLion, [](OptimizerConfig&) {});
  add("lion_decay", OptimizerKind::kLion, [](OptimizerConfig& c) { c.weight_decay = 0.1; });
  return cases;
}

inline std::string CaseName(const ::testing::TestParamInfo<OptimizerCase>& info) {
  return info.param.name;
}

inline std::vector<models::DeltaRule> RulesOf(const models::Optimizer& opt) {
  std::vector<models::DeltaRule> rules;
  for (models::DeltaRule r :
       {models::DeltaRule::kPaper, models::DeltaRule::kExact, models::DeltaRule::kCode,
        models::DeltaRule::kSpecTrain, models::DeltaRule::kXPipe}) {
    if (opt.SupportsRule(r).ok()) rules.push_back(r);
  }
  return rules;
}

// Gradients for step t of a run: random, with ±0 and, on step 3, a NaN and an Inf.
inline std::vector<float> StepGradient(size_t n, int t, std::mt19937& rng) {
  std::vector<float> grad = Normal(n, rng, static_cast<float>(t));
  if (n >= 8) {
    grad[2] = 0.0f;
    grad[3] = -0.0f;
    if (t == 3) {
      grad[4] = std::numeric_limits<float>::quiet_NaN();
      grad[5] = std::numeric_limits<float>::infinity();
    }
  }
  return grad;
}

// Starting weights: random, with −0 and a denormal.
inline std::vector<float> StartWeights(size_t n, std::mt19937& rng) {
  std::vector<float> w = Normal(n, rng, 1.0f);
  if (n >= 4) {
    w[0] = -0.0f;
    w[1] = 1e-40f;
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// CpuDevice's formulas.

// CpuDevice::Step: velocity ← γ·velocity + (1 − γ)·(W_new − W_old), h = 1 − γ in float.
inline void VelocityReference(std::vector<float>& velocity, float gamma,
                              const std::vector<float>& after, const std::vector<float>& before) {
  const float h = 1.0f - gamma;
  for (size_t i = 0; i < velocity.size(); ++i) {
    velocity[i] = gamma * velocity[i] + h * (after[i] - before[i]);
  }
}

// CpuDevice::Apply(kCorrect): out = W − gap·velocity.
inline std::vector<float> CorrectReference(const std::vector<float>& w,
                                           const std::vector<float>& velocity, float gap) {
  std::vector<float> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) out[i] = w[i] - gap * velocity[i];
  return out;
}

// CpuDevice::SumGradients: one pass per buffer.
inline void SumReference(std::vector<float>& grad, const std::vector<std::vector<float>>& bufs) {
  for (const auto& b : bufs) {
    for (size_t i = 0; i < grad.size(); ++i) grad[i] += b[i];
  }
}

// CpuDevice::ElasticAverage.
inline void ElasticAverageReference(std::vector<float>& w, std::vector<float>& ref,
                                    const std::vector<std::vector<float>>& copies, float a) {
  for (size_t i = 0; i < w.size(); ++i) {
    const float t = ref[i];
    float sum = w[i] - t;
    for (const auto& c : copies) sum += c[i] - t;
    w[i] = w[i] - a * (w[i] - t);
    ref[i] = t + a * sum;
  }
}

// CpuDevice::ElasticPull.
inline void ElasticPullReference(std::vector<float>& w, const std::vector<float>& ref, float a) {
  for (size_t i = 0; i < w.size(); ++i) w[i] = w[i] - a * (w[i] - ref[i]);
}

// CpuDevice's Measure, sequentially in double: Σ(p−r)², Σ(r−b)², Σ(p−b)², Σ(p−b)(r−b).
inline std::array<double, 4> MeasureReference(const std::vector<float>& base,
                                              const std::vector<float>& predicted,
                                              const std::vector<float>& reached) {
  std::array<double, 4> sums = {0, 0, 0, 0};
  for (size_t i = 0; i < base.size(); ++i) {
    const double r = static_cast<double>(reached[i]) - base[i];
    const double p = static_cast<double>(predicted[i]) - base[i];
    const double e = static_cast<double>(predicted[i]) - reached[i];
    sums[0] += e * e;
    sums[1] += r * r;
    sums[2] += p * p;
    sums[3] += p * r;
  }
  return sums;
}

}  // namespace pipecast::runtime::cuda::testing
