// The memory estimate `pipecast sim` checks runs against, hand-worked from its definition
// (sim/memory_estimate.h): the program, 16 bytes per stage-microbatch pair, and the timeline and
// documents of traces and SVGs.
#include "sim/memory_estimate.h"

#include <gtest/gtest.h>

#include "common/generators.h"

namespace pipecast::sim {
namespace {

constexpr int64_t kFixed = 16 << 20;

TEST(MemoryEstimate, HandWorkedFromTheDefinition) {
  // 1F1B, 4 stages x 8 microbatches: 64 compute actions, 4 steps, 32 pairs.
  const Result<ir::ProgramSize> size = ir::SizeOf({"1f1b", 4, 8, 1, 1, {}});
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->compute_actions, 64);
  EXPECT_EQ(size->steps, 4);
  EXPECT_EQ(size->cells(), 32);
  // Compact: 68 x 8 bytes, one device's 17 actions x 20 bytes while it is encoded, 32 x 16.
  EXPECT_EQ(EstimateSimulationBytes(*size, {}), 68 * 8 + 17 * 20 + 32 * 16 + kFixed);
  // With an SVG: the program expanded (68 x 20), 64 transfers (2 per pair) each a send and a
  // receive: 68 + 128 = 196 lowered actions x (20 + 16 bytes of timing), 64 transfers x 48,
  // 64 memory samples x 16, per pair 2 receive indices, a producer end and a version record
  // (8 + 8 + 28), and 400 bytes of SVG text per action.
  const int64_t timeline = 68 * 20 + 32 * 16 + 196 * (20 + 16) + 64 * 48 + 64 * 16 + 32 * 44;
  EXPECT_EQ(EstimateSimulationBytes(*size, {.svg = true}), timeline + 68 * 400 + kFixed);
  EXPECT_EQ(EstimateSimulationBytes(*size, {.svg = true, .svg_window = true}), timeline + kFixed);
  // Copies tracked (PipeDream stashes): expanded, and 20 more bytes per pair of stash records.
  const Result<ir::ProgramSize> pd = ir::SizeOf({"pipedream", 4, 8, 1, 1, {}});
  ASSERT_TRUE(pd.ok() && pd->tracked_copies && pd->stashes);
  EXPECT_EQ(EstimateSimulationBytes(*pd, {}),
            (64 + 32) * 20 + 32 * 16 + 32 * 20 + kFixed);  // a step after every backward
}

// The refusal case of the issue: 64 stages x 1,000,000 microbatches of 1F1B.
TEST(MemoryEstimate, MillionMicrobatchRunIsAboutTwoGiB) {
  const Result<ir::ProgramSize> size = ir::SizeOf({"1f1b", 64, 1'000'000, 1, 1, {}});
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->compute_actions, 128'000'000);
  const double gib = static_cast<double>(EstimateSimulationBytes(*size, {})) / (1 << 30);
  EXPECT_GT(gib, 1.9);
  EXPECT_LT(gib, 2.0);
}

}  // namespace
}  // namespace pipecast::sim
