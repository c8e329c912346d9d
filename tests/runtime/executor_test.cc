// The executor over CPU devices: sequential equivalence, the served weights equal to the plan
// for every method, determinism under random delivery delays, no allocation per microbatch,
// deadlines naming every device, and failures that keep their kind (non-finite, device error,
// deadline, cancelled), injected through a DeviceWrapper.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "common/generators.h"
#include "common/lower.h"
#include "runtime/cpu/cpu_device.h"
#include "runtime/device_wrapper.h"
#include "runtime/executor_adapter.h"
#include "runtime/inproc_transport.h"
#include "runtime/loader_feed.h"
#include "support/counting_allocator.h"

namespace pipecast::runtime {
namespace {

using testing::CpuRunOptions;
using testing::RunOnCpu;

constexpr int32_t kMicrobatch = 8;

ir::Program Lowered(const std::string& method, int32_t d, int32_t m, int32_t n,
                    std::map<std::string, std::string> params = {}) {
  auto p = ir::Generate({method, d, m, n, kMicrobatch, std::move(params)});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return ir::InsertCommunication(*p);
}

models::OptimizerConfig Sgdm() {
  models::OptimizerConfig c;
  c.kind = models::OptimizerKind::kSgd;
  c.lr = 0.05;
  c.momentum = 0.9;
  return c;
}

// A small MLP cut into the program's stages, on the clusters of the method tests.
struct Problem {
  std::shared_ptr<const models::Loader> loader = testing::ClusterLoader();
  std::shared_ptr<const models::Model<float>> model = testing::ClusterMlp(7);
  std::vector<models::Stage<float>> Stages(int32_t n) const {
    return *models::Partition(*model, n);
  }
  Result<testing::CpuRun> Run(const ir::Program& p, CpuRunOptions options = {},
                              DataFeed* feed = nullptr) const {
    const auto stages = Stages(p.num_stages);
    LoaderFeed local(*loader, kMicrobatch, 0);
    options.config.learning_rate = [](int32_t, int64_t) { return 0.05; };
    return RunOnCpu(p, stages, Sgdm(), testing::StageSlices(stages, model->Init(3)),
                    feed ? *feed : local, options);
  }
};

TEST(Executor, FlushSchedulesEqualSequentialAccumulationBitForBit) {
  Problem f;
  const int32_t m = 4, n = 3;
  const auto stages = f.Stages(4);
  auto w = testing::StageSlices(stages, f.model->Init(3));
  std::vector<std::unique_ptr<models::Optimizer>> opt;
  for (const auto& s : stages)
    opt.push_back(models::Optimizer::Create(Sgdm(), s.num_params()).value());
  for (int32_t it = 0; it < n; ++it) {
    std::vector<std::vector<float>> g;
    for (const auto& s : w) g.emplace_back(s.size(), 0.0f);
    for (int32_t j = it * m; j < (it + 1) * m; ++j)
      testing::AccumulateGradients(stages, w, *f.loader, j, kMicrobatch, 1.0f / m, g);
    for (size_t s = 0; s < stages.size(); ++s) opt[s]->Step(w[s], g[s], 0.05);
  }
  for (const char* method : {"gpipe", "1f1b", "zb-h1", "zb-h2"}) {
    auto r = f.Run(Lowered(method, 4, m, n));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->weights, w) << method;
  }
  auto r = f.Run(Lowered("interleaved", 2, m, n, {{"chunks", "2"}}));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->weights, w) << "interleaved";
}

// What every F/B/I computed with, as the device's buffers were tagged when it read them, equals
// the version plan: a wrong slot, a missing save or a prediction from the wrong state would
// show here.
TEST(Executor, ServedWeightsEqualThePlan) {
  Problem f;
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> cases;
  for (const ir::MethodInfo& info : ir::Methods()) cases.push_back({info.name, {}});
  cases.push_back({"pipedream", {{"vertical_sync", "true"}}});
  cases.push_back({"spectrain", {{"variant", "v2"}}});
  cases.push_back({"pipeoptim", {{"horizon", "code"}}});
  cases.push_back({"paci", {{"accumulation", "2"}}});
  for (const auto& [method, params] : cases) {
    // Interleaved and Chimera (half the microbatches in each direction) need an even M.
    const int32_t m = method == "interleaved" || method == "chimera" ? 4 : 5;
    const ir::Program p = Lowered(method, 4, m, 3, params);
    auto r = f.Run(p);
    ASSERT_TRUE(r.ok()) << method << ": " << r.status().message();
    int64_t checked = 0;
    for (const auto& device : r->exec.served) {
      for (const ServedWeights& u : device) {
        const ir::VersionRecord& rec = r->plan.At(u.stage, u.microbatch);
        const bool fwd = u.kind == ir::ActionKind::kForward;
        EXPECT_EQ(u.counter, fwd ? rec.f_counter : rec.b_counter) << method;
        EXPECT_EQ(u.version, fwd ? rec.f_version : rec.b_version)
            << method << (fwd ? " F" : " B") << u.microbatch << " stage " << u.stage;
        EXPECT_EQ(u.horizon, fwd ? rec.f_horizon : rec.b_horizon) << method;
        ++checked;
      }
    }
    EXPECT_EQ(checked, 2 * p.num_stages * p.total_microbatches()) << method;
  }
}

