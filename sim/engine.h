// The discrete-event engine: times a lowered Program under a CostModel.
//
// Every device runs its actions in program order; links carry messages in the order their
// sends appear. Because every resource is used in a fixed order, the timeline is a longest-path
// computation over the action DAG: the engine visits actions once, in dependency order (a device
// advances until its next action waits for data not yet produced, then the device that produces
// it runs). Time is integer nanoseconds and there are no ties to break, so results are identical
// on every run and machine. Actions that can never run (a cycle) are reported as a deadlock that
// names every blocked device, its next action and what it waits for.
#pragma once

#include "common/ir.h"
#include "common/status.h"
#include "sim/cost_model.h"
#include "sim/result.h"

namespace pipecast::sim {

struct SimOptions {
  bool record_timeline = true;  // fill SimResult::timing, transfers and memory
};

// REQUIRES: `program` is lowered (sends and receives present for every cross-device dependency)
// and structurally valid; cost.stages.size() == program.num_stages.
Result<SimResult> Simulate(const ir::Program& program, const CostModel& cost,
                           const SimOptions& options = {});

}  // namespace pipecast::sim
