// Version metrics per device: how stale the weights each microbatch used were, computed one way
// for the simulator (from the version plan), for the executor (from the versions its device
// actually served) and for every report.
//
// Over the microbatches whose F and B both ran on a stage of the device:
//   gap      = b_counter - f_counter: updates between the microbatch's F and its B;
//   delay    = applied_step - 1 - (f_version + f_horizon): updates between the version the F's
//              weights stand for and the update that applies the gradient (only for gradients
//              some step applies); it is negative when a prediction overshoots the version
//              that applies the gradient (docs/metrics.md), and the maximum starts at 0;
//   horizon  = prediction horizon of the F (forward) and of the B (backward; a correction gap
//              for PipeMare);
//   crossing = share of microbatches with gap > 0.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/ir.h"
#include "common/version_plan.h"

namespace pipecast::ir {

struct DeviceVersionStats {
  int32_t gap_max = 0;
  double gap_mean = 0;
  int32_t delay_max = 0;
  double delay_mean = 0;
  int32_t horizon_forward_max = 0;
  int32_t horizon_backward_max = 0;
  double crossing_fraction = 0;
  int32_t live_versions_max = 0;  // most weight copies held at once (the plan's count)
  int32_t steps = 0;              // optimizer steps of the device
  int64_t microbatches = 0;       // counted in the gap means
  int64_t delayed = 0;            // counted in the delay mean (gradients a step applied)
  friend bool operator==(const DeviceVersionStats&, const DeviceVersionStats&) = default;
};

// From `records` (the plan's own, or measured ones laid out the same way) and the plan's live
// versions and step counts. REQUIRES: records.size() == plan.records.size().
std::vector<DeviceVersionStats> ComputeVersionStats(const Program& program, const VersionPlan& plan,
                                                    std::span<const VersionRecord> records);
inline std::vector<DeviceVersionStats> ComputeVersionStats(const Program& program,
                                                           const VersionPlan& plan) {
  return ComputeVersionStats(program, plan, plan.records);
}

// Statistics over two runs of the same device one after the other (segments of a training run):
// maxima of maxima, means weighted by their counts, steps added.
DeviceVersionStats Merge(const DeviceVersionStats& a, const DeviceVersionStats& b);

}  // namespace pipecast::ir
