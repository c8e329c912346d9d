#include "common/version_stats.h"

#include <algorithm>

#include "common/check.h"

namespace pipecast::ir {

std::vector<DeviceVersionStats> ComputeVersionStats(const Program& p, const VersionPlan& plan,
                                                    std::span<const VersionRecord> records) {
  PIPECAST_CHECK(records.size() == plan.records.size())
      << records.size() << " records for a plan of " << plan.records.size();
  const size_t devices = p.devices.size();
  std::vector<DeviceVersionStats> out(devices);
  std::vector<int64_t> gap_sum(devices, 0), delay_sum(devices, 0), crossing(devices, 0);
  const int32_t total = p.total_microbatches();
  for (int32_t s = 0; s < p.num_stages; ++s) {
    for (int32_t j = 0; j < total; ++j) {
      const auto d = static_cast<size_t>(p.device_of(s, j));  // the microbatch's replica
      DeviceVersionStats& m = out[d];
      const VersionRecord& v = records[static_cast<size_t>(s) * total + j];
      if (v.f_counter < 0 || v.b_counter < 0) continue;
      const int32_t gap = v.version_gap();
      m.gap_max = std::max(m.gap_max, gap);
      gap_sum[d] += gap;
      crossing[d] += gap > 0 ? 1 : 0;
      ++m.microbatches;
      if (v.applied_step >= 1) {
        const int32_t delay = v.gradient_delay();
        m.delay_max = std::max(m.delay_max, delay);
        delay_sum[d] += delay;
        ++m.delayed;
      }
      m.horizon_forward_max = std::max(m.horizon_forward_max, v.f_horizon);
      m.horizon_backward_max = std::max(m.horizon_backward_max, v.b_horizon);
    }
  }
  for (size_t d = 0; d < devices; ++d) {
    DeviceVersionStats& m = out[d];
    if (m.microbatches > 0) {
      m.gap_mean = static_cast<double>(gap_sum[d]) / static_cast<double>(m.microbatches);
      m.crossing_fraction = static_cast<double>(crossing[d]) / static_cast<double>(m.microbatches);
    }
    if (m.delayed > 0) m.delay_mean = static_cast<double>(delay_sum[d]) / m.delayed;
    if (d < plan.live_versions_max.size()) m.live_versions_max = plan.live_versions_max[d];
    if (d < plan.steps.size()) m.steps = plan.steps[d];
  }
  return out;
}

DeviceVersionStats Merge(const DeviceVersionStats& a, const DeviceVersionStats& b) {
  auto mean = [](double x, int64_t nx, double y, int64_t ny) {
    return nx + ny == 0 ? 0.0 : (x * nx + y * ny) / static_cast<double>(nx + ny);
  };
  DeviceVersionStats m;
  m.gap_max = std::max(a.gap_max, b.gap_max);
  m.gap_mean = mean(a.gap_mean, a.microbatches, b.gap_mean, b.microbatches);
  m.crossing_fraction =
      mean(a.crossing_fraction, a.microbatches, b.crossing_fraction, b.microbatches);
  m.delay_max = std::max(a.delay_max, b.delay_max);
  m.delay_mean = mean(a.delay_mean, a.delayed, b.delay_mean, b.delayed);
  m.horizon_forward_max = std::max(a.horizon_forward_max, b.horizon_forward_max);
  m.horizon_backward_max = std::max(a.horizon_backward_max, b.horizon_backward_max);
  m.live_versions_max = std::max(a.live_versions_max, b.live_versions_max);
  m.steps = a.steps + b.steps;
  m.microbatches = a.microbatches + b.microbatches;
  m.delayed = a.delayed + b.delayed;
  return m;
}

}  // namespace pipecast::ir
