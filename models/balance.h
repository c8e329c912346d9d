// Contiguous min-max partitioning: cuts a list of item costs (a model's per-layer forward FLOPs)
// into a given number of non-empty contiguous parts so that the most expensive part (or, on
// devices of different speeds, the slowest) is as cheap as possible; in a pipeline that part
// bounds the throughput.
//
// It checks its inputs and then uses ir::BalancedPartition (common/partition.h), the simulator's
// partition, so that a model is cut into the same stages the simulator assumes for the same
// per-layer costs; ties are broken there (smallest maximum, then most even parts, then the
// earliest splits).
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

// The same for parts on devices of different speeds: part p's time is its cost / speeds[p]
// (ir::BalancedPartition with speeds), parts = speeds.size(). The executor trains on devices of
// one kind and calls the form above; this one exists so that a partition for devices that differ
// is the simulator's too. Errors: those above, and a speed that is not finite and > 0.
Result<std::vector<int32_t>> MinMaxPartition(std::span<const double> costs,
                                             std::span<const double> speeds);

// The cost of the most expensive part of the partition given by `starts`.
// REQUIRES: starts is a valid partition of costs (as returned above).
double MaxPartCost(std::span<const double> costs, std::span<const int32_t> starts);

}  // namespace pipecast::models
