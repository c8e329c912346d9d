// Programs with replicas in the simulator: Chimera's closed forms (Li and Hoefler, SC'21; the
// pipeline survey's Table 3), the ring all-reduce's cost worked by hand, and data parallelism
// against one pipeline.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/format_text.h"
#include "common/generators.h"
#include "common/lower.h"
#include "common/scenario.h"
#include "common/scenario_writer.h"
#include "sim/cost_builder.h"
#include "sim/engine.h"
#include "sim/sim_test_util.h"

namespace pipecast::sim {
namespace {

using testing::kUnit;
using testing::Simulated;
using testing::Units;

// Simulates `method` (D stages, M microbatches, N minibatches) at unit times with every stage
// holding `weights` bytes and `activation` bytes per microbatch in flight.
Result<SimResult> SimulateSized(const std::string& method, int32_t d, int32_t m, int32_t n,
                                int64_t weights, int64_t activation) {
  auto program = ir::Generate({method, d, m, n, 1, {}});
  if (!program.ok()) return program.status();
  CostModel c = testing::UnitCosts(*program, 1, 1);
  for (StageCost& s : c.stages) {
    s.weight_bytes = weights;
    s.activation_bytes = activation;
  }
  return Simulate(ir::InsertCommunication(*program), c);
}

// Two stages at T_F = T_B = kUnit, weights of `weights` bytes, the link's latency and bandwidth;
// `options` lowered and simulated.
Result<SimResult> SimulateOnLink(const ir::GenerateOptions& options, int64_t weights,
                                 TimeNs latency, double bandwidth) {
  auto program = ir::Generate(options);
  if (!program.ok()) return program.status();
  CostModel c = UniformCostModel(program->num_stages, kUnit, kUnit);
  for (StageCost& s : c.stages) s.weight_bytes = weights;
  c.link.latency = latency;
  c.link.bandwidth = bandwidth;
  return Simulate(ir::InsertCommunication(*program), c);
}

// Bubble share (a), 1 - busy / (devices x makespan), is (D-2)/(2N+D-2) with T_F = T_B and
// N = D microbatches per iteration: D - 2 idle slots against 2N busy ones per device.
TEST(Chimera, BubbleShareIsTheClosedForm) {
  struct Case {
    int32_t d, n;
    double bubble;
  };
  for (const Case& c : {Case{4, 4, 0.2}, Case{8, 8, 6.0 / 22}, Case{6, 6, 4.0 / 16}}) {
    const testing::Run run = Simulated("chimera", c.d, c.n, 1, {});
    EXPECT_NEAR(run.result.bubble.idle_fraction, c.bubble, 1e-12) << "D=" << c.d;
    EXPECT_DOUBLE_EQ(Units(run.result.makespan), 2.0 * c.n + c.d - 2) << "D=" << c.d;
  }
  // Against 1F1B's (D-1)/(M+D-1) on the same microbatches: 3/7 and 7/15.
  EXPECT_NEAR(Simulated("1f1b", 4, 4, 1, {}).result.bubble.idle_fraction, 3.0 / 7, 1e-12);
  EXPECT_NEAR(Simulated("1f1b", 8, 8, 1, {}).result.bubble.idle_fraction, 7.0 / 15, 1e-12);
}

// More microbatches than stages: one merged unit keeps the closed form for any N (no bubbles
// between units), where the paper's direct concatenation of basic units pays the fill and drain
// of every unit: 2 units of D = 4 at N = 8 take 2 x 10 slots for 16 busy ones.
TEST(Chimera, MergedUnitKeepsTheClosedFormBeyondOneBasicUnit) {
  for (const auto& [d, n] : {std::pair{4, 8}, {4, 16}, {8, 16}, {8, 32}}) {
    const testing::Run merged = Simulated("chimera", d, n, 1, {});
    EXPECT_NEAR(merged.result.bubble.idle_fraction, (d - 2.0) / (2.0 * n + d - 2), 1e-12)
        << "D=" << d << " N=" << n;
  }
  const testing::Run direct = Simulated("chimera", 4, 8, 1, {{"units", "direct"}});
  EXPECT_DOUBLE_EQ(Units(direct.result.makespan), 20);
  EXPECT_NEAR(direct.result.bubble.idle_fraction, 1 - 16.0 / 20, 1e-12);
}

// Chimera's general form: 2f = 4 pipelines on D = 4 devices, shifted by D/f = 2, fill each
// other's bubbles: 8 microbatches take 16 units, all of them busy (no bubble), for 4 weight
// copies per device. At D = 8, N = 16 a merged unit of four pipelines would cross a link's
// messages, so it runs as two basic units of 8 (18 units each: 36 for 32 busy), against 38 for
// two pipelines in one merged unit.
TEST(Chimera, FourPipelinesFillTheBubbles) {
  const testing::Run four = Simulated("chimera", 4, 8, 1, {{"pipelines", "4"}});
  EXPECT_DOUBLE_EQ(Units(four.result.makespan), 16);
  EXPECT_DOUBLE_EQ(four.result.bubble.idle_fraction, 0);
  const testing::Run eight = Simulated("chimera", 8, 16, 1, {{"pipelines", "4"}});
  EXPECT_DOUBLE_EQ(Units(eight.result.makespan), 36);
  EXPECT_EQ(eight.program.params.at("units"), "direct");
  EXPECT_DOUBLE_EQ(Units(Simulated("chimera", 8, 16, 1, {}).result.makespan), 38);
  auto r = SimulateSized("chimera", 8, 16, 1, 1000, 1);
  ASSERT_TRUE(r.ok());
  auto four_sized = ir::Generate({"chimera", 8, 16, 1, 1, {{"pipelines", "4"}}});
  ASSERT_TRUE(four_sized.ok());
  EXPECT_EQ(four_sized->replicas, 4);
  for (int32_t d = 0; d < 8; ++d) EXPECT_EQ(four_sized->stages_on_device(d), 4) << d;
  EXPECT_FALSE(ir::Generate({"chimera", 6, 6, 1, 1, {{"pipelines", "4"}}}).ok());  // f=2 ∤ 3
}

// Every device holds two stages (2 M_θ) and at most D, at least D/2 + 1 microbatches' stage
// activations at its peak (the survey's [(D/2+1) M_a, D M_a]).
TEST(Chimera, WeightsTwiceAndActivationsWithinTheSurveysRange) {
  constexpr int64_t kWeights = 7000, kActivation = 1000;
  for (int32_t d : {4, 8}) {
    auto r = SimulateSized("chimera", d, d, 1, kWeights, kActivation);
    ASSERT_TRUE(r.ok()) << r.status().message();
    for (const StageMetrics& m : r->stages) {
      EXPECT_EQ(m.peak_breakdown.weights, 2 * kWeights) << "D=" << d << " device " << m.stage;
      const int64_t in_flight = m.peak_breakdown.activations / kActivation;
      EXPECT_GE(in_flight, d / 2 + 1) << "D=" << d << " device " << m.stage;
      EXPECT_LE(in_flight, d) << "D=" << d << " device " << m.stage;
    }
  }
}

// GEMS-MAST, one pair (microbatch 0 down, 1 up), T_F = T_B = 1: the down copy's F(d) runs in
// [d, d+1] and its B(d) in [2D-1-d, 2D-d]; the up copy's stage s sits on device D-1-s, which
// its down B frees at D+1+s, when stage s-1's F has also arrived, so F_up(s) runs in
// [D+1+s, D+2+s]; its backward comes back down from device 0 in [2D+1, 2D+2] to device D-1
// in [3D, 3D+1]. Makespan 3D + 1, 4 busy units per device: a bubble share 1 - 4/(3D+1), 9/13 at
// D = 4 and 21/25 at D = 8 (the survey's rougher (D-1)/(D+1/2) says 2/3 and 14/17). Every device
// holds one microbatch's activations at most (M_a) and two stages' weights.
TEST(Gems, OnePairByHand) {
  constexpr int64_t kWeights = 500, kActivation = 30;
  for (int32_t d : {4, 8}) {
    const testing::Run run = Simulated("gems", d, 2, 1, {});
    EXPECT_DOUBLE_EQ(Units(run.result.makespan), 3.0 * d + 1) << "D=" << d;
    EXPECT_NEAR(run.result.bubble.idle_fraction, 1 - 4.0 / (3 * d + 1), 1e-12) << "D=" << d;
    auto r = SimulateSized("gems", d, 4, 2, kWeights, kActivation);
    ASSERT_TRUE(r.ok()) << r.status().message();
    for (const StageMetrics& m : r->stages) {
      EXPECT_EQ(m.peak_breakdown.activations, kActivation) << "D=" << d << " device " << m.stage;
      EXPECT_EQ(m.peak_breakdown.weights, 2 * kWeights) << "D=" << d << " device " << m.stage;
    }
  }
}

// Two data-parallel copies of a 2-stage 1F1B pipeline, M = 2, T_F = T_B = u, link latency λ.
// Device 0 runs F0 [0, u], F1 [u, 2u]; device 1 F0 [u+λ, 2u+λ], B0 [2u+λ, 3u+λ], F1
// [3u+λ, 4u+λ], B1 [4u+λ, 5u+λ]; device 0 B0 [3u+2λ, 4u+2λ], B1 [5u+2λ, 6u+2λ]. So device 0
// ends its last B at 6u + 2λ, device 1 at 5u + λ. Stage 0's all-reduce then takes the ring time
// 2(R-1)/R · G / bandwidth + 2(R-1) λ = 2 · (G/2)/bw + 2λ with R = 2, and device 0's Step waits
// for it, so the makespan is 6u + 2λ + T_AR.
TEST(DataParallel, RingAllReduceExtendsTheStepByItsClosedForm) {
  constexpr TimeNs kLatency = 1000;
  constexpr int64_t kGradient = 1'000'000;  // bytes
  auto r = SimulateOnLink({"1f1b", 2, 2, 1, 1, {}, 2}, kGradient, kLatency, 1e9);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const TimeNs all_reduce = 2 * (kGradient / 2 * 1'000'000'000 / 1'000'000'000 + kLatency);
  EXPECT_EQ(all_reduce, 1'002'000);
  EXPECT_EQ(r->makespan, 6 * kUnit + 2 * kLatency + all_reduce);
}

// All-reduces run over the collective link when the scenario gives one (the inter-node network
// of data-parallel copies), point-to-point messages over the pipeline's link: the same two
// copies of a 2-stage 1F1B with stage gradients of 1 MB and a 1 GB/s collective link end at
// 6u + 2λ + 2 (500 µs + 7 µs); the collective keys round-trip through the scenario writer.
TEST(DataParallel, CollectiveLinkPricesTheAllReduce) {
  const char* kYaml = R"(pipeline: {stages: 2, microbatches: 2, data_parallel: 2}
costs: {forward: 12us, backward: 12us, weight_bytes: 1000000}
network: {latency: 1us, bandwidth: 100GB/s, collective_latency: 7us, collective_bandwidth: 1GB/s}
)";
  Result<ir::Scenario> s = ir::ParseScenario(kYaml, "c.yaml");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->collective_latency_ns, 7000);
  Result<CostModel> c = BuildCostModel(*s, 2);
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto program = ir::Generate({"1f1b", 2, 2, 1, 1, {}, 2});
  ASSERT_TRUE(program.ok());
  auto r = Simulate(ir::InsertCommunication(*program), *c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Messages are empty: 0 bytes at 100 GB/s, the latency only (λ = 1 µs).
  EXPECT_EQ(r->makespan, 6 * 12'000 + 2 * 1'000 + 2 * (500'000 + 7'000));
  Result<ir::Scenario> again = ir::ParseScenario(ir::FormatScenarioYaml(*s, "round trip"), "again.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->collective_latency_ns, 7000);
  EXPECT_EQ(again->collective_bandwidth, 1e9);
}

// Blocking collectives (how a measured `pipecast run` is simulated): a device waits at its
// all-reduce. Two copies of one stage, T_F = T_B = u, a given all-reduce time X: device 0 reduces
// after microbatch 0 and computes microbatch 1 before its Step, device 1 reduces after both of
// its microbatches (at 4u). On a collective channel device 0 computes on and the run ends at
// 4u + X; blocking, it waits from 2u to 4u + X and ends at 6u + X.
TEST(DataParallel, BlockingCollectivesWaitWhereTheyStand) {
  Result<ir::Program> p = ir::ParseProgramText(
      "devices 2\nstages 1\nreplicas 2\nplacement 0 1\nmicrobatch_replica 0 0 1 1\n"
      "microbatches 4\ndevice 0: F0 B0 AR0 F1 B1 S\ndevice 1: F2 B2 F3 B3 AR0 S\n",
      "blocking.txt");
  ASSERT_TRUE(p.ok()) << p.status().message();
  CostModel c = UniformCostModel(1, kUnit, kUnit);
  c.stages[0].all_reduce = 5000;
  auto channel = Simulate(*p, c);
  ASSERT_TRUE(channel.ok()) << channel.status().message();
  EXPECT_EQ(channel->makespan, 4 * kUnit + 5000);
  c.blocking_collectives = true;
  auto blocking = Simulate(*p, c);
  ASSERT_TRUE(blocking.ok()) << blocking.status().message();
  EXPECT_EQ(blocking->makespan, 6 * kUnit + 5000);
}

// A device list may describe every copy's devices: the second data-parallel copy on devices at
// half speed takes twice as long (2-stage 1F1B, M = 2: 6u on the fast copy, 12u on the slow
// one), and the run ends with the slow copy; a list of one copy's devices repeats it.
TEST(DataParallel, EveryCopyRunsOnItsOwnDevices) {
  const char* kEvery = R"(pipeline: {stages: 2, microbatches: 2, data_parallel: 2}
costs: {forward: 12us, backward: 12us}
devices: [{count: 2}, {count: 2, speed: 0.5}]
)";
  const char* kOne = R"(pipeline: {stages: 2, microbatches: 2, data_parallel: 2}
costs: {forward: 12us, backward: 12us}
devices: [{count: 1}, {count: 1, speed: 0.5}]
)";
  auto program = ir::Generate({"1f1b", 2, 2, 1, 1, {}, 2});
  ASSERT_TRUE(program.ok());
  const ir::Program lowered = ir::InsertCommunication(*program);
  auto makespan = [&](const char* yaml) -> TimeNs {
    Result<ir::Scenario> s = ir::ParseScenario(yaml, "d.yaml");
    EXPECT_TRUE(s.ok()) << s.status().message();
    Result<CostModel> c = BuildCostModel(*s, 2);
    EXPECT_TRUE(c.ok()) << c.status().message();
    auto r = Simulate(lowered, *c);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->makespan : -1;
  };
  EXPECT_EQ(makespan(kEvery), 12 * kUnit);
  // Stage 1 at half speed on both copies: F0 [0,u], F1 [u,2u] on stage 0; stage 1's F and B take
  // 2u each: F0 [u,3u], B0 [3u,5u], F1 [5u,7u], B1 [7u,9u]; stage 0's B1 [9u,10u].
  EXPECT_EQ(makespan(kOne), 10 * kUnit);
}