// Random delays in message delivery change the timing, never the numbers.
TEST(Executor, DeterministicUnderRandomDeliveryDelays) {
  Problem f;
  // Chimera, GEMS: their all-reduces' sums are fixed by replica order, not by arrival; AvgPipe
  // (two pipelines of four): so are its elastic averages, on every copy and its reference.
  for (const char* method :
       {"1f1b", "pipedream", "pipeoptim", "paci", "pipedream-2bw", "chimera", "gems", "avgpipe"}) {
    const ir::Program p = Lowered(method, 4, 4, 3);
    auto reference = f.Run(p);
    ASSERT_TRUE(reference.ok());
    InProcessTransport slow(p.num_devices, TrainingSpace(p));
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
    CpuRunOptions options;
    options.transport = &slow;
    auto delayed = f.Run(p, options);
    ASSERT_TRUE(delayed.ok());
    EXPECT_EQ(delayed->weights, reference->weights) << method;
    EXPECT_EQ(delayed->copies, reference->copies) << method;
    EXPECT_EQ(delayed->references, reference->references) << method;
    EXPECT_EQ(delayed->exec.losses, reference->exec.losses) << method;
  }
}

// With one stage, methods whose horizons and gaps all collapse to 0 are the plain optimizer.
// The test first checks that the program really has no prediction, correction or stale version
// (cases with a nonzero horizon at D = 1 are in method_reference_test's OneStage suite).
TEST(Executor, OneStageWithoutHorizonsIsThePlainOptimizer) {
  Problem f;
  for (const char* method :
       {"gpipe", "1f1b", "pipedream", "pipedream-2bw", "pipeoptim", "pipemare", "spectrain"}) {
    const ir::Program p = Lowered(method, 1, 3, 2);
    for (const ir::Action& a : p.devices[0]) {
      if (!ir::UsesWeights(a.kind)) continue;
      EXPECT_TRUE(a.weights.value == 0 && a.weights.source != ir::WeightSource::kBufferOlder)
          << method << ": " << ir::ActionToken(a, false) << " is not the current weights";
    }
    const bool per_minibatch = std::string(method) == "gpipe" || std::string(method) == "1f1b" ||
                               std::string(method) == "pipedream-2bw";
    auto r = f.Run(p);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const auto stages = f.Stages(1);
    auto w = testing::StageSlices(stages, f.model->Init(3));
    auto opt = models::Optimizer::Create(Sgdm(), stages[0].num_params()).value();
    const int32_t group = per_minibatch ? 3 : 1;
    for (int32_t first = 0; first < 6; first += group) {
      std::vector<std::vector<float>> g = {std::vector<float>(w[0].size(), 0.0f)};
      for (int32_t j = first; j < first + group; ++j)
        testing::AccumulateGradients(stages, w, *f.loader, j, kMicrobatch, 1.0f / group, g);
      opt->Step(w[0], g[0], 0.05);
    }
    EXPECT_EQ(r->weights, w) << method;
  }
}

