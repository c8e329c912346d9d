#include "common/partition.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "common/check.h"

namespace pipecast::ir {

std::vector<int32_t> BalancedPartition(const std::vector<double>& layer_costs, int32_t parts) {
  const size_t n = layer_costs.size();
  PIPECAST_CHECK(parts >= 1 && static_cast<size_t>(parts) <= n)
      << parts << " parts for " << n << " layers";
  for (double c : layer_costs) PIPECAST_CHECK(std::isfinite(c) && c >= 0) << "layer cost " << c;

  // Every part cost is computed as prefix[j] - prefix[i] and nothing else, so comparisons
  // between the DP tables and the reconstruction below are exact, not approximate.
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + layer_costs[i];
  const auto part = [&](size_t i, size_t j) { return prefix[j] - prefix[i]; };
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const auto q_max = static_cast<size_t>(parts);

  // worst[q][i]: the smallest possible maximum part cost when layers [i, n) form q parts.
  std::vector<std::vector<double>> worst(q_max + 1, std::vector<double>(n + 1, kInf));
  worst[0][n] = 0;
  for (size_t q = 1; q <= q_max; ++q) {
    for (size_t i = 0; i + q <= n; ++i) {
      double best = kInf;
      for (size_t j = i + 1; j + (q - 1) <= n; ++j) {
        // Costs are >= 0, so part(i, j) only grows with j: once it reaches `best`, no later j
        // can do better.
        if (part(i, j) >= best) break;
        const double w = std::max(part(i, j), worst[q - 1][j]);
        if (w < best) best = w;
      }
      worst[q][i] = best;
    }
  }
  const double optimum = worst[q_max][0];

  // squares[q][i]: among partitions of [i, n) into q parts, none above `optimum`, the smallest
  // sum of squared part costs.
  const auto term = [&](size_t i, size_t j, const std::vector<double>& rest) {
    const double c = part(i, j);
    return c * c + rest[j];
  };
  std::vector<std::vector<double>> squares(q_max + 1, std::vector<double>(n + 1, kInf));
  squares[0][n] = 0;
  for (size_t q = 1; q <= q_max; ++q) {
    for (size_t i = 0; i + q <= n; ++i) {
      double best = kInf;
      for (size_t j = i + 1; j + (q - 1) <= n; ++j) {
        if (part(i, j) > optimum) break;  // and so is every longer part
        if (squares[q - 1][j] == kInf) continue;
        const double s = term(i, j, squares[q - 1]);
        if (s < best) best = s;
      }
      squares[q][i] = best;
    }
  }
  PIPECAST_CHECK(squares[q_max][0] < kInf) << "no partition reaches the optimum " << optimum;

  // Walk forward taking, at every cut, the earliest end that still reaches both optima.
  std::vector<int32_t> starts = {0};
  size_t start = 0;
  for (size_t q = q_max; q > 1; --q) {
    size_t next = 0;
    for (size_t j = start + 1; j + (q - 1) <= n; ++j) {
      if (part(start, j) > optimum) break;
      if (squares[q - 1][j] == kInf) continue;
      if (term(start, j, squares[q - 1]) == squares[q][start]) {
        next = j;
        break;
      }
    }
    PIPECAST_CHECK(next > start) << "partition reconstruction failed at part " << q_max - q;
    starts.push_back(static_cast<int32_t>(next));
    start = next;
  }
  return starts;
}

std::vector<double> PartCosts(const std::vector<double>& layer_costs,
                              const std::vector<int32_t>& starts) {
  std::vector<double> costs(starts.size(), 0.0);
  for (size_t p = 0; p < starts.size(); ++p) {
    const size_t end =
        p + 1 < starts.size() ? static_cast<size_t>(starts[p + 1]) : layer_costs.size();
    for (size_t i = static_cast<size_t>(starts[p]); i < end; ++i) costs[p] += layer_costs[i];
  }
  return costs;
}

}  // namespace pipecast::ir
