// Invariants over random D, M, N and random per-stage costs, for every method: every action
// runs once, dependencies are respected, a device does one thing at a time, bubbles lie in
// [0, 1], results repeat exactly, and asynchronous idle share shrinks as N grows.
#include <gtest/gtest.h>

#include <random>

#include "common/generators.h"
#include "common/lower.h"
#include "sim/engine.h"
#include "sim/sim_test_util.h"

namespace pipecast::sim {
namespace {

using testing::RandomCosts;

using ir::Action;
using ir::ActionKind;

struct Case {
  std::string method;
  int32_t d, m, n;
};

ir::Program RandomProgram(const std::string& method, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> dd(1, 8), mm(1, 12), nn(1, 4);
  ir::GenerateOptions o{method, dd(rng), mm(rng), nn(rng), 1, {}};
  if (method == "pipedream-2bw") o.microbatches = std::max(o.microbatches, o.devices);
  if (method == "interleaved") {
    o.microbatches = o.devices * (1 + o.microbatches % 3);
    o.params["chunks"] = std::to_string(1 + o.microbatches % 3);
  }
  if (method == "paci") o.params["accumulation"] = std::to_string(1 + mm(rng) % 5);
  if (method == "chimera" || method == "gems") o.devices += o.devices % 2;  // device pairs
  auto p = ir::Generate(o);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return ir::InsertCommunication(*p);
}

TEST(Properties, InvariantsHoldForRandomInputs) {
  std::mt19937_64 rng(20261130);
  for (const ir::MethodInfo& info : ir::Methods()) {
    for (int iter = 0; iter < 25; ++iter) {
      const ir::Program p = RandomProgram(info.name, rng);
      const CostModel c = RandomCosts(p, rng);
      auto r = Simulate(p, c);
      ASSERT_TRUE(r.ok()) << info.name << ": " << r.status().message();
      const int32_t total = p.total_microbatches();
      std::vector<TimeNs> f_end(p.num_stages * total, -1), b_end(p.num_stages * total, -1);
      std::vector<TimeNs> f_start(p.num_stages * total, -1), b_start(p.num_stages * total, -1);
      for (int32_t d = 0; d < p.num_devices; ++d) {
        TimeNs prev_end = 0;
        for (size_t i = 0; i < p.devices[d].size(); ++i) {
          const Action& a = p.devices[d][i];
          const ActionTiming& t = r->timing[d][i];
          ASSERT_LE(t.start, t.end);
          if (!ir::IsCompute(a.kind) && a.kind != ActionKind::kStep) continue;
          // One thing at a time, in program order.
          EXPECT_GE(t.start, prev_end) << info.name << " device " << d << " action " << i;
          prev_end = t.end;
          const size_t slot = static_cast<size_t>(a.stage) * total + a.microbatch;
          if (a.kind == ActionKind::kForward) {
            EXPECT_EQ(f_end[slot], -1) << "F runs once";
            f_start[slot] = t.start;
            f_end[slot] = t.end;
          } else if (ir::IsBackward(a.kind)) {
            EXPECT_EQ(b_end[slot], -1) << "B runs once";
            b_start[slot] = t.start;
            b_end[slot] = t.end;
          }
        }
      }
      // Dependencies: F(s, j) after F(s-1, j); B(s, j) after B(s+1, j) and after F(s, j).
      for (int32_t s = 0; s < p.num_stages; ++s) {
        for (int32_t j = 0; j < total; ++j) {
          const size_t x = static_cast<size_t>(s) * total + j;
          ASSERT_GE(f_end[x], 0) << info.name << " F missing";
          ASSERT_GE(b_end[x], 0) << info.name << " B missing";
          if (s > 0) {
            EXPECT_GE(f_start[x], f_end[x - total]);
          }
          if (s + 1 < p.num_stages) {
            EXPECT_GE(b_start[x], b_end[x + total]);
          }
          EXPECT_GE(b_start[x], f_end[x]);
        }
      }
      for (double b : {r->bubble.idle_fraction, r->bubble.zb_rate}) {
        EXPECT_GE(b, 0.0) << info.name;
        EXPECT_LE(b, 1.0) << info.name;
      }
      EXPECT_GE(r->bubble.overhead_vs_ideal, 0.0);
      // Identical on repeat.
      auto again = Simulate(p, c);
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(again->makespan, r->makespan);
      EXPECT_EQ(again->timing, r->timing);
      EXPECT_EQ(again->stages[0].peak_memory_bytes, r->stages[0].peak_memory_bytes);
    }
  }
}

TEST(Properties, AsynchronousIdleShareShrinksWithMinibatches) {
  for (const ir::MethodInfo& info : ir::Methods()) {
    if (!info.asynchronous) continue;
    double previous = 1.0;
    for (int32_t n : {1, 2, 4, 8, 16}) {
      auto p = ir::Generate({info.name, 4, 4, n, 1, {}});
      ASSERT_TRUE(p.ok());
      const ir::Program l = ir::InsertCommunication(*p);
      const int32_t chunks = l.num_stages / 4;  // WPipe: two chunks per device, half the cost
      auto r = Simulate(l, UniformCostModel(l.num_stages, 100 / chunks, 200 / chunks));
      ASSERT_TRUE(r.ok());
      EXPECT_LT(r->bubble.idle_fraction, previous) << info.name << " N=" << n;
      previous = r->bubble.idle_fraction;
    }
    // WPipe's one step per window makes G0's next forwards wait for G1's flush: a window takes
    // at least D + 2(M + D - 1) chunk passes for 4M of work, 18 for 16 at M = D = 4, so its idle
    // share stays above 1/9 (docs/methods.md); only the shrinking is asserted for it.
    if (info.name != "wpipe") EXPECT_LT(previous, 0.1) << info.name;
  }
}

}  // namespace
}  // namespace pipecast::sim
