// Replicas in the executor: Chimera's two directions and data-parallel copies of a method, held
// bit for bit to the sequential reference (reference_trainer.h: each replica sums its own
// microbatches' gradients in its order, the replicas' sums are added in replica order), the
// reference itself to a hand-written loop of per-replica sums, two copies of 1F1B to one pipeline
// on the whole batch within float rounding, and the all-reduce's waits to their deadline (its
// independence of delivery timing is in executor_test.cc).
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/device_wrapper.h"
#include "runtime/executor_adapter.h"
#include "runtime/method_case.h"
#include "runtime/reference_trainer.h"
#include "runtime/replica_case.h"

namespace pipecast::runtime::testing {
namespace {

using models::OptimizerKind;

std::string NameOf(const ::testing::TestParamInfo<ReplicaSpec>& info) {
  return SpecName(info.param);
}

class ReplicasMatchReference : public ::testing::TestWithParam<ReplicaSpec> {};

// Final weights and every microbatch's loss equal the reference's bit for bit, every copy of
// every stage ends with replica 0's weights bit for bit, and the weights moved.
TEST_P(ReplicasMatchReference, WeightsLossesAndCopiesBitForBit) {
  const MethodCase c = MakeReplicaCase(GetParam());
  auto reference = RunReference(c);
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  auto run = RunExecutorOnCpu(c);
  ASSERT_TRUE(run.ok()) << run.status().message();
  ExpectSameBits(run->weights, reference->weights, "executor vs reference");
  ASSERT_EQ(run->exec.losses.size(), reference->losses.size());
  for (size_t j = 0; j < reference->losses.size(); ++j)
    EXPECT_EQ(run->exec.losses[j], reference->losses[j]) << "loss of microbatch " << j;
  // Chimera's 2f pipelines (2 unless given), GEMS's two directions, times the data-parallel copies.
  const auto pipelines = c.params.find("pipelines");
  const int32_t per_copy = c.method == "chimera" && pipelines != c.params.end()
                               ? std::stoi(pipelines->second)
                               : (c.method == "chimera" || c.method == "gems" ? 2 : 1);
  const int32_t replicas = per_copy * c.data_parallel;
  ASSERT_EQ(static_cast<int32_t>(run->copies.size()), replicas);
  for (int32_t r = 1; r < replicas; ++r)
    ExpectSameBits(run->copies[r], run->copies[0], "replica " + std::to_string(r) + " vs 0");
  const Weights init = InitialWeights(c, static_cast<int32_t>(run->weights.size()));
  for (size_t s = 0; s < init.size(); ++s) EXPECT_NE(run->weights[s], init[s]) << "stage " << s;
}

INSTANTIATE_TEST_SUITE_P(Chimera, ReplicasMatchReference,
                         ::testing::Values(ReplicaSpec{"chimera", 2, 1, OptimizerKind::kSgd},
                                           ReplicaSpec{"chimera", 2, 1, OptimizerKind::kAdamW},
                                           ReplicaSpec{"chimera", 4, 1, OptimizerKind::kSgd},
                                           ReplicaSpec{"chimera", 4, 1, OptimizerKind::kAdamW},
                                           ReplicaSpec{"chimera", 4, 1, OptimizerKind::kAdamW, 8},
                                           ReplicaSpec{"chimera", 4, 1, OptimizerKind::kSgd, 8,
                                                       false, {{"pipelines", "4"}}},
                                           ReplicaSpec{"chimera", 4, 1, OptimizerKind::kAdamW, 8,
                                                       false, {{"units", "direct"}}},
                                           ReplicaSpec{"chimera", 2, 2, OptimizerKind::kSgd},
                                           ReplicaSpec{"chimera", 4, 1, OptimizerKind::kSgd, 4,
                                                       true}),
                         NameOf);
// GEMS: the same two replicas, microbatch j down if even and up if odd, the all-reduce before
// the step.
INSTANTIATE_TEST_SUITE_P(Gems, ReplicasMatchReference,
                         ::testing::Values(ReplicaSpec{"gems", 2, 1, OptimizerKind::kSgd},
                                           ReplicaSpec{"gems", 2, 1, OptimizerKind::kAdamW},
                                           ReplicaSpec{"gems", 4, 1, OptimizerKind::kSgd},
                                           ReplicaSpec{"gems", 4, 1, OptimizerKind::kAdamW},
                                           ReplicaSpec{"gems", 4, 1, OptimizerKind::kSgd, 4, true}),
                         NameOf);
// Data parallelism over synchronous and asynchronous methods; R = 3 checks that three
// replicas' sums are added left to right.
INSTANTIATE_TEST_SUITE_P(DataParallel, ReplicasMatchReference,
                         ::testing::Values(ReplicaSpec{"1f1b", 2, 2, OptimizerKind::kSgd},
                                           ReplicaSpec{"1f1b", 2, 2, OptimizerKind::kAdamW},
                                           ReplicaSpec{"1f1b", 2, 3, OptimizerKind::kSgd},
                                           ReplicaSpec{"gpipe", 3, 2, OptimizerKind::kAdamW},
                                           ReplicaSpec{"zb-h1", 2, 2, OptimizerKind::kSgd},
                                           ReplicaSpec{"pipedream", 2, 2, OptimizerKind::kSgd},
                                           ReplicaSpec{"pipedream", 3, 2, OptimizerKind::kAdamW},
                                           ReplicaSpec{"pipeoptim", 2, 2, OptimizerKind::kAdamW},
                                           ReplicaSpec{"pipedream-2bw", 2, 2, OptimizerKind::kSgd},
                                           ReplicaSpec{"pipedream", 2, 2, OptimizerKind::kAdamW, 4,
                                                       true}),
                         NameOf);

// The reference's replica sums against a loop written here: per minibatch, each replica's
// microbatches through every stage at the current weights, accumulated per replica in microbatch
// order (loss scaled by one over the minibatch's microbatches of every replica), the replicas'
// sums added in replica order, one step. `replica_of(j)` is the replica of global microbatch j.
Weights ReplicaSumLoop(const MethodCase& c, int32_t num_stages, int32_t per_minibatch,
                       int32_t replicas, const std::function<int32_t(int32_t)>& replica_of) {
  const auto stages = *models::Partition(*c.model, num_stages);
  Weights w = StageSlices(stages, c.model->Init(c.init_seed));
  std::vector<std::unique_ptr<models::Optimizer>> opt;
  for (const auto& v : w)
    opt.push_back(std::move(models::Optimizer::Create(c.optimizer, v.size())).value());
  for (int32_t n = 0; n < c.minibatches; ++n) {
    std::vector<Weights> sums(replicas);
    for (Weights& g : sums)
      for (const auto& v : w) g.emplace_back(v.size(), 0.0f);
    for (int32_t j = n * per_minibatch; j < (n + 1) * per_minibatch; ++j)
      AccumulateGradients(stages, w, *c.loader, j, c.microbatch_size,
                          1.0f / static_cast<float>(per_minibatch), sums[replica_of(j)]);
    for (size_t s = 0; s < w.size(); ++s) {
      std::vector<float> g = sums[0][s];
      for (int32_t r = 1; r < replicas; ++r)
        for (size_t i = 0; i < g.size(); ++i) g[i] += sums[r][s][i];
      opt[s]->Step(w[s], g, c.learning_rate(0, n));
    }
  }
  return w;
}

TEST(ReferenceReplicas, ChimeraIsTheSumOfTheTwoDirections) {
  for (int32_t d : {2, 4}) {
    const MethodCase c = MakeReplicaCase({"chimera", d, 1, OptimizerKind::kAdamW});
    auto reference = RunReference(c);
    ASSERT_TRUE(reference.ok()) << reference.status().message();
    // The minibatch is one unit (units=merged): its first half down (replica 0), the rest up.
    const Weights loop = ReplicaSumLoop(c, d, 4, 2, [](int32_t j) { return j % 4 < 2 ? 0 : 1; });
    ExpectSameBits(reference->weights, loop, "chimera D=" + std::to_string(d));
  }
}

TEST(ReferenceReplicas, GemsAlternatesTheDirections) {
  for (int32_t d : {2, 4}) {
    const MethodCase c = MakeReplicaCase({"gems", d, 1, OptimizerKind::kSgd});
    auto reference = RunReference(c);
    ASSERT_TRUE(reference.ok()) << reference.status().message();
    const Weights loop = ReplicaSumLoop(c, d, 4, 2, [](int32_t j) { return j % 2; });
    ExpectSameBits(reference->weights, loop, "gems D=" + std::to_string(d));
  }
}

TEST(ReferenceReplicas, DataParallelCopiesSumTheirOwnMicrobatches) {
  // R = 3 copies of 1F1B with M = 4: copy c runs microbatches 12n + 4c .. 12n + 4c + 3.
  const MethodCase c = MakeReplicaCase({"1f1b", 2, 3, OptimizerKind::kSgd});
  auto reference = RunReference(c);
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  const Weights loop = ReplicaSumLoop(c, 2, 12, 3, [](int32_t j) { return j % 12 / 4; });
  ExpectSameBits(reference->weights, loop, "1f1b, data_parallel 3");
}

// Two copies of 1F1B (M = 4 each) against one 1F1B pipeline with M = 8 on the same microbatches:
// a step's gradient is the same mean of the same 8 microbatch gradients, summed as
// (g0 + ... + g3) + (g4 + ... + g7) instead of g0 + ... + g7. Before the first step both compute
// with the initial weights, so the first minibatch's losses agree bit for bit. After one step
// (SGD, first step: w' = w - lr (g + wd w)) the two gradients of weight i differ by at most
// 2 γ_7 Σ_j |g_ij| with γ_7 = 7u / (1 - 7u), u = 2^-24 (the error bound of a recursive sum of
// 8 terms, once per order), so the weights by at most lr times that plus one rounding of w' each
// (ulp(w')): asserted per weight, with Σ_j |g_ij| computed here. Over three steps the weights feed
// back into the gradients, so only a norm is asserted there: within 1e-5 of the weights' scale,
// which a missing or doubled microbatch (1/8 of a step's gradient, about 1e-3) would exceed.
TEST(DataParallel, TwoCopiesOfOneFOneBAreOnePipelineOnTheWholeBatch) {
  for (int32_t minibatches : {1, 3}) {
    MethodCase copies = MakeReplicaCase({"1f1b", 2, 2, OptimizerKind::kSgd}, minibatches);
    MethodCase whole = MakeReplicaCase({"1f1b", 2, 1, OptimizerKind::kSgd, 8}, minibatches);
    auto a = RunExecutorOnCpu(copies);
    ASSERT_TRUE(a.ok()) << a.status().message();
    auto b = RunExecutorOnCpu(whole);
    ASSERT_TRUE(b.ok()) << b.status().message();
    ASSERT_EQ(a->exec.losses.size(), b->exec.losses.size());
    for (size_t j = 0; j < 8; ++j) EXPECT_EQ(a->exec.losses[j], b->exec.losses[j]) << j;
    if (minibatches == 1) {
      const auto stages = *models::Partition(*copies.model, 2);
      const Weights init = StageSlices(stages, copies.model->Init(copies.init_seed));
      Weights magnitude;
      for (const auto& v : init) magnitude.emplace_back(v.size(), 0.0f);
      for (int32_t j = 0; j < 8; ++j) {
        Weights g;
        for (const auto& v : init) g.emplace_back(v.size(), 0.0f);
        AccumulateGradients(stages, init, *copies.loader, j, copies.microbatch_size, 1.0f / 8, g);
        for (size_t s = 0; s < g.size(); ++s)
          for (size_t i = 0; i < g[s].size(); ++i) magnitude[s][i] += std::abs(g[s][i]);
      }
      const double u = std::ldexp(1.0, -24), gamma7 = 7 * u / (1 - 7 * u);
      const double lr = copies.optimizer.lr;
      for (size_t s = 0; s < init.size(); ++s) {
        for (size_t i = 0; i < init[s].size(); ++i) {
          const float x = a->weights[s][i], y = b->weights[s][i];
          const double ulp = std::nextafter(std::abs(x), INFINITY) - std::abs(x);
          const double bound = lr * 2 * gamma7 * magnitude[s][i] * 1.001 + ulp;
          ASSERT_LE(std::abs(static_cast<double>(x) - y), bound)
              << "stage " << s << " weight " << i;
        }
      }
    } else {
      double diff = 0, norm = 0;
      for (size_t s = 0; s < a->weights.size(); ++s) {
        for (size_t i = 0; i < a->weights[s].size(); ++i) {
          const double x = a->weights[s][i], y = b->weights[s][i];
          diff = std::max(diff, std::abs(x - y));
          norm = std::max(norm, std::abs(y));
        }
      }
      EXPECT_LE(diff, 1e-5 * norm);
      for (size_t j = 8; j < a->exec.losses.size(); ++j)
        EXPECT_NEAR(a->exec.losses[j], b->exec.losses[j], 1e-5 * b->exec.losses[j]) << j;
    }
  }
}

// A copy that is late for its all-reduce: its peer's wait ends at the deadline, naming the
// all-reduce's message.
class LateGradient : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  BufferView Gradient(int32_t stage) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    return DeviceWrapper::Gradient(stage);
  }
};

TEST(Replicas, AllReduceWaitsHaveADeadline) {
  // Chimera D = 2: stage 0's replica-1 copy is on device 1, which is late.
  const MethodCase c = MakeReplicaCase({"chimera", 2, 1, OptimizerKind::kSgd}, 1);
  auto run = RunWithLateDevice<LateGradient>(c, 1);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kDeadlineExceeded) << run.status().message();
  EXPECT_NE(run.status().message().find("gradient sum of stage"), std::string::npos)
      << run.status().message();
}

}  // namespace
}  // namespace pipecast::runtime::testing
