// The discrete-event engine: times a Program under a CostModel.
//
// Every device runs its actions in program order; links carry messages in the order their
// sends appear. Because every resource is used in a fixed order, the timeline is a longest-path
// computation over the action DAG: the engine visits actions once, in dependency order (a device
// advances until its next action waits for data not yet produced, then the device that produces
// it runs). Time is integer nanoseconds and there are no ties to break, so results are identical
// on every run and machine. Actions that can never run (a cycle) are reported as a deadlock that
// names every blocked device, its next action and what it waits for.
//
// The program may be lowered (sends and receives present, common/lower.h) or not: without any
// send or receive the engine derives the transfers itself, exactly where lowering would put them
// (a send right after its producer, a receive right before its consumer), so the results are the
// same and no send/receive action is ever materialised. The weight-version metrics are counted in
// the same pass (sim/engine_versions.h). Every time and byte sum is checked: a run whose times do
// not fit int64 nanoseconds is an error naming the quantity, not a wrapped number.
#pragma once

#include "common/compact_program.h"
#include "common/ir.h"
#include "common/status.h"
#include "sim/cost_model.h"
#include "sim/result.h"

namespace pipecast::sim {

struct SimOptions {
  // Fill SimResult::timing, transfers, memory and plan, which traces and SVGs need. Costs memory
  // and time proportional to the program; the metrics are the same either way. REQUIRES a
  // lowered program when the program has cross-device dependencies (the timeline is indexed by
  // the program's actions, sends and receives included).
  bool record_timeline = true;
};

// REQUIRES: `program` is structurally valid (validate.h) and either lowered or free of sends and
// receives; cost.stages.size() == program.num_stages.
// Errors: kDeadlock (actions that can never run), kInvalidArgument (a negative cost, or a time or
// size beyond int64: the message names it).
Result<SimResult> Simulate(const ir::Program& program, const CostModel& cost,
                           const SimOptions& options = {});

// The same for a program in the compact encoding (common/compact_program.h), without a
// timeline: the pass reads the 8-byte actions directly (a program that needs the full version
// level, or a run that fails, is simulated again expanded, so messages name its actions).
Result<SimResult> Simulate(const ir::CompactProgram& program, const CostModel& cost);

}  // namespace pipecast::sim