// A measured profile's collectives: given per-stage round times and blocking collectives, as
// `pipecast run --profile-out` writes them; they round-trip, and a bad mode is one message.
TEST(DataParallel, GivenCollectiveTimesAndBlockingModeFromAScenario) {
  const char* kYaml = R"(pipeline: {stages: 2, microbatches: 2, data_parallel: 2}
costs: {forward: 12us, backward: 12us, all_reduce: [3us, 5us]}
network: {collectives: blocking}
)";
  Result<ir::Scenario> s = ir::ParseScenario(kYaml, "m.yaml");
  ASSERT_TRUE(s.ok()) << s.status().message();
  Result<CostModel> c = BuildCostModel(*s, 2);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->blocking_collectives);
  EXPECT_EQ(c->stages[0].all_reduce, 3000);
  EXPECT_EQ(c->stages[1].all_reduce, 5000);
  // Stage 1's copies finish at 5u and reduce for 5 µs, stage 0's at 6u for 3 µs: 6u + 3 µs.
  auto program = ir::Generate({"1f1b", 2, 2, 1, 1, {}, 2});
  ASSERT_TRUE(program.ok());
  auto r = Simulate(ir::InsertCommunication(*program), *c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->makespan, 6 * 12'000 + 3'000);
  Result<ir::Scenario> again = ir::ParseScenario(ir::FormatScenarioYaml(*s, "round trip"), "a.yaml");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->blocking_collectives);
  ASSERT_TRUE(again->costs.has_value());
  EXPECT_EQ(again->costs->all_reduce_ns, (std::vector<int64_t>{3000, 5000}));
  Result<ir::Scenario> bad = ir::ParseScenario(
      "pipeline: {stages: 1, microbatches: 1}\ncosts: {forward: 1us, backward: 1us}\n"
      "network: {collectives: eager}\n",
      "b.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("b.yaml:3:"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("network.collectives must be blocking or overlapped"),
            std::string::npos);
}

