// What the replica tests share (replica_test.cc, avgpipe_test.cc): a replicated method's case on
// the cluster problem, its name, and a bit-for-bit comparison of weights.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/executor_adapter.h"
#include "runtime/method_case.h"

namespace pipecast::runtime::testing {

using Weights = std::vector<std::vector<float>>;

struct ReplicaSpec {
  std::string method;
  int32_t stages = 2;  // D of one copy
  int32_t data_parallel = 1;
  models::OptimizerKind optimizer = models::OptimizerKind::kSgd;
  int32_t microbatches = 4;
  // A rate that changes every step and differs per device: a stage's copies must all take the
  // rate of the replica-0 copy's device.
  bool decaying_lr = false;
  std::map<std::string, std::string> params;  // method parameters (AvgPipe's)
};

// SGD with momentum and coupled weight decay, or AdamW with decoupled decay: rates that train the
// clusters without diverging.
inline models::OptimizerConfig Optimizer(models::OptimizerKind kind) {
  models::OptimizerConfig c = models::DefaultOptimizerConfig(kind);
  c.lr = kind == models::OptimizerKind::kSgd ? 0.05 : 0.01;
  if (kind == models::OptimizerKind::kSgd) c.momentum = 0.9;
  c.weight_decay = kind == models::OptimizerKind::kSgd ? 1e-3 : 0.05;
  return c;
}

inline MethodCase MakeReplicaCase(const ReplicaSpec& spec, int32_t minibatches = 3) {
  MethodCase c;
  c.method = spec.method;
  c.stages = spec.stages;
  c.microbatches = spec.microbatches;
  c.minibatches = minibatches;
  c.data_parallel = spec.data_parallel;
  c.params = spec.params;
  c.optimizer = Optimizer(spec.optimizer);
  const double lr = c.optimizer.lr;
  c.learning_rate = [lr](int32_t, int64_t) { return lr; };
  if (spec.decaying_lr) {
    c.learning_rate = [lr](int32_t device, int64_t step) {
      return lr * (1.0 + 0.25 * device) / (1.0 + 0.1 * static_cast<double>(step));
    };
  }
  c.model = ClusterMlp(2 * spec.stages - 1);  // two Linear layers per stage
  static const auto loader = ClusterLoader();
  c.loader = loader;
  return c;
}

inline std::string SpecName(const ReplicaSpec& s) {
  std::string name = s.method + "_D" + std::to_string(s.stages) + "_R" +
                     std::to_string(s.data_parallel) + "_" +
                     std::string(models::OptimizerKindName(s.optimizer)) + "_M" +
                     std::to_string(s.microbatches) + (s.decaying_lr ? "_lrdecay" : "");
  for (const auto& [key, value] : s.params) name += "_" + key + value;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
}

// gtest prints a spec by its name (found by argument-dependent lookup).
inline void PrintTo(const ReplicaSpec& s, std::ostream* os) { *os << SpecName(s); }

// Weights equal bit for bit (so +0 and -0, or two NaNs, are told apart).
inline void ExpectSameBits(const Weights& a, const Weights& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t s = 0; s < a.size(); ++s) {
    ASSERT_EQ(a[s].size(), b[s].size()) << what << ", stage " << s;
    int64_t differ = 0;
    double worst = 0;
    for (size_t i = 0; i < a[s].size(); ++i) {
      if (std::memcmp(&a[s][i], &b[s][i], sizeof(float)) == 0) continue;
      ++differ;
      worst = std::max(worst, std::abs(static_cast<double>(a[s][i]) - b[s][i]));
    }
    EXPECT_EQ(differ, 0) << what << ", stage " << s << ": " << differ << " of " << a[s].size()
                         << " weights differ, at most by " << worst;
  }
}

inline Weights InitialWeights(const MethodCase& c, int32_t num_stages) {
  const auto stages = *models::Partition(*c.model, num_stages);
  return StageSlices(stages, c.model->Init(c.init_seed));
}

// Trains `c` with a 100 ms deadline per wait, device `late` wrapped in a `Late` (a DeviceWrapper
// that makes the device late for something).
template <typename Late>
Result<CpuRun> RunWithLateDevice(const MethodCase& c, int32_t late) {
  std::vector<std::unique_ptr<Late>> wrappers;
  CpuRunOptions options;
  options.config.deadline = std::chrono::milliseconds(100);
  options.wrap = [&](int32_t device, Device* cpu) -> Device* {
    if (device != late) return cpu;
    wrappers.push_back(std::make_unique<Late>(cpu));
    return wrappers.back().get();
  };
  return RunExecutorOnCpu(c, options);
}

}  // namespace pipecast::runtime::testing
