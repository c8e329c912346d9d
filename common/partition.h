// Contiguous partitioning of a model's layers into pipeline stages.
//
// BalancedPartition cuts a sequence of layers (each with a non-negative cost, usually its
// compute time) into `parts` non-empty contiguous groups so that the most expensive group is as
// cheap as possible: that group bounds the pipeline's throughput. Many partitions often share the
// optimal maximum (cheap layers such as the embedding can go to either side of a cut), so ties
// are broken in a fixed order, which keeps results reproducible:
//   1. smallest maximum part cost;
//   2. then the smallest sum of squared part costs (the parts below the maximum are as even as
//      possible, rather than one of them holding only the embedding);
//   3. then the earliest splits (the list of first-layer indices is lexicographically smallest).
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

// The cost of each part of a partition given by its first-layer indices (as returned above).
std::vector<double> PartCosts(const std::vector<double>& layer_costs,
                              const std::vector<int32_t>& starts);

}  // namespace pipecast::ir