// With free all-reduces, R copies run exactly like one pipeline: the same makespan and
// per-device memory, R times the samples.
TEST(DataParallel, FreeAllReducesRunLikeOnePipeline) {
  for (const std::string method : {"1f1b", "gpipe", "pipedream", "pipedream-2bw", "chimera"}) {
    auto one = ir::Generate({method, 4, 8, 3, 1, {}});
    auto three = ir::Generate({method, 4, 8, 3, 1, {}, 3});
    ASSERT_TRUE(one.ok() && three.ok()) << method;
    CostModel c = testing::UnitCosts(*one, 1, 2);
    for (StageCost& s : c.stages) {
      s.weight_bytes = 100;
      s.activation_bytes = 10;
    }
    auto a = Simulate(ir::InsertCommunication(*one), c);
    auto b = Simulate(ir::InsertCommunication(*three), c);
    ASSERT_TRUE(a.ok() && b.ok()) << method;
    EXPECT_EQ(a->makespan, b->makespan) << method;
    EXPECT_EQ(3 * a->samples, b->samples) << method;
    ASSERT_EQ(b->stages.size(), 3 * a->stages.size()) << method;
    for (size_t d = 0; d < b->stages.size(); ++d) {
      const StageMetrics& x = a->stages[d % a->stages.size()];
      EXPECT_EQ(b->stages[d].peak_memory_bytes, x.peak_memory_bytes) << method << " " << d;
      EXPECT_EQ(b->stages[d].versions, x.versions) << method << " " << d;
    }
  }
}

