// Contiguous partitioning of a model's layers into pipeline stages.
//
// BalancedPartition cuts a sequence of layers (each with a non-negative cost, usually its
// compute work) into `parts` non-empty contiguous groups so that the slowest group is as fast as
// possible: that group bounds the pipeline's throughput. Part p runs on a device of relative
// speed speeds[p] (all 1 when not given), so its time is (sum of its layers' costs) / speeds[p]:
// a part on a device twice as fast can take about twice the work. Many partitions often share
// the optimal maximum (cheap layers such as the embedding can go to either side of a cut), so
// ties are broken in a fixed order, which keeps results reproducible:
//   1. smallest maximum part time;
//   2. then the smallest sum of squared part times (the parts below the maximum are as even as
//      possible, rather than one of them holding only the embedding);
//   3. then the earliest splits (the list of first-layer indices is lexicographically smallest).
// Every part time is computed as (prefix[j] - prefix[i]) / speeds[p] and nothing else, and the
// sum of squares is accumulated from the last part to the first, so the tie-breaks compare
// exactly equal values; with all speeds 1 the times are the plain part costs.
// Dynamic programming over prefix sums: O(parts * n^2) time at worst (far less in practice, as
// a part stops growing once it is too expensive), O(parts * n) memory.
#pragma once

#include <cstdint>
#include <vector>

namespace pipecast::ir {

// Returns the index of the first layer of each part (so the result starts with 0 and has `parts`
// increasing entries); part p holds layers [result[p], result[p + 1]).
// REQUIRES: 1 <= parts <= layer_costs.size(); every cost is finite and >= 0.
std::vector<int32_t> BalancedPartition(const std::vector<double>& layer_costs, int32_t parts);

// The same with part p on a device of relative speed speeds[p] (parts = speeds.size()).
// REQUIRES: 1 <= speeds.size() <= layer_costs.size(); every cost finite and >= 0; every speed
// finite and > 0.
std::vector<int32_t> BalancedPartition(const std::vector<double>& layer_costs,
                                       const std::vector<double>& speeds);

// The cost of each part of a partition given by its first-layer indices (as returned above).
std::vector<double> PartCosts(const std::vector<double>& layer_costs,
                              const std::vector<int32_t>& starts);

}  // namespace pipecast::ir