// Once a program runs, nothing is allocated per microbatch: a program three times as long
// allocates exactly as often (every allocation of the process is counted).
TEST(Executor, AllocatesNothingPerMicrobatch) {
  Problem f;
  // Chimera, GEMS (D = 2: two copies of each stage): their all-reduces allocate nothing either;
  // nor do AvgPipe's elastic averages (two pipelines of two stages, one average per step).
  for (const char* method : {"1f1b", "pipedream", "pipeoptim", "pipemare", "zb-h2", "paci",
                             "chimera", "gems", "avgpipe"}) {
    const bool two = std::string(method) == "chimera" || std::string(method) == "gems" ||
                     std::string(method) == "avgpipe";
    int64_t counts[3];  // a first run (not compared: one-time set-up), then 2 and 6 minibatches
    for (int k = 0; k < 3; ++k) {
      const ir::Program p = Lowered(method, two ? 2 : 3, 4, k < 2 ? 2 : 6);
      const auto stages = f.Stages(p.num_stages);
      const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
      std::vector<std::unique_ptr<CpuDevice>> cpus;
      std::vector<Device*> devices;
      ExecutorConfig config;
      for (int32_t d = 0; d < p.num_devices; ++d) {
        std::vector<CpuStageSpec> specs;
        for (int32_t s = 0; s < p.num_stages; ++s)
          if (p.holds(d, s)) specs.push_back({s, stages[s], Sgdm()});
        auto cpu = CpuDevice::Create(std::move(specs)).value();
        ASSERT_TRUE(cpu->Prepare({&p, &plan, d, kMicrobatch, 0, true}).ok());
        devices.push_back(cpu.get());
        cpus.push_back(std::move(cpu));
        config.local_devices.push_back(d);
      }
      LoaderFeed feed(*f.loader, kMicrobatch, 0);
      InProcessTransport transport(p.num_devices, TrainingSpace(p));
      feed.Input(0);  // the loader caches its first epoch's order
      pipecast::testing::CountAllocations count;
      auto r = Execute(p, plan, devices, feed, transport, config);
      counts[k] = count.count();
      ASSERT_TRUE(r.ok()) << r.status().message();
    }
    EXPECT_EQ(counts[2], counts[1]) << method << ": allocations grow with the microbatches";
  }
}

TEST(Executor, MissingMessageHitsTheDeadlineAndNamesEveryDevice) {
  Problem f;
  ir::Program p = Lowered("1f1b", 2, 2, 1);
  // Drop device 0's second activation send.
  auto& d0 = p.devices[0];
  for (size_t i = 0, seen = 0; i < d0.size(); ++i) {
    if (d0[i].kind == ir::ActionKind::kSendActivation && seen++ == 1) {
      d0.erase(d0.begin() + static_cast<long>(i));
      break;
    }
  }
  CpuRunOptions options;
  options.config.deadline = std::chrono::milliseconds(200);
  auto r = f.Run(p, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  const std::string& msg = r.status().message();
  // Both devices report what they wait for (whichever deadline expires first stops the other).
  EXPECT_NE(msg.find("waited 200 ms for the"), std::string::npos) << msg;
  EXPECT_NE(msg.find("device 1: at action 5 (1F1), after 1RA1: device 1 "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("the activation of microbatch 1 for stage 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("device 0: at action 6 (0B1), after 0RG1: device 0 "), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("the gradient of microbatch 1 for stage 0"), std::string::npos) << msg;
}

// Inputs that turn microbatch 2's loss into NaN.
class NanFeed : public DataFeed {
 public:
  explicit NanFeed(const models::Loader& l) : real_(l, kMicrobatch, 0), nan_(real_.rows() * 12) {
    std::fill(nan_.begin(), nan_.end(), std::nanf(""));
  }
  std::span<const float> Input(int32_t mb) override { return mb == 2 ? nan_ : real_.Input(mb); }
  std::span<const int32_t> Labels(int32_t mb) override { return real_.Labels(mb); }

 private:
  LoaderFeed real_;
  std::vector<float> nan_;
};

TEST(Executor, NanLossStopsTheRunNamingMethodStageAndMicrobatch) {
  Problem f;
  NanFeed feed(*f.loader);
  auto r = f.Run(Lowered("pipedream", 3, 2, 2), {}, &feed);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNonFinite);
  EXPECT_NE(r.status().message().find("NaN or Inf in the loss of microbatch 2: pipedream, "
                                      "device 2, stage 2"),
            std::string::npos)
      << r.status().message();
}

// A device that fails when it is synchronised (a stand-in for a CUDA error).
class FailingDevice : public DeviceWrapper {
 public:
  using DeviceWrapper::DeviceWrapper;
  Status Synchronize(Clock::time_point) override { return DeviceError("injected: device lost"); }
};

TEST(Executor, DeviceErrorsKeepTheirCodeAndTheOthersStop) {
  Problem f;
  std::vector<std::unique_ptr<FailingDevice>> wrappers;
  CpuRunOptions options;
  options.config.deadline = std::chrono::milliseconds(2000);
  options.wrap = [&](int32_t d, Device* cpu) -> Device* {
    if (d != 1) return cpu;
    wrappers.push_back(std::make_unique<FailingDevice>(cpu));
    return wrappers.back().get();
  };
  auto r = f.Run(Lowered("1f1b", 3, 4, 2), options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeviceError) << r.status().message();
  EXPECT_NE(r.status().message().find("injected: device lost"), std::string::npos);
  EXPECT_NE(r.status().message().find("device 1: finished: injected"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace pipecast::runtime
