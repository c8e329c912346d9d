// AvgPipe's elastic averaging in the executor (AV, runtime/executor.h): every copy of every stage
// and every copy's reference weights W~ held bit for bit to the sequential reference
// (reference_trainer.h: P independent pipelines averaged after every period-th step), the
// reference itself to EASGD's equations written out here, one average to values worked by hand,
// and the average's waits to their deadline.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "common/generators.h"
#include "common/version_plan.h"
#include "runtime/cpu/cpu_device.h"
#include "runtime/device_wrapper.h"
#include "runtime/executor_adapter.h"
#include "runtime/inproc_transport.h"
#include "runtime/method_case.h"
#include "runtime/reference_trainer.h"
#include "runtime/replica_case.h"

namespace pipecast::runtime::testing {
namespace {

using models::OptimizerKind;

ReplicaSpec AvgPipe(int32_t pipelines, int32_t stages, OptimizerKind optimizer, int32_t period,
                    int32_t advance) {
  ReplicaSpec spec{"avgpipe", stages, 1, optimizer};
  spec.params = {{"pipelines", std::to_string(pipelines)},
                 {"period", std::to_string(period)},
                 {"advance", std::to_string(advance)}};
  return spec;
}

std::string NameOf(const ::testing::TestParamInfo<ReplicaSpec>& info) {
  return SpecName(info.param);
}

class AvgPipeMatchesReference : public ::testing::TestWithParam<ReplicaSpec> {};

// Every copy's final weights, every copy's reference weights and every microbatch's loss equal
// the reference's bit for bit; the pipelines trained on different data, so their copies differ,
// and every copy moved.
TEST_P(AvgPipeMatchesReference, EveryCopyAndItsReferenceBitForBit) {
  const MethodCase c = MakeReplicaCase(GetParam());
  auto reference = RunReference(c);
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  auto run = RunExecutorOnCpu(c);
  ASSERT_TRUE(run.ok()) << run.status().message();
  const auto pipelines = static_cast<int32_t>(reference->copies.size());
  ASSERT_EQ(pipelines, std::stoi(c.params.at("pipelines")));
  ASSERT_EQ(static_cast<int32_t>(run->copies.size()), pipelines);
  for (int32_t r = 0; r < pipelines; ++r) {
    ExpectSameBits(run->copies[r], reference->copies[r], "copy " + std::to_string(r));
    ExpectSameBits(run->references[r], reference->reference,
                   "reference weights of copy " + std::to_string(r));
  }
  ASSERT_EQ(run->exec.losses.size(), reference->losses.size());
  for (size_t j = 0; j < reference->losses.size(); ++j)
    EXPECT_EQ(run->exec.losses[j], reference->losses[j]) << "loss of microbatch " << j;
  const Weights init = InitialWeights(c, static_cast<int32_t>(run->weights.size()));
  for (int32_t r = 0; r < pipelines; ++r) {
    for (size_t s = 0; s < init.size(); ++s) {
      EXPECT_NE(run->copies[r][s], init[s]) << "copy " << r << " stage " << s;
      if (r > 0) {
        EXPECT_NE(run->copies[r][s], run->copies[0][s]) << "copy " << r << " stage " << s;
      }
    }
  }
}

// P = 2 and 3, D = 2 and 3, both optimizers, period 1 and 2 (three minibatches: with period 2
// the last step is not averaged), advance 0 (1F1B) and M (all forwards first).
INSTANTIATE_TEST_SUITE_P(AvgPipe, AvgPipeMatchesReference,
                         ::testing::Values(AvgPipe(2, 2, OptimizerKind::kSgd, 1, 0),
                                           AvgPipe(2, 2, OptimizerKind::kAdamW, 2, 4),
                                           AvgPipe(3, 2, OptimizerKind::kSgd, 2, 0),
                                           AvgPipe(3, 2, OptimizerKind::kAdamW, 1, 4),
                                           AvgPipe(2, 3, OptimizerKind::kSgd, 2, 4),
                                           AvgPipe(2, 3, OptimizerKind::kAdamW, 1, 0),
                                           AvgPipe(3, 3, OptimizerKind::kSgd, 1, 4),
                                           AvgPipe(3, 3, OptimizerKind::kAdamW, 2, 0)),
                         NameOf);

// EASGD's synchronous update (Zhang, Choromanska and LeCun, NeurIPS'15, eqs. 5-6 with α = ηρ)
// over P pipelines written out: per minibatch each pipeline p takes the mean gradient of its own
// microbatches (n·P + p)·M + j at its own weights and steps; after every period-th step, with
// the elastic differences e_p = x_p - x~ taken first, x_p <- x_p - α e_p and
// x~ <- x~ + α (e_0 + e_1 + ... + e_{P-1}). Returns the copies and, last, x~.
std::vector<Weights> EasgdLoop(const MethodCase& c, int32_t P, int32_t period, float alpha) {
  const auto stages = *models::Partition(*c.model, c.stages);
  const Weights init = StageSlices(stages, c.model->Init(c.init_seed));
  std::vector<Weights> x(P, init);
  Weights center = init;
  std::vector<std::vector<std::unique_ptr<models::Optimizer>>> opt(P);
  for (auto& o : opt)
    for (const auto& v : init)
      o.push_back(models::Optimizer::Create(c.optimizer, v.size()).value());
  const int32_t M = c.microbatches;
  for (int32_t n = 0; n < c.minibatches; ++n) {
    for (int32_t p = 0; p < P; ++p) {
      Weights g;
      for (const auto& v : init) g.emplace_back(v.size(), 0.0f);
      for (int32_t j = 0; j < M; ++j)
        AccumulateGradients(stages, x[p], *c.loader, (n * P + p) * M + j, c.microbatch_size,
                            1.0f / static_cast<float>(M), g);
      for (size_t s = 0; s < init.size(); ++s)
        opt[p][s]->Step(x[p][s], g[s], c.learning_rate(static_cast<int32_t>(s), n));
    }
    if ((n + 1) % period != 0) continue;
    for (size_t s = 0; s < init.size(); ++s) {
      for (size_t i = 0; i < init[s].size(); ++i) {
        std::vector<float> e(P);
        for (int32_t p = 0; p < P; ++p) e[p] = x[p][s][i] - center[s][i];
        float sum = e[0];
        for (int32_t p = 1; p < P; ++p) sum += e[p];
        for (int32_t p = 0; p < P; ++p) x[p][s][i] = x[p][s][i] - alpha * e[p];
        center[s][i] = center[s][i] + alpha * sum;
      }
    }
  }
  x.push_back(center);
  return x;
}

TEST(ReferenceAvgPipe, IsEasgdOverIndependentPipelines) {
  for (const auto& [P, period] : {std::pair{2, 1}, std::pair{3, 2}}) {
    MethodCase c = MakeReplicaCase(AvgPipe(P, 2, OptimizerKind::kSgd, period, 0), 4);
    c.params["alpha"] = "0.25";
    auto reference = RunReference(c);
    ASSERT_TRUE(reference.ok()) << reference.status().message();
    const std::vector<Weights> loop = EasgdLoop(c, P, period, 0.25f);
    const std::string what = "P=" + std::to_string(P) + " period " + std::to_string(period);
    for (int32_t p = 0; p < P; ++p)
      ExpectSameBits(reference->copies[p], loop[p], what + ", copy " + std::to_string(p));
    ExpectSameBits(reference->reference, loop[P], what + ", reference weights");
    auto run = RunExecutorOnCpu(c);
    ASSERT_TRUE(run.ok()) << run.status().message();
    for (int32_t p = 0; p < P; ++p)
      ExpectSameBits(run->copies[p], loop[p], what + ", executor copy " + std::to_string(p));
  }
}

// Without a rate the default is EASGD's β/P with β = 0.9 (docs/methods.md): α = 0.45 for two
// pipelines, which the reference (whose default is written independently) agrees with.
TEST(ReferenceAvgPipe, DefaultRateIsPointNineOverP) {
  const MethodCase c = MakeReplicaCase(AvgPipe(2, 2, OptimizerKind::kSgd, 1, 0), 2);
  auto reference = RunReference(c);
  ASSERT_TRUE(reference.ok()) << reference.status().message();
  const std::vector<Weights> loop = EasgdLoop(c, 2, 1, 0.45f);
  ExpectSameBits(reference->copies[1], loop[1], "copy 1 at alpha 0.45");
  auto run = RunExecutorOnCpu(c);
  ASSERT_TRUE(run.ok()) << run.status().message();
  ExpectSameBits(run->copies[1], loop[1], "executor copy 1 at alpha 0.45");
}

// A pipeline steps on its own M microbatches' gradients: each loss is scaled by 1/M, where two
// data-parallel copies of 1F1B, whose steps apply the all-reduced sum, scale by 1/(2M).
TEST(AvgPipeExecutor, LossDivisorIsThePipelinesOwnMicrobatches) {
  for (int32_t P : {2, 3}) {
    const ir::Program avg =
        *ir::Generate({"avgpipe", 2, 4, 2, 8, {{"pipelines", std::to_string(P)}}});
    const ir::VersionPlan plan = ir::BuildVersionPlan(avg, ir::PlanDetail::kExecution);
    ASSERT_EQ(static_cast<int32_t>(plan.loss_divisor.size()), 2 * P * 4);
    for (int32_t divisor : plan.loss_divisor) EXPECT_EQ(divisor, 4) << "P=" << P;
  }
  const ir::Program dp = *ir::Generate({"1f1b", 2, 4, 2, 8, {}, 2});
  const ir::VersionPlan plan = ir::BuildVersionPlan(dp, ir::PlanDetail::kExecution);
  for (int32_t divisor : plan.loss_divisor) EXPECT_EQ(divisor, 8);
}

// No data: a program of one average only.
class NoData : public DataFeed {
 public:
  std::span<const float> Input(int32_t) override { return {}; }
  std::span<const int32_t> Labels(int32_t) override { return {}; }
};

// One AV of a two-parameter stage (Linear 1 -> 1: weight and bias) over P copies, W~ = (1, 1),
// α = 1/4, worked by hand (every value exact in float):
//   P = 2, W_0 = (3, 1), W_1 = (5, -1):  S = (2 + 4, 0 - 2) = (6, -2), W~ = 1 + S/4 = (2.5, 0.5),
//     W_0 = W_0 - (W_0 - 1)/4 = (2.5, 1), W_1 = (4, -0.5);
//   P = 3, adding W_2 = (-3, 9):  S = (2, 6), W~ = (1.5, 2.5), W_0 = (2.5, 1), W_1 = (4, -0.5),
//     W_2 = (-2, 7).
TEST(AvgPipeExecutor, OneAverageIsWorkedByHand) {
  const std::vector<std::vector<float>> given = {{3, 1}, {5, -1}, {-3, 9}};
  const std::vector<std::vector<std::vector<float>>> want = {{{2.5f, 1}, {4, -0.5f}},
                                                             {{2.5f, 1}, {4, -0.5f}, {-2, 7}}};
  const std::vector<std::vector<float>> want_reference = {{2.5f, 0.5f}, {1.5f, 2.5f}};
  const auto model = models::MakeMlp<float>(1, {}, 1).value();
  const auto stages = *models::Partition(model, 1);
  ASSERT_EQ(stages[0].num_params(), 2);
  for (int32_t P : {2, 3}) {
    ir::Program p;
    p.method = "avgpipe";
    p.num_devices = P;
    p.replicas = P;
    p.options.elastic_alpha = 0.25;
    for (int32_t r = 0; r < P; ++r) {
      p.placement.push_back(r);
      p.devices.push_back({{ir::ActionKind::kAverage, 0, 0, {}}});
    }
    const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
    std::vector<std::unique_ptr<CpuDevice>> cpus;
    std::vector<Device*> devices;
    for (int32_t r = 0; r < P; ++r) {
      auto cpu = CpuDevice::Create({{0, stages[0], Optimizer(OptimizerKind::kSgd)}}).value();
      cpu->SetWeights(0, std::vector<float>{1, 1});
      ASSERT_TRUE(cpu->Prepare({&p, &plan, r, 1, 0, 0}).ok());  // W~ = the weights set
      StageState state = cpu->State(0).value();
      for (auto& [name, values] : state.tensors)
        if (name == "weights") values = given[r];
      ASSERT_TRUE(cpu->LoadState(0, state).ok());
      devices.push_back(cpu.get());
      cpus.push_back(std::move(cpu));
    }
    NoData feed;
    InProcessTransport transport(P, TrainingSpace(p));
    auto result = Execute(p, plan, devices, feed, transport);
    ASSERT_TRUE(result.ok()) << result.status().message();
    for (int32_t r = 0; r < P; ++r) {
      std::vector<float> w(2);
      cpus[r]->ReadWeights(0, w);
      EXPECT_EQ(w, want[P - 2][r]) << "P=" << P << ", copy " << r;
      const BufferView ref = cpus[r]->Reference(0);
      EXPECT_EQ(std::vector<float>(ref.data, ref.data + ref.count), want_reference[P - 2])
          << "P=" << P << ", reference weights of copy " << r;
    }
  }
}

// A copy that is late for an average: its peer's wait ends at the deadline, naming the average's
// message.
class LateWeights : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  BufferView Weights(int32_t stage) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    return DeviceWrapper::Weights(stage);
  }
};

TEST(AvgPipeExecutor, AverageWaitsHaveADeadline) {
  // Two pipelines of two stages: device 2 holds stage 0's replica-1 copy and is late.
  const MethodCase c = MakeReplicaCase(AvgPipe(2, 2, OptimizerKind::kSgd, 1, 0), 1);
  auto run = RunWithLateDevice<LateWeights>(c, 2);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kDeadlineExceeded) << run.status().message();
  EXPECT_NE(run.status().message().find("weights to average of stage 0"), std::string::npos)
      << run.status().message();
}

}  // namespace
}  // namespace pipecast::runtime::testing
