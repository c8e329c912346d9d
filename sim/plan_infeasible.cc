// When no configuration of a plan is feasible: which constraint binds, the configuration closest
// to meeting it, and what to change (sim/planner.h: DescribeInfeasible).
#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "sim/planner.h"
#include "sim/report.h"

namespace pipecast::sim {
namespace {

std::string Describe(const PlanEntry& e) {
  const ir::PlanConfig& c = e.config;
  return fmt::format(
      "{} with D={} R={} M={} b={} recompute={} partition={} (peak {}, gradient delay "
      "{}, version gap {})",
      ConfigLabel(c), c.stages, c.data_parallel, c.microbatches, c.microbatch_size, c.recompute ? "on" : "off",
      ir::PartitionRuleName(c.partition), FormatBytes(e.metrics.peak_memory_bytes),
      e.metrics.max_gradient_delay, e.metrics.max_version_gap);
}

// Where the memory cap came from, for the message.
std::string CapSource(const ir::Scenario& s, const ir::PlanSpace& space) {
  if (space.positions.count("memory_cap") != 0) return ir::WherePlanKey(s, space, "memory_cap");
  if (space.memory_cap_bytes) return "--memory-cap";
  if (!s.devices.empty()) return s.model ? "cluster.devices[].memory" : "devices[].memory";
  return s.model ? "cluster.device.memory" : "device.memory";
}

// When each device is held to its own capacity: the memory cap is the binding constraint.
std::string PerDeviceCapacityBinds(const ir::Scenario& s, const PlanResult& r,
                                   const std::string& lead) {
  const PlanEntry* best = nullptr;
  const auto share = [](const PlanEntry& e) {
    return static_cast<double>(e.metrics.tightest_peak_bytes) /
           static_cast<double>(std::max<int64_t>(1, e.metrics.tightest_capacity_bytes));
  };
  for (const PlanEntry& e : r.entries) {
    if (best == nullptr || share(e) < share(*best)) best = &e;
  }
  return fmt::format(
      "{}: the devices' own capacities ({}) bind, and the configuration closest to fitting is {}, "
      "whose device {} needs {} of its {}; give those devices more memory, set plan.memory_cap "
      "(or --memory-cap) to hold every device to one cap, or widen the space (recompute: "
      "[false, true], smaller microbatch sizes)",
      lead, CapSource(s, r.space), Describe(*best), best->metrics.tightest_device,
      FormatBytes(best->metrics.tightest_peak_bytes),
      FormatBytes(best->metrics.tightest_capacity_bytes));
}

struct Limits {
  std::function<bool(const PlanEntry&)> memory, delay, gap;
};

// The entry minimising `key` among those passing `filter` (null if none passes).
template <typename Key>
const PlanEntry* Closest(const std::vector<PlanEntry>& entries,
                         const std::function<bool(const PlanEntry&)>& filter, Key key) {
  const PlanEntry* best = nullptr;
  for (const PlanEntry& e : entries) {
    if (!filter(e)) continue;
    if (best == nullptr || key(e) < key(*best)) best = &e;
  }
  return best;
}

}  // namespace

std::string DescribeInfeasible(const ir::Scenario& s, const PlanResult& r) {
  const ir::PlanSpace& space = r.space;
  const int64_t cap = r.memory_cap_bytes.value_or(0);
  const Limits ok{[&](const PlanEntry& e) {
                    if (r.per_device_capacity) return !e.metrics.over_capacity;
                    return cap == 0 || e.metrics.peak_memory_bytes <= cap;
                  },
                  [&](const PlanEntry& e) {
                    return !space.max_gradient_delay ||
                           e.metrics.max_gradient_delay <= *space.max_gradient_delay;
                  },
                  [&](const PlanEntry& e) {
                    return !space.max_version_gap ||
                           e.metrics.max_version_gap <= *space.max_version_gap;
                  }};
  const auto memory = [](const PlanEntry& e) { return e.metrics.peak_memory_bytes; };
  const auto stale = [&](const PlanEntry& e) { return ok.delay(e) && ok.gap(e); };
  const auto any = [](const PlanEntry&) { return true; };
  const std::string lead =
      fmt::format("none of the {} configurations simulated is feasible", r.entries.size());
  if (r.per_device_capacity && Closest(r.entries, ok.memory, memory) == nullptr) {
    return PerDeviceCapacityBinds(s, r, lead);
  }
  if (cap > 0 && Closest(r.entries, ok.memory, memory) == nullptr) {
    const PlanEntry* best = Closest(r.entries, stale, memory);
    if (best == nullptr) best = Closest(r.entries, any, memory);
    return fmt::format(
        "{}: the memory cap binds: {} allows {} per device, and the configuration needing the "
        "least is {}; raise the cap to at least {}, or widen the space (more stages, recompute: "
        "[false, true], smaller microbatch sizes)",
        lead, CapSource(s, space), FormatBytes(cap), Describe(*best),
        FormatBytes(best->metrics.peak_memory_bytes));
  }
  if (Closest(r.entries, stale, memory) == nullptr) {
    const PlanEntry* best = Closest(r.entries, ok.memory, [](const PlanEntry& e) {
      return std::make_pair(e.metrics.max_gradient_delay, e.metrics.max_version_gap);
    });
    return fmt::format(
        "{}: the staleness limits bind ({}{}): the least stale configuration within the memory "
        "cap is {}; raise the limits to its delay and gap, or add synchronous methods (1f1b, "
        "zb-h1, ...) to plan.methods",
        lead,
        ir::WherePlanKey(s, space,
                         space.max_gradient_delay ? "max_gradient_delay" : "max_version_gap"),
        space.max_gradient_delay && space.max_version_gap ? " and plan.max_version_gap" : "",
        Describe(*best));
  }
  const PlanEntry* best = Closest(r.entries, stale, memory);
  if (r.per_device_capacity) {
    return fmt::format(
        "{}: the devices' own capacities ({}) and the staleness limits exclude every "
        "configuration together: the configuration within the staleness limits needing the least "
        "memory is {}; give its devices more memory or relax the staleness limits",
        lead, CapSource(s, space), Describe(*best));
  }
  return fmt::format(
      "{}: the memory cap ({}, {}) and the staleness limits exclude every configuration "
      "together: the configuration within the staleness limits needing the least memory is {}; "
      "raise the cap to {} or relax the staleness limits",
      lead, CapSource(s, space), FormatBytes(cap), Describe(*best),
      FormatBytes(best->metrics.peak_memory_bytes));
}

}  // namespace pipecast::sim
