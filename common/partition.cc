#include "common/partition.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "common/check.h"

namespace pipecast::ir {

std::vector<int32_t> BalancedPartition(const std::vector<double>& layer_costs, int32_t parts) {
  PIPECAST_CHECK(parts >= 1) << parts << " parts";
  return BalancedPartition(layer_costs, std::vector<double>(static_cast<size_t>(parts), 1.0));
}

std::vector<int32_t> BalancedPartition(const std::vector<double>& layer_costs,
                                       const std::vector<double>& speeds) {
  const size_t n = layer_costs.size();
  const size_t q_max = speeds.size();
  PIPECAST_CHECK(q_max >= 1 && q_max <= n) << q_max << " parts for " << n << " layers";
  for (double c : layer_costs) PIPECAST_CHECK(std::isfinite(c) && c >= 0) << "layer cost " << c;
  for (double v : speeds) PIPECAST_CHECK(std::isfinite(v) && v > 0) << "device speed " << v;

  // Every part time is computed by `part` and nothing else, so comparisons between the DP
  // tables and the reconstruction below are exact, not approximate. With q parts left for
  // layers [i, n), the first of them is part q_max - q.
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + layer_costs[i];
  const auto part = [&](size_t i, size_t j, size_t q) {
    return (prefix[j] - prefix[i]) / speeds[q_max - q];
  };
  constexpr double kInf = std::numeric_limits<double>::infinity();

  // worst[q][i]: the smallest possible maximum part time when layers [i, n) form q parts.
  std::vector<std::vector<double>> worst(q_max + 1, std::vector<double>(n + 1, kInf));
  worst[0][n] = 0;
  for (size_t q = 1; q <= q_max; ++q) {
    for (size_t i = 0; i + q <= n; ++i) {
      double best = kInf;
      for (size_t j = i + 1; j + (q - 1) <= n; ++j) {
        // Costs are >= 0, so part(i, j, q) only grows with j: once it reaches `best`, no later
        // j can do better.
        if (part(i, j, q) >= best) break;
        const double w = std::max(part(i, j, q), worst[q - 1][j]);
        if (w < best) best = w;
      }
      worst[q][i] = best;
    }
  }
  const double optimum = worst[q_max][0];

  // squares[q][i]: among partitions of [i, n) into q parts, none above `optimum`, the smallest
  // sum of squared part times.
  const auto term = [&](size_t i, size_t j, size_t q, const std::vector<double>& rest) {
    const double c = part(i, j, q);
    return c * c + rest[j];
  };
  std::vector<std::vector<double>> squares(q_max + 1, std::vector<double>(n + 1, kInf));
  squares[0][n] = 0;
  for (size_t q = 1; q <= q_max; ++q) {
    for (size_t i = 0; i + q <= n; ++i) {
      double best = kInf;
      for (size_t j = i + 1; j + (q - 1) <= n; ++j) {
        if (part(i, j, q) > optimum) break;  // and so is every longer part
        if (squares[q - 1][j] == kInf) continue;
        const double s = term(i, j, q, squares[q - 1]);
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
      if (part(start, j, q) > optimum) break;
      if (squares[q - 1][j] == kInf) continue;
      if (term(start, j, q, squares[q - 1]) == squares[q][start]) {
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
