// The pricing of a program from a profile of other stages (ApportionByParams), against values
// worked by hand.
#include <gtest/gtest.h>

#include "cli/run_report.h"

namespace pipecast::cli {
namespace {

// A 2-stage profile (forward 600 + 400 ns, steps 90 + 10 ns, optimizer state 300 + 100 bytes),
// cut by the cost builder into 4 equal chunks, priced for 4 stages of 500, 300, 150 and 50
// parameters (of 1000): each stage gets its share of the whole model's totals.
TEST(ApportionByParams, SharesTheWholeModelsTotalsByParameters) {
  sim::CostModel c;
  c.stages.resize(4);
  const int64_t forward[] = {300, 200, 300, 200};  // device 0: stages 0 and 2; device 1: 1 and 3
  for (int s = 0; s < 4; ++s) {
    c.stages[s].forward = forward[s];
    c.stages[s].backward_input = 2 * forward[s];
    c.stages[s].backward_weight = forward[s];
    c.stages[s].backward = 3 * forward[s];
    c.stages[s].optimizer_step = s % 2 == 0 ? 45 : 5;
    c.stages[s].weight_bytes = s % 2 == 0 ? 100 : 50;
    c.stages[s].optimizer_state_bytes = s % 2 == 0 ? 150 : 50;
  }
  ApportionByParams({500, 300, 150, 50}, c);
  const int64_t want_forward[] = {500, 300, 150, 50};  // 1000 ns x 0.5, 0.3, 0.15, 0.05
  const int64_t want_step[] = {50, 30, 15, 5};         // 100 ns
  const int64_t want_state[] = {200, 120, 60, 20};     // 400 bytes
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(c.stages[s].forward, want_forward[s]) << s;
    EXPECT_EQ(c.stages[s].backward_input, 2 * want_forward[s]) << s;
    EXPECT_EQ(c.stages[s].backward_weight, want_forward[s]) << s;
    EXPECT_EQ(c.stages[s].backward, 3 * want_forward[s]) << s;
    EXPECT_EQ(c.stages[s].optimizer_step, want_step[s]) << s;
    EXPECT_EQ(c.stages[s].optimizer_state_bytes, want_state[s]) << s;
    EXPECT_EQ(c.stages[s].weight_bytes, 4 * want_forward[s]) << s;  // 4 bytes per parameter
    EXPECT_EQ(c.stages[s].gradient_bytes, 4 * want_forward[s]) << s;
  }
}

TEST(ApportionByParams, LeavesTheCostsAloneWithoutParameterCounts) {
  sim::CostModel c;
  c.stages.resize(2);
  c.stages[0].forward = 7;
  c.stages[1].forward = 3;
  ApportionByParams({}, c);  // no counts
  EXPECT_EQ(c.stages[0].forward, 7);
  ApportionByParams({1, 2, 3}, c);  // one too many
  EXPECT_EQ(c.stages[1].forward, 3);
  ApportionByParams({0, 0}, c);  // nothing to share by
  EXPECT_EQ(c.stages[0].forward, 7);
}

}  // namespace
}  // namespace pipecast::cli
