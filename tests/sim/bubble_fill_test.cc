// Bubble filling (sim/bubble_fill.h) against a timeline and placements worked by hand.
#include "sim/bubble_fill.h"

#include <gtest/gtest.h>

#include "common/generators.h"
#include "common/lower.h"
#include "sim/engine.h"

namespace pipecast::sim {
namespace {

struct Timeline {
  ir::Program program;  // lowered
  SimResult result;
};

// `method` at D = 2, M = 2, F = 10, B = 20, free steps and links, with its timeline.
Timeline Simulated(const std::string& method, int32_t minibatches) {
  auto p = ir::Generate({method, 2, 2, minibatches, 1, {}});
  EXPECT_TRUE(p.ok());
  Timeline t{ir::InsertCommunication(*p), {}};
  auto r = Simulate(t.program, UniformCostModel(2, 10, 20), {.record_timeline = true});
  EXPECT_TRUE(r.ok());
  t.result = std::move(*r);
  return t;
}

// GPipe, D = 2, M = 2, one minibatch, F = 10, B = 20, free steps and links:
//   device 0: F0 [0,10] F1 [10,20] B0 [50,70] B1 [70,90] S at 90: one bubble [20,50] (30 ns);
//   device 1: F0 [10,20] F1 [20,30] B0 [30,50] B1 [50,70] S at 70: one bubble [0,10] (10 ns).
// Work: A, 12 ns per step; C, 5 ns per backward (two backwards per step).
//   device 0: A -> [20,32], C -> [32,37], C -> [37,42]: all hidden (22 ns);
//   device 1: A does not fit (exposed 12 ns), C -> [0,5], C -> [5,10]: 10 ns hidden.
// The step waits for device 1's 12 exposed ns: 90 + 12 = 102.
TEST(BubbleFill, FirstFitOnAGpipeTimelineByHand) {
  const Timeline t = Simulated("gpipe", 1);
  const ir::Program& lowered = t.program;
  const SimResult* r = &t.result;
  ASSERT_EQ(r->makespan, 90);
  const std::vector<ir::BubbleWorkItem> work = {{"A", {12, 12}, false}, {"C", {5, 5}, true}};
  auto fill = FillBubbles(lowered, *r, work);
  ASSERT_TRUE(fill.ok()) << fill.status().message();
  ASSERT_EQ(fill->devices.size(), 2u);
  const BubbleFillDevice& d0 = fill->devices[0];
  const BubbleFillDevice& d1 = fill->devices[1];
  EXPECT_EQ(d0.work, 22);
  EXPECT_EQ(d0.hidden, 22);
  EXPECT_EQ(d0.exposed, 0);
  EXPECT_EQ(d0.items, 3);
  EXPECT_EQ(d0.placed, 3);
  EXPECT_EQ(d1.work, 22);
  EXPECT_EQ(d1.hidden, 10);
  EXPECT_EQ(d1.exposed, 12);
  EXPECT_EQ(d1.placed, 2);
  EXPECT_EQ(fill->extra, 12);
  EXPECT_EQ(fill->makespan_with_work, 102);
  EXPECT_DOUBLE_EQ(fill->HiddenFraction(), 32.0 / 44.0);
}

// Order matters (first fit in the items' order): C's four 5 ns items fill device 1's bubble
// before A is tried, and A, still too large, is exposed; on device 0 everything fits.
TEST(BubbleFill, ItemsAreTriedInTheirOrderAndNeverSplit) {
  const Timeline t = Simulated("gpipe", 1);
  const ir::Program& lowered = t.program;
  const SimResult* r = &t.result;
  // 11 ns: larger than device 1's whole 10 ns bubble even though 2 x 5 ns would fill it.
  auto fill = FillBubbles(lowered, *r, {{"C", {5, 5}, true}, {"A", {11, 11}, false}});
  ASSERT_TRUE(fill.ok());
  EXPECT_EQ(fill->devices[1].hidden, 10);
  EXPECT_EQ(fill->devices[1].exposed, 11);
  EXPECT_EQ(fill->devices[0].hidden, 21);  // 5 + 5 + 11 in [20, 50]
  EXPECT_EQ(fill->extra, 11);
}

// Two minibatches: each step has its own bubbles, from the end of the device's previous step.
TEST(BubbleFill, EveryStepHasItsOwnBubbles) {
  const Timeline t = Simulated("gpipe", 2);
  const ir::Program& lowered = t.program;
  const SimResult* r = &t.result;
  auto fill = FillBubbles(lowered, *r, {{"A", {12, 12}, false}});
  ASSERT_TRUE(fill.ok());
  EXPECT_EQ(fill->devices[0].items, 2);
  EXPECT_EQ(fill->devices[1].items, 2);
  // Device 1's first step has only [0,10]; its second starts when its step ends at 70 and
  // waits for device 0's F2 until 100 (device 0 steps at 90): [70,100] takes A. Device 0's
  // second step has [110,140] (B2 waits for device 1's, which ends at 140).
  EXPECT_EQ(fill->devices[1].exposed, 12);
  EXPECT_EQ(fill->devices[1].hidden, 12);
  EXPECT_EQ(fill->devices[0].hidden, 24);
  EXPECT_EQ(fill->extra, 12);
  EXPECT_EQ(fill->makespan_with_work, r->makespan + 12);
}

TEST(BubbleFill, RejectsDurationsThatDoNotMatchTheDevices) {
  const Timeline t = Simulated("1f1b", 1);
  const ir::Program& lowered = t.program;
  const SimResult* r = &t.result;
  auto fill = FillBubbles(lowered, *r, {{"A", {1, 2, 3}, false}});
  ASSERT_FALSE(fill.ok());
  EXPECT_NE(fill.status().message().find("'A' has 3 durations for 2 devices"), std::string::npos);
}

}  // namespace
}  // namespace pipecast::sim
