// The closed forms of the GPipe, Megatron-LM and Zero Bubble papers (docs/metrics.md), reproduced
// exactly.
#include <gtest/gtest.h>

#include <algorithm>
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
  const std::string method = c.method;
  if (method == "zb-h2" || method == "zb-2p" || method == "zb-v") {
    // These fill every stage completely: all spans are equal and have no idle time.
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

// The greedy ZB-1p / ZB-2p and ZB-V by hand, p = 4, m = 8, T_F = T_B = T_W = 1. Every stage does
// 8 x (F + I + W) = 24 units of work. ZB-1p keeps 1F1B's memory and, as ZB-H1, stage 0 waits
// (p - 1)(T_F + T_B - T_W) = 3 for gradients: span 27, rate 3/27. ZB-2p starts stage k at k
// (each F_0 waits for the stage before) and never idles after: spans 24, makespan 24 + 3 = 27.
// ZB-V's passes are chunks of half a stage (0.5 each, 2 x 8 x 3 of them = 24 per device); device
// k starts at 0.5k and never idles: spans 24, makespan 24 + 0.5 x 3 = 25.5. The same at p = 8,
// m = 24: 72 of work, ZB-1p idles 7, ZB-2p ends at 72 + 7, ZB-V at 72 + 3.5.
INSTANTIATE_TEST_SUITE_P(HandWorked, ZeroBubbleClosedForm,
                         ::testing::Values(ZbCase{"zb-1p", 4, 8, 27, 27, 3, 3.0 / 27},
                                           ZbCase{"zb-2p", 4, 8, 27, 24, 0, 0},
                                           ZbCase{"zb-v", 4, 8, 25.5, 24, 0, 0},
                                           ZbCase{"zb-1p", 8, 24, 79, 79, 7, 7.0 / 79},
                                           ZbCase{"zb-2p", 8, 24, 79, 72, 0, 0},
                                           ZbCase{"zb-v", 8, 24, 75.5, 72, 0, 0}),
                         ZbName);

// The zero-bubble README's bubble rates at T_F = T_B = T_W, as Megatron's bubble (b) = (makespan
// - ideal) / ideal with ideal = m(T_F + T_B + T_W): 1F1B (p-1)/m and ZB-1p (p-1)/(3m) exactly;
// ZB-2p and ZB-V "0": no stage idles within its span (exactly 0 for m >= 2p - 1 and m >= 2p), so
// (b) is only the start-up skew of one flushed iteration, (p-1)T_F/(3m T) for ZB-2p and half
// that for ZB-V, which vanishes as m grows. Activation memory relative to 1F1B's peak (p whole
// microbatches on stage 0): 1x, 1x, 2x and 1x.
TEST(ZeroBubbleFamily, ReadmeBubbleRatesAndMemoryOverAGrid) {
  auto peak = [](const SimResult& r) {
    double most = 0;
    for (const StageMetrics& s : r.stages) most = std::max(most, s.peak_activations_microbatches);
    return most;
  };
  auto max_idle = [](const SimResult& r) {
    TimeNs most = 0;
    for (const StageMetrics& s : r.stages) most = std::max(most, s.span() - s.busy);
    return Units(most);
  };
  for (int32_t p = 2; p <= 8; ++p) {
    for (int32_t m = p; m <= 3 * p + 1; ++m) {
      const std::string at = "p=" + std::to_string(p) + " m=" + std::to_string(m);
      const auto one_f_one_b = Simulated("1f1b", p, m, 1, {}, 1, 2).result;
      EXPECT_NEAR(one_f_one_b.bubble.overhead_vs_ideal, (p - 1.0) / m, 1e-12) << at;
      const double base = peak(one_f_one_b);
      EXPECT_EQ(base, p) << at;
      const auto one_p = Simulated("zb-1p", p, m, 1, {}, 1, 1, 1).result;
      EXPECT_NEAR(one_p.bubble.overhead_vs_ideal, (p - 1.0) / (3 * m), 1e-12) << at;
      EXPECT_DOUBLE_EQ(max_idle(one_p), p - 1) << at;
      EXPECT_EQ(peak(one_p), base) << at;
      const auto two_p = Simulated("zb-2p", p, m, 1, {}, 1, 1, 1).result;
      EXPECT_LE(two_p.bubble.overhead_vs_ideal, (p - 1.0) / (3 * m) + 1e-12) << at;
      EXPECT_LE(peak(two_p), 2 * base) << at;
      if (m >= 2 * p - 1) {
        EXPECT_EQ(max_idle(two_p), 0) << at;
        EXPECT_EQ(two_p.bubble.zb_rate, 0) << at;
        EXPECT_DOUBLE_EQ(Units(two_p.makespan), 3.0 * m + p - 1) << at;
      }
      if (m >= 2 * p) {
        EXPECT_EQ(peak(two_p), 2 * base) << at;
      }
      const auto v = Simulated("zb-v", p, m, 1, {}, 1, 1, 1).result;
      EXPECT_LE(peak(v), base) << at;
      if (m >= 2 * p) {
        EXPECT_EQ(max_idle(v), 0) << at;
        EXPECT_EQ(v.bubble.zb_rate, 0) << at;
        EXPECT_DOUBLE_EQ(Units(v.makespan), 3.0 * m + (p - 1) / 2.0) << at;
        EXPECT_NEAR(v.bubble.overhead_vs_ideal, (p - 1.0) / (6 * m), 1e-12) << at;
        EXPECT_EQ(peak(v), base) << at;
      }
    }
  }
}

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
  // ZB-1p holds 1F1B's stage-0 peak p on every stage; ZB-2p twice that; ZB-V's device holds 2p
  // chunk-microbatches of half a stage each, p in whole microbatches.
  EXPECT_EQ(PeakActivations(Simulated("zb-1p", 4, 8, 1, {}, 1, 1, 1).result), (V{4, 4, 4, 4}));
  EXPECT_EQ(PeakActivations(Simulated("zb-2p", 4, 8, 1, {}, 1, 1, 1).result), (V{8, 8, 8, 8}));
  EXPECT_EQ(PeakActivations(Simulated("zb-v", 4, 8, 1, {}, 1, 1, 1).result), (V{4, 4, 4, 4}));
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
