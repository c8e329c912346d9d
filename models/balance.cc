#include "models/balance.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/check.h"
#include "common/partition.h"

namespace pipecast::models {

namespace {

Status CheckCosts(std::span<const double> costs, int32_t parts) {
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
  return Status::Ok();
}

}  // namespace

Result<std::vector<int32_t>> MinMaxPartition(std::span<const double> costs, int32_t parts) {
  PIPECAST_RETURN_IF_ERROR(CheckCosts(costs, parts));
  return ir::BalancedPartition(std::vector<double>(costs.begin(), costs.end()), parts);
}

Result<std::vector<int32_t>> MinMaxPartition(std::span<const double> costs,
                                             std::span<const double> speeds) {
  PIPECAST_RETURN_IF_ERROR(CheckCosts(costs, static_cast<int32_t>(speeds.size())));
  for (size_t p = 0; p < speeds.size(); ++p) {
    if (!std::isfinite(speeds[p]) || speeds[p] <= 0) {
      return InvalidArgument("part " + std::to_string(p) + " has speed " +
                             std::to_string(speeds[p]) + "; speeds must be finite and > 0");
    }
  }
  return ir::BalancedPartition(std::vector<double>(costs.begin(), costs.end()),
                               std::vector<double>(speeds.begin(), speeds.end()));
}

double MaxPartCost(std::span<const double> costs, std::span<const int32_t> starts) {
  const std::vector<double> parts =
      ir::PartCosts(std::vector<double>(costs.begin(), costs.end()),
                    std::vector<int32_t>(starts.begin(), starts.end()));
  return parts.empty() ? 0.0 : *std::max_element(parts.begin(), parts.end());
}

}  // namespace pipecast::models