// AvgPipe's advance parameter spans 1F1B (a = 0) and AFAB (a >= M): each pipeline's order is
// exactly those methods' order, and the two pipelines average after every Step.
TEST(AvgPipe, AdvanceSpansOneFOneBAndAfab) {
  for (const auto& [advance, method] : {std::pair{"0", "1f1b"}, {"8", "gpipe"}, {"20", "gpipe"}}) {
    auto avg = ir::Generate({"avgpipe", 4, 8, 2, 1, {{"advance", advance}}});
    auto one = ir::Generate({method, 4, 8, 2, 1, {}});
    ASSERT_TRUE(avg.ok() && one.ok()) << avg.status().message();
    ASSERT_EQ(avg->num_devices, 8);
    EXPECT_EQ(avg->params.at("alpha"), "0.45");  // EASGD's beta / P
    // Pipeline 0 runs microbatches n·2M + j of minibatch n, the single pipeline n·M + j.
    auto tokens = [](const std::vector<ir::Action>& actions, int32_t per_minibatch) {
      std::string out;
      for (ir::Action a : actions) {
        if (a.kind == ir::ActionKind::kAverage) continue;
        if (a.microbatch >= 0) a.microbatch = a.microbatch / per_minibatch * 8 + a.microbatch % 8;
        out += ir::ActionToken(a, true) + " ";
      }
      return out;
    };
    for (int32_t d = 0; d < 4; ++d) {
      EXPECT_EQ(tokens(avg->devices[d], 16), tokens(one->devices[d], 8))
          << "advance " << advance << " device " << d;
    }
  }
  // a = 1 on D = 2, M = 3: stage 0 warms up with 2 forwards, stage 1 with 1.
  auto a1 = ir::Generate({"avgpipe", 2, 3, 1, 1, {{"advance", "1"}}});
  ASSERT_TRUE(a1.ok());
  EXPECT_EQ(ir::ProgramToText(*a1).find("device 1: F0 F1 B0 F2 B1 B2 S AV0\n") != std::string::npos,
            true)
      << ir::ProgramToText(*a1);
}

