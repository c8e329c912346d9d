// Reports of `pipecast plan`: the table (best configuration, Pareto front, the top of the
// ranking, and with a target loss the split of each speedup into throughput and convergence),
// the versioned JSON document `pipecast report` reads (schema "pipecast.plan", docs/outputs.md)
// and a CSV with one row per configuration; and the table of `--sweep stages`.
#pragma once

#include <cstdint>
#include <string>

#include "common/scenario.h"
#include "sim/planner.h"

namespace pipecast::cli {

inline constexpr const char* kPlanSchemaName = "pipecast.plan";
inline constexpr int kPlanSchemaVersion = 1;
// At most this many configurations are listed in the JSON's "configs" (then
// "configs_truncated": true); the best and the front are always complete.
inline constexpr size_t kMaxJsonConfigs = 50000;

struct PlanReportOptions {
  int top = 10;             // rows of the ranking in the table
  std::string sweep;        // "stages" for a sweep
  std::string convergence;  // the profile's file, for the JSON
};

std::string PlanTable(const ir::Scenario& scenario, const sim::PlanResult& plan,
                      const PlanReportOptions& options);
std::string PlanJson(const ir::Scenario& scenario, const sim::PlanResult& plan,
                     const PlanReportOptions& options);
std::string PlanCsv(const ir::Scenario& scenario, const sim::PlanResult& plan);
// Throughput, peak memory and gradient delay of every method against D.
std::string SweepTable(const ir::Scenario& scenario, const sim::PlanResult& plan);

// The partition as a report names it: the rule, or "explicit" for explicit per-stage costs.
std::string PartitionName(const ir::Scenario& scenario, const ir::PlanConfig& config);

}  // namespace pipecast::cli
