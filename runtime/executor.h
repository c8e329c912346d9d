// The executor: runs a lowered Program for real, one thread per device, obeying every action and
// every weight annotation of the IR. It never re-derives a schedule.
//
// Each device interprets its actions in order: F/B/I/W call the stage backends with the weights
// the annotation names (current, the microbatch's stash, a prediction, one of 2BW's buffers, an
// explicit version, PipeMare's corrected weights), sends and receives go through the transport,
// and S steps every stage of the device. Results are deterministic: a device computes only from
// its own state and from messages named by key, gradients accumulate in program order, so the
// final weights are bit-identical whatever the thread timing.
//
// Every F and B records the version it used (VersionUse); for any program this trace equals the
// simulator's accounting (common/versions.h). A wait that passes its deadline, or a NaN/Inf in
// a loss or gradient, stops every device; the error names the method, device, stage, step and
// each device's last action.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "runtime/stage_backend.h"
#include "runtime/transport.h"

namespace pipecast::runtime {

struct ExecutorConfig {
  std::chrono::milliseconds deadline{60000};  // per blocking wait
  // Learning rate of a device's step number `step` (0-based); also used for predictions made
  // before that step.
  std::function<double(int32_t device, int64_t step)> learning_rate = [](int32_t, int64_t) {
    return 0.01;
  };
  double pipemare_decay = 0.5;  // velocity EMA of PipeMare's correction
  // Devices this process runs (one thread each); empty = every device. Under MPI each rank runs
  // its own device; a single local device runs on the calling thread.
  std::vector<int32_t> local_devices;
};

// The version of the weights one F, B or I used, as the executor served it.
struct VersionUse {
  ir::ActionKind kind = ir::ActionKind::kForward;
  int32_t stage = 0;
  int32_t microbatch = 0;
  int32_t counter = 0;  // steps the device had taken
  int32_t version = 0;  // version of the weights (the base of a prediction or correction)
  int32_t horizon = 0;  // prediction horizon or correction gap
  friend bool operator==(const VersionUse&, const VersionUse&) = default;
};

struct ActionTime {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};

struct ExecutionResult {
  // Per virtual stage, after the run (stages of devices run elsewhere keep their initial values).
  std::vector<std::vector<float>> weights;
  std::vector<double> losses;                   // per microbatch (global index)
  std::vector<std::vector<VersionUse>> versions;  // per device, in program order
  std::vector<std::vector<ActionTime>> timing;    // per device, per action (wall clock)
  int64_t wall_ns = 0;
};

// REQUIRES: program lowered; stages.size() == optimizers.size() == weights.size() ==
// program.num_stages; weights[s].size() == stages[s]->num_params().
Result<ExecutionResult> Execute(const ir::Program& program,
                                std::vector<std::unique_ptr<StageBackend>>& stages,
                                std::vector<std::unique_ptr<StageOptimizer>>& optimizers,
                                std::vector<std::vector<float>> weights, DataFeed& data,
                                Transport& transport, const ExecutorConfig& config = {});

}  // namespace pipecast::runtime
