// Tests for models/balance.h: optimality and the earliest-split tie-break against brute force
// on small random cost lists, examples, and errors.
#include "models/balance.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <vector>

#include "common/partition.h"

namespace pipecast::models {
namespace {

// Every partition of n items into `parts` parts, in lexicographic order of the starts; returns
// the first one with the smallest maximum, then the smallest sum of squared part costs (the
// tie-breaks of common/partition.h).
std::vector<int32_t> BruteForce(const std::vector<double>& costs, int32_t parts) {
  const auto n = static_cast<int32_t>(costs.size());
  std::vector<int32_t> starts = {0}, best;
  double best_cost = 0, best_squares = 0;
  std::function<void()> extend = [&]() {
    if (static_cast<int32_t>(starts.size()) == parts) {
      const double c = MaxPartCost(costs, starts);
      double squares = 0;
      for (size_t p = 0; p < starts.size(); ++p) {
        const int32_t end = p + 1 < starts.size() ? starts[p + 1] : static_cast<int32_t>(costs.size());
        double part = 0;
        for (int32_t i = starts[p]; i < end; ++i) part += costs[i];
        squares += part * part;
      }
      if (best.empty() || c < best_cost || (c == best_cost && squares < best_squares)) {
        best = starts;
        best_cost = c;
        best_squares = squares;
      }
      return;
    }
    const int32_t remaining = parts - static_cast<int32_t>(starts.size());
    for (int32_t s = starts.back() + 1; s <= n - remaining; ++s) {
      starts.push_back(s);
      extend();
      starts.pop_back();
    }
  };
  extend();
  return best;
}

TEST(MinMaxPartitionTest, MatchesBruteForceOnRandomCosts) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    const auto n = static_cast<int32_t>(1 + rng() % 9);
    std::vector<double> costs;
    // Small integers (zeros included) make ties common and sums exact.
    for (int32_t i = 0; i < n; ++i) costs.push_back(static_cast<double>(rng() % 6));
    for (int32_t parts = 1; parts <= n; ++parts) {
      Result<std::vector<int32_t>> got = MinMaxPartition(costs, parts);
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(*got, BruteForce(costs, parts)) << "trial " << trial << " parts " << parts;
    }
  }
}

TEST(MinMaxPartitionTest, Examples) {
  EXPECT_EQ(*MinMaxPartition(std::vector<double>{1, 1, 1, 1}, 2), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(*MinMaxPartition(std::vector<double>{0, 5, 5}, 2), (std::vector<int32_t>{0, 2}));
  // Ties: [5 | 0 5] and [5 0 | 5] both cost 5; the earlier split wins.
  EXPECT_EQ(*MinMaxPartition(std::vector<double>{5, 0, 5}, 2), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(*MinMaxPartition(std::vector<double>{3, 1, 1, 1, 3}, 3),
            (std::vector<int32_t>{0, 1, 4}));
  EXPECT_EQ(*MinMaxPartition(std::vector<double>{0, 0, 0}, 3), (std::vector<int32_t>{0, 1, 2}));
}

// The executor's partition with device speeds is the simulator's (ir::BalancedPartition with
// speeds), so a model cut for devices that differ holds the stages the simulator timed; with
// speeds all 1 it is the partition above.
TEST(MinMaxPartitionTest, WithSpeedsCutsAsTheSimulator) {
  std::mt19937_64 rng(7);
  const double kSpeeds[] = {0.5, 1, 2, 3};
  for (int trial = 0; trial < 300; ++trial) {
    const auto n = static_cast<int32_t>(1 + rng() % 9);
    const auto parts = static_cast<int32_t>(1 + rng() % static_cast<uint64_t>(n));
    std::vector<double> costs, speeds, ones(static_cast<size_t>(parts), 1.0);
    for (int32_t i = 0; i < n; ++i) costs.push_back(static_cast<double>(rng() % 6));
    for (int32_t p = 0; p < parts; ++p) speeds.push_back(kSpeeds[rng() % 4]);
    EXPECT_EQ(*MinMaxPartition(costs, speeds), ir::BalancedPartition(costs, speeds));
    EXPECT_EQ(*MinMaxPartition(costs, ones), *MinMaxPartition(costs, parts));
  }
  // 4 equal layers on devices of speed 3 and 1: 3 layers and 1.
  EXPECT_EQ(*MinMaxPartition(std::vector<double>{1, 1, 1, 1}, std::vector<double>{3, 1}),
            (std::vector<int32_t>{0, 3}));
  EXPECT_EQ(
      MinMaxPartition(std::vector<double>{1, 1}, std::vector<double>{1, 0}).status().message(),
      "part 1 has speed 0.000000; speeds must be finite and > 0");
}

TEST(MinMaxPartitionTest, Errors) {
  const std::vector<double> costs = {1, 2, 3};
  EXPECT_EQ(MinMaxPartition(costs, 4).status().message(),
            "3 items cannot be cut into 4 non-empty parts");
  EXPECT_EQ(MinMaxPartition(costs, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(MinMaxPartition(std::vector<double>{1, -1}, 1).ok());
  EXPECT_FALSE(MinMaxPartition(std::vector<double>{1, std::nan("")}, 1).ok());
}

}  // namespace
}  // namespace pipecast::models