// Two pipelines of 2 stages, M = 1, T_F = T_B = u, latency λ: each pipeline runs F [0,u] on
// device 0, F [u+λ, 2u+λ] and B [2u+λ, 3u+λ] on device 1, B [3u+2λ, 4u+2λ] on device 0. Stage 1's
// copies average at 3u+λ for T_AV = 2(R-1)(⌈w/R⌉/bw + λ) over their weights w; the devices wait,
// so the second minibatch starts on device 1 no earlier than 3u+λ+T_AV; stage 0 averages at
// 4u+2λ. The makespan of two minibatches: device 0 free again at 4u+2λ+T_AV, then the second
// iteration takes 4u+2λ as the first, and its average T_AV: 8u + 4λ + 2 T_AV. Weights cost the
// reference copy as extra memory.
TEST(AvgPipe, BlockingAverageByHand) {
  constexpr TimeNs kLatency = 500;
  constexpr int64_t kWeights = 4'000'000;
  auto r = SimulateOnLink({"avgpipe", 2, 1, 2, 1, {}}, kWeights, kLatency, 2e9);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const TimeNs average = 2 * (kWeights / 2 / 2 + kLatency);  // ns at 2 bytes/ns
  EXPECT_EQ(r->makespan, 8 * kUnit + 4 * kLatency + 2 * average);
  for (const StageMetrics& m : r->stages) EXPECT_EQ(m.peak_breakdown.extra, kWeights);
}

}  // namespace
}  // namespace pipecast::sim
