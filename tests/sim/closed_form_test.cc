// The closed forms of the GPipe, Megatron-LM and Zero Bubble papers (docs/metrics.md), reproduced
// exactly.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "sim/sim_test_util.h"

namespace pipecast::sim {
namespace {

using testing::Simulated;
using testing::Units;

struct SyncCase {
  const char* method;
  int32_t d, m, chunks;
  double tb;
  double makespan, idle, overhead;
};

// A test name from a method and its sizes: "zb_h1_D4_M8" (names allow letters, digits and _).
std::string CaseName(const char* method, int32_t d, int32_t m) {
  std::string name = method;
  for (char& c : name) c = c == '-' ? '_' : c;
  return name + "_D" + std::to_string(d) + "_M" + std::to_string(m);
}

// How GoogleTest prints a case (in --gtest_list_tests and failures), instead of its bytes.
void PrintTo(const SyncCase& c, std::ostream* os) {
  *os << c.method << " D=" << c.d << " M=" << c.m << " v=" << c.chunks << " tB=" << c.tb
      << ": makespan " << c.makespan << ", idle " << c.idle << ", overhead " << c.overhead;
}

std::string SyncName(const ::testing::TestParamInfo<SyncCase>& info) {
  const SyncCase& c = info.param;
  return CaseName(c.method, c.d, c.m) + (c.chunks > 1 ? "_v" + std::to_string(c.chunks) : "") +
         (c.tb != 1 ? "_tB" + std::to_string(static_cast<int>(c.tb)) : "");
}

class SyncClosedForm : public ::testing::TestWithParam<SyncCase> {};

TEST_P(SyncClosedForm, MakespanAndBubbles) {
  const SyncCase& c = GetParam();
  std::map<std::string, std::string> params;
  if (c.chunks > 1) params["chunks"] = std::to_string(c.chunks);
  auto run = Simulated(c.method, c.d, c.m, 1, params, 1, c.tb);
  EXPECT_DOUBLE_EQ(Units(run.result.makespan), c.makespan);
  EXPECT_NEAR(run.result.bubble.idle_fraction, c.idle, 1e-6);
  EXPECT_NEAR(run.result.bubble.overhead_vs_ideal, c.overhead, 1e-6);
}

// Section 13.1, first table.
INSTANTIATE_TEST_SUITE_P(
    Reference, SyncClosedForm,
    ::testing::Values(SyncCase{"gpipe", 4, 8, 1, 1, 22, 6.0 / 22, 3.0 / 8},
                      SyncCase{"1f1b", 4, 8, 1, 1, 22, 6.0 / 22, 0.375},
                      SyncCase{"1f1b", 4, 8, 1, 2, 33, 6.0 / 22, 0.375},
                      SyncCase{"1f1b", 4, 4, 1, 1, 14, 6.0 / 14, 0.75},
                      SyncCase{"1f1b", 8, 32, 1, 2, 117, 21.0 / 117, 7.0 / 32},
                      SyncCase{"interleaved", 4, 8, 2, 1, 19, 3.0 / 19, 3.0 / 16},
                      SyncCase{"interleaved", 4, 8, 4, 1, 17.5, 0.085714, 0.09375},
                      SyncCase{"interleaved", 8, 32, 2, 2, 106.5, 0.098592, 7.0 / 64},
                      SyncCase{"interleaved", 4, 4, 2, 1, 11, 0.272727, 0.375}),
    SyncName);

struct ZbCase {
  const char* method;
  int32_t p, m;
  double makespan, span, idle_per_stage, rate;
};

class ZeroBubbleClosedForm : public ::testing::TestWithParam<ZbCase> {};

void PrintTo(const ZbCase& c, std::ostream* os) {
  *os << c.method << " p=" << c.p << " m=" << c.m << ": makespan " << c.makespan << ", span "
      << c.span << ", idle per stage " << c.idle_per_stage << ", rate " << c.rate;
}

std::string ZbName(const ::testing::TestParamInfo<ZbCase>& info) {
  return CaseName(info.param.method, info.param.p, info.param.m);
}

// T_F = T_B = T_W = 1; 1F1B runs a fused B + W of cost 2.
TEST_P(ZeroBubbleClosedForm, SpanIdleAndRate) {
  const ZbCase& c = GetParam();
  const bool split = std::string(c.method) != "1f1b";
  auto run = split ? Simulated(c.method, c.p, c.m, 1, {}, 1, 1, 1)
                   : Simulated(c.method, c.p, c.m, 1, {}, 1, 2);
  EXPECT_DOUBLE_EQ(Units(run.result.makespan), c.makespan);
  // The longest per-stage span (stage 0's) and its idle time.
  const StageMetrics* longest = &run.result.stages[0];
  for (const StageMetrics& s : run.result.stages)
    if (s.span() > longest->span()) longest = &s;
  EXPECT_DOUBLE_EQ(Units(longest->span()), c.span);
  EXPECT_DOUBLE_EQ(Units(longest->span() - longest->busy), c.idle_per_stage);
  if (std::string(c.method) == "zb-h2") {
    // ZB-H2 fills every stage completely: all spans are equal and have no idle time.
    for (const StageMetrics& s : run.result.stages)
      EXPECT_DOUBLE_EQ(Units(s.span()), c.span) << "stage " << s.stage;
  }
  EXPECT_NEAR(run.result.bubble.zb_rate, c.rate, 1e-6);
}

// Section 13.1, zero-bubble table.
INSTANTIATE_TEST_SUITE_P(Reference, ZeroBubbleClosedForm,
                         ::testing::Values(ZbCase{"1f1b", 4, 8, 33, 33, 9, 0.272727},
                                           ZbCase{"zb-h1", 4, 8, 27, 27, 3, 3.0 / 27},
                                           ZbCase{"zb-h2", 4, 8, 27, 24, 0, 0},
                                           ZbCase{"zb-h1", 8, 24, 79, 79, 7, 0.088608},
                                           ZbCase{"zb-h2", 8, 24, 79, 72, 0, 0},
                                           ZbCase{"1f1b", 8, 24, 93, 93, 21, 0.225806}),
                         ZbName);

std::vector<double> PeakActivations(const SimResult& r) {
  std::vector<double> v;
  for (const StageMetrics& s : r.stages) v.push_back(s.peak_activations_microbatches);
  return v;
}

// Section 13.1, peak activation memory in units of A.
TEST(PeakActivations, MatchReference) {
  using V = std::vector<double>;
  EXPECT_EQ(PeakActivations(Simulated("gpipe", 4, 8, 1, {}).result), (V{8, 8, 8, 8}));
  EXPECT_EQ(PeakActivations(Simulated("1f1b", 4, 8, 1, {}).result), (V{4, 3, 2, 1}));
  EXPECT_EQ(PeakActivations(Simulated("interleaved", 4, 8, 1, {{"chunks", "2"}}).result),
            (V{5.5, 4.5, 3.5, 2.5}));
  EXPECT_EQ(PeakActivations(Simulated("interleaved", 4, 8, 1, {{"chunks", "4"}}).result),
            (V{4.75, 4.25, 3.75, 3.25}));
  EXPECT_EQ(PeakActivations(Simulated("interleaved", 8, 32, 1, {{"chunks", "2"}}).result)[0], 11.5);
  EXPECT_EQ(PeakActivations(Simulated("zb-h1", 4, 8, 1, {}, 1, 1, 1).result), (V{4, 4, 4, 4}));
  EXPECT_EQ(PeakActivations(Simulated("zb-h2", 4, 8, 1, {}, 1, 1, 1).result), (V{7, 7, 7, 7}));
}

// The interleaved closed forms hold for any D, M (multiple of D) and v with unit costs:
// makespan M(tF+tB) + (D-1)(tF+tB)/v and peak activations ((D-k-1)*2 + (v-1)*D + 1)/v.
TEST(Interleaved, ClosedFormsOverAGrid) {
  for (int32_t d : {2, 3, 4, 6}) {
    for (int32_t v : {1, 2, 3, 4}) {
      for (int32_t groups : {2, 3}) {
        const int32_t m = d * groups;
        auto run = Simulated("interleaved", d, m, 1, {{"chunks", std::to_string(v)}});
        EXPECT_NEAR(Units(run.result.makespan), 2.0 * m + 2.0 * (d - 1) / v, 1e-9)
            << "D=" << d << " v=" << v << " M=" << m;
        for (int32_t k = 0; k < d; ++k) {
          EXPECT_NEAR(run.result.stages[k].peak_activations_microbatches,
                      std::min<double>(((d - k - 1) * 2.0 + (v - 1) * d + 1) / v, m), 1e-9)
              << "D=" << d << " v=" << v << " k=" << k;
        }
      }
    }
  }
}

// GPipe and 1F1B: makespan (M + D - 1)(tF + tB), idle share (D-1)/(M+D-1), for a grid.
TEST(Flush, ClosedFormsOverAGrid) {
  for (const char* method : {"gpipe", "1f1b"}) {
    for (int32_t d = 1; d <= 6; ++d) {
      for (int32_t m = 1; m <= 10; ++m) {
        auto run = Simulated(method, d, m, 1, {}, 1, 2);
        EXPECT_DOUBLE_EQ(Units(run.result.makespan), 3.0 * (m + d - 1)) << method;
        EXPECT_NEAR(run.result.bubble.idle_fraction, (d - 1.0) / (m + d - 1), 1e-12);
      }
    }
  }
}

// WPipe against PipeDream-2BW on the same model cut for D = 4 devices, M = 8, N = 5 minibatches,
// tF = tB = 1 per device: 2BW's stage k is one stage, WPipe's device k holds two chunks of half
// the size (UnitCosts splits tF = tB = 1 over the chunks; half the weight bytes each). Closed forms
// (docs/methods.md):
//  - 2BW: every microbatch of minibatch b reads version max(0, b - 1), applied by step b + 1, so
//    the delay is 0 in the first minibatch and 1 after: mean (N - 1) / N, max 1.
//  - WPipe: the second group is never stale (gap 0, delay 0) and the first is one step stale
//    (gap 1, delay 1), and each holds half of a device's microbatch passes: gap and delay means
//    1/2, maxima 1, half the microbatches cross a step; N + 1 steps.
//  - Both hold two copies of a device's weights at the peak: 2 x 1000 bytes.
//  - With M >= 3D/2 - 1 the first group's forward wave and the second group's flushed 1F1B fit
//    in a window of 2M chunk passes per device (M(tF + tB) = 16 units), so one more minibatch
//    lengthens either run by 16 units: both stream M samples per 16 units in steady state.
TEST(WPipe, StalenessAndWeightMemoryAgainstTwoBuffers) {
  constexpr int32_t kD = 4, kM = 8, kN = 5;
  auto run = [&](const char* method, double t, int64_t weight_bytes, int32_t n) {
    ir::GenerateOptions o{method, kD, kM, n, 1, {}};
    auto program = ir::Generate(o);
    EXPECT_TRUE(program.ok()) << program.status().message();
    const ir::Program p = ir::InsertCommunication(*program);
    CostModel c = testing::UnitCosts(p, t, t, 0);
    for (StageCost& s : c.stages) s.weight_bytes = weight_bytes;
    auto r = Simulate(p, c);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return std::move(*r);
  };
  const SimResult two = run("pipedream-2bw", 1, 1000, kN);
  const SimResult wpipe = run("wpipe", 1, 500, kN);
  for (int32_t d = 0; d < kD; ++d) {
    const ir::DeviceVersionStats& a = two.stages[d].versions;
    const ir::DeviceVersionStats& w = wpipe.stages[d].versions;
    EXPECT_DOUBLE_EQ(a.delay_mean, (kN - 1.0) / kN) << "device " << d;
    EXPECT_EQ(a.delay_max, 1);
    EXPECT_EQ(a.live_versions_max, 2);
    EXPECT_EQ(a.steps, kN);
    EXPECT_DOUBLE_EQ(w.delay_mean, 0.5) << "device " << d;
    EXPECT_DOUBLE_EQ(w.gap_mean, 0.5);
    EXPECT_DOUBLE_EQ(w.crossing_fraction, 0.5);
    EXPECT_EQ(w.delay_max, 1);
    EXPECT_EQ(w.gap_max, 1);
    EXPECT_EQ(w.live_versions_max, 2);
    EXPECT_EQ(w.steps, kN + 1);
    EXPECT_EQ(w.microbatches, 2 * kM * kN);
    EXPECT_EQ(two.stages[d].peak_breakdown.weights, 2 * 1000);
    EXPECT_EQ(wpipe.stages[d].peak_breakdown.weights, 2 * 1000);
  }
  const SimResult two_more = run("pipedream-2bw", 1, 1000, kN + 1);
  const SimResult wpipe_more = run("wpipe", 1, 500, kN + 1);
  EXPECT_DOUBLE_EQ(Units(two_more.makespan - two.makespan), 2 * kM);
  EXPECT_DOUBLE_EQ(Units(wpipe_more.makespan - wpipe.makespan), 2 * kM);
  // The steady throughput (docs/metrics.md) is that rate for 2BW. For WPipe, whose minibatches
  // complete with the second group's backwards, it is the rate up to where that group's flush
  // ends in the first window (which has no first-group backwards) against a later one: within a
  // unit of N - 1 windows of 16 units, where counting the first group's backwards, which end
  // in the short last window, would read about a quarter higher.
  const double rate = kM / (2 * kM * testing::kUnit * 1e-9);
  for (const SimResult* r : {&two, &two_more})
    EXPECT_NEAR(r->steady_throughput_samples_per_s, rate, 1e-6 * rate);
  for (const auto& [r, n] : {std::pair{&wpipe, kN}, std::pair{&wpipe_more, kN + 1}}) {
    const double window_units = (n - 1) * kM / r->steady_throughput_samples_per_s /
                                (testing::kUnit * 1e-9);  // C_N - C_1 in units
    EXPECT_NEAR(window_units, 2 * kM * (n - 1), 1 + 1e-9) << "N = " << n;
  }
}

}  // namespace
}  // namespace pipecast::sim
