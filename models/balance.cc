#include "models/balance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/check.h"

namespace pipecast::models {
namespace {

std::vector<double> PrefixSums(std::span<const double> costs) {
  std::vector<double> prefix(costs.size() + 1, 0.0);
  for (size_t i = 0; i < costs.size(); ++i) prefix[i + 1] = prefix[i] + costs[i];
  return prefix;
}

}  // namespace

Result<std::vector<int32_t>> MinMaxPartition(std::span<const double> costs, int32_t parts) {
  const auto n = static_cast<int32_t>(costs.size());
  if (parts < 1) {
    return InvalidArgument("cannot cut into " + std::to_string(parts) + " parts");
  }
  if (parts > n) {
    return InvalidArgument(std::to_string(n) + " items cannot be cut into " +
                           std::to_string(parts) + " non-empty parts");
  }
  for (int32_t i = 0; i < n; ++i) {
    if (!std::isfinite(costs[i]) || costs[i] < 0) {
      return InvalidArgument("item " + std::to_string(i) + " has cost " + std::to_string(costs[i]) +
                             "; costs must be finite and >= 0");
    }
  }
  // Part costs are always prefix[e] - prefix[s], in the DP and in the greedy pass alike, so the
  // optimum found below is met exactly (no rounding mismatch between the two passes).
  const std::vector<double> prefix = PrefixSums(costs);
  const auto cost = [&](int32_t s, int32_t e) { return prefix[e] - prefix[s]; };

  // best[i]: the smallest maximum over cuts of items [0, i) into k parts (k grows each round).
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> best(n + 1, kInf);
  for (int32_t i = 1; i <= n; ++i) best[i] = cost(0, i);
  for (int32_t k = 2; k <= parts; ++k) {
    std::vector<double> next(n + 1, kInf);
    for (int32_t i = k; i <= n; ++i) {
      for (int32_t j = k - 1; j < i; ++j) {
        next[i] = std::min(next[i], std::max(best[j], cost(j, i)));
      }
    }
    best = std::move(next);
  }
  const double optimum = best[n];

  // feasible[k][i]: items [i, n) can be cut into k parts, each costing at most `optimum`.
  std::vector<std::vector<bool>> feasible(parts + 1, std::vector<bool>(n + 1, false));
  feasible[0][n] = true;
  for (int32_t k = 1; k <= parts; ++k) {
    for (int32_t i = 0; i < n; ++i) {
      for (int32_t e = i + 1; e <= n && cost(i, e) <= optimum; ++e) {
        if (feasible[k - 1][e]) {
          feasible[k][i] = true;
          break;
        }
      }
    }
  }
  PIPECAST_CHECK(feasible[parts][0]) << "min-max partition: optimum " << optimum << " not met";

  // Greedy: end each part at the earliest item that leaves a feasible rest.
  std::vector<int32_t> starts;
  int32_t s = 0;
  for (int32_t k = parts; k >= 1; --k) {
    starts.push_back(s);
    int32_t e = s + 1;
    while (e < n && !(cost(s, e) <= optimum && feasible[k - 1][e])) ++e;
    PIPECAST_CHECK(cost(s, e) <= optimum && feasible[k - 1][e]);
    s = e;
  }
  PIPECAST_CHECK(s == n);
  return starts;
}

double MaxPartCost(std::span<const double> costs, std::span<const int32_t> starts) {
  const std::vector<double> prefix = PrefixSums(costs);
  double worst = 0;
  for (size_t p = 0; p < starts.size(); ++p) {
    const int32_t end = p + 1 < starts.size() ? starts[p + 1] : static_cast<int32_t>(costs.size());
    PIPECAST_CHECK(starts[p] < end && end <= static_cast<int32_t>(costs.size()));
    worst = std::max(worst, prefix[end] - prefix[starts[p]]);
  }
  return worst;
}

}  // namespace pipecast::models
