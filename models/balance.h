// Contiguous min-max partitioning: cuts a list of item costs (a model's per-layer forward FLOPs)
// into a given number of non-empty contiguous parts so that the most expensive part is as cheap
// as possible; in a pipeline that part bounds the throughput.
//
// Many partitions often share the optimal maximum; the one returned has the earliest splits
// (its list of part starts is lexicographically smallest), so results are reproducible.
// Method: dynamic programming over prefix sums for the optimal maximum, O(parts * n^2), then a
// greedy pass that ends each part as early as the remaining items still allow.
// (sim/partition.h has the simulator's variant, with an extra tie-break on the spread of parts.)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"

namespace pipecast::models {

// The index of the first item of each part: starts with 0, `parts` increasing entries; part p
// holds items [starts[p], starts[p + 1]).
// Errors (kInvalidArgument): parts < 1, parts > costs.size(), a negative or non-finite cost.
Result<std::vector<int32_t>> MinMaxPartition(std::span<const double> costs, int32_t parts);

// The cost of the most expensive part of the partition given by `starts`.
// REQUIRES: starts is a valid partition of costs (as returned above).
double MaxPartCost(std::span<const double> costs, std::span<const int32_t> starts);

}  // namespace pipecast::models
