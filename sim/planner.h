// The planner behind `pipecast plan`: enumerates a scenario's search space (common/plan_space.h),
// simulates every configuration on the engine's fast path, checks each against the memory cap
// and the staleness limits, ranks them by the objective and extracts the Pareto front of time,
// peak memory and gradient delay. docs/plan.md states the rules.
//
// Exact by construction: every configuration of the space is simulated (nothing is pruned), so
// the best reported is the best of the space, and the front is computed over all of them.
// Deterministic: configurations are enumerated in a fixed order, and ties in the objective are
// broken by peak memory, then gradient delay, then that order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/convergence.h"
#include "common/plan_space.h"
#include "common/status.h"
#include "sim/cost_model.h"

namespace pipecast::sim {

// What one simulated configuration costs (docs/metrics.md has the formulas).
struct PlanMetrics {
  TimeNs makespan = 0;
  int64_t samples = 0;
  double samples_per_s = 0;       // steady-state throughput
  double time_per_sample_s = 0;   // 1 / samples_per_s
  double samples_per_step = 0;    // samples / optimizer steps of device 0
  double time_per_step_s = 0;     // time_per_sample_s x samples_per_step
  int64_t peak_memory_bytes = 0;  // the largest over devices
  double bubble_fraction = 0;     // idle share of the makespan, bubble (a)
  int32_t max_gradient_delay = 0;
  int32_t max_version_gap = 0;
  int32_t steps = 0;   // optimizer steps of device 0
  std::string layers;  // the model layers of each device ("E+0-2 | 3-5 | ..."), model: only
  // Each device against its own capacity (DeviceSpec::memory_bytes, 0 = unlimited): whether one
  // is above it, and the device with the largest peak / capacity (-1: no device has a capacity)
  // with its peak and capacity, for messages.
  bool over_capacity = false;
  int32_t tightest_device = -1;
  int64_t tightest_peak_bytes = 0;
  int64_t tightest_capacity_bytes = 0;
};

// Predicted time to the target loss of one configuration (sim/time_to_loss.h).
struct TimeToLoss {
  std::optional<double> seconds;  // steps_to_loss x time_per_step_s; nullopt: see `note`
  double steps_to_loss = 0;
  std::string convergence_from;  // the profile entry used (its label)
  std::string note;              // why there is no prediction, or how it was made
  // Against the baseline (the best synchronous configuration with a prediction): speedup =
  // baseline seconds / seconds = throughput_factor x convergence_factor.
  double speedup = 0;
  double throughput_factor = 0;   // baseline time per sample / this one's
  double convergence_factor = 0;  // baseline samples to the loss / this one's
};

struct PlanEntry {
  ir::PlanConfig config;
  int64_t index = 0;  // position in enumeration order
  int32_t rank = 0;   // 1 = best; feasible configurations first
  PlanMetrics metrics;
  bool feasible = true;
  std::string infeasible_reason;
  TimeToLoss time_to_loss;
};

struct PlanOptions {
  int64_t memory_budget = 0;  // bytes one simulation may plan to use; larger configs are skipped
  const ir::ConvergenceProfile* convergence = nullptr;  // for time to loss
  // Called now and then while configurations are simulated: (done, total).
  std::function<void(int64_t, int64_t)> progress;
};

struct PlanResult {
  ir::PlanSpace space;  // with the defaults filled in (the lists actually searched)
  int64_t global_batch = 0;
  std::optional<int64_t> memory_cap_bytes;  // the cap applied to every device (nullopt: none)
  int64_t enumerated = 0;                   // configurations in the space
  int64_t invalid = 0;             // that no generator or cost model accepts (not simulated)
  std::string first_invalid;       // one of their reasons, for messages
  std::vector<PlanEntry> entries;  // the simulated ones, by rank
  std::vector<size_t> pareto;      // indices into entries, by rank
  int64_t feasible = 0;
  std::optional<size_t> baseline;  // time to loss: the baseline entry
  double elapsed_s = 0;
  // No cap was given and the scenario's devices have different capacities: each device is held
  // to its own (PlanMetrics::over_capacity); memory_cap_bytes is then nullopt.
  bool per_device_capacity = false;
};

// Every configuration of `space` on `scenario`, in enumeration order. Errors name the plan key
// whose values contradict the scenario (file:line:column), e.g. a microbatch size that does not
// divide the global batch, or depth searched over explicit per-stage costs.
Result<std::vector<ir::PlanConfig>> EnumerateSpace(const ir::Scenario& scenario,
                                                   ir::PlanSpace* space, int64_t* global_batch);

// Simulates one configuration. Errors: the generator's or the cost builder's (an invalid
// configuration), or a simulation larger than `memory_budget`.
Result<PlanMetrics> EvaluateConfig(const ir::Scenario& scenario, const ir::PlanConfig& config,
                                   int64_t memory_budget);

// Enumerates, simulates, checks, ranks and extracts the front. Errors: an empty space (every
// configuration invalid), and those of EnumerateSpace and of the convergence profile.
Result<PlanResult> RunPlan(const ir::Scenario& scenario, const ir::PlanSpace& space,
                           const PlanOptions& options);

// Indices of the entries on the Pareto front of (objective time, peak memory, gradient delay),
// among the feasible ones (with a time-to-loss prediction when `time_to_loss`): those no other
// entry matches or beats in all three and beats in one. Of entries equal in all three, the
// first in `entries` order stays. Sorted by entries order.
std::vector<size_t> ParetoFront(const std::vector<PlanEntry>& entries, bool time_to_loss);

// The method and its parameters as the reports print it: "paci(accumulation=4)".
std::string ConfigLabel(const ir::PlanConfig& config);

// When no configuration is feasible: which constraint binds and the configuration closest to
// meeting it, with the fix. `space` gives the keys' positions.
std::string DescribeInfeasible(const ir::Scenario& scenario, const PlanResult& result);

}  // namespace pipecast::sim
