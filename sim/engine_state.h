// Internal to the engine: what the event pass accumulates per device, and the functions that turn
// it into a SimResult (metrics, deadlock report) once the pass is over (engine_result.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "sim/cost_model.h"
#include "sim/engine_costs.h"
#include "sim/engine_versions.h"
#include "sim/result.h"

namespace pipecast::sim::internal {

// One device's progress and totals: one cache line, which the pass copies into locals while it
// runs the device (the breakdown at the peak lives apart, as it changes rarely).
struct DeviceRun {
  size_t cursor = 0;  // next action to run
  // When the device is free again, which is also the end of its last action that took device
  // time (every such action moves it).
  TimeNs free = 0;
  TimeNs busy = 0;
  TimeNs first_start = -1;       // -1 until the first action that takes device time
  int64_t activation_bytes = 0;  // activations of the microbatches in flight
  int64_t peak_memory = -1;
  int32_t in_flight = 0;  // chunk-microbatches between F and B (or W)
  int32_t max_in_flight = 0;
  int32_t steps = 0;     // Steps taken so far: the device's current version
  int32_t live_max = 0;  // most weight copies held at once
};

// Per-device metrics of a finished pass: busy, span, memory, versions, and the run's makespan,
// throughput and bubbles. `minibatch_done[n]` is the end of minibatch n's last gradient.
Result<SimResult> AssembleResult(const ir::Program& program, const CostModel& cost,
                                 const EngineCosts& costs, const std::vector<DeviceRun>& runs,
                                 const std::vector<MemoryBreakdown>& peak_breakdown,
                                 const std::vector<VersionTally>& tallies,
                                 const std::vector<TimeNs>& minibatch_done);

// "deadlock: no device can make progress" and, for every device that did not finish, its next
// action and what it waits for; "" when every device finished.
std::string DescribeDeadlock(const ir::Program& program, const std::vector<DeviceRun>& runs);

// Pairs each recorded transfer with the receive that consumed it (`recv_activation[slot]` and
// `recv_gradient[slot]` hold the receives' indices, -1 for none) and gives receives that take no
// device time the arrival as their timing.
void PairTransfers(const ir::Program& program, bool receives_take_time,
                   const std::vector<int32_t>& recv_activation,
                   const std::vector<int32_t>& recv_gradient, SimResult& result);

}  // namespace pipecast::sim::internal
