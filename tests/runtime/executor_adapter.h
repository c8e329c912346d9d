// The one place the method tests reach the executor: trains a MethodCase with the runtime's API
// and returns the final weights (or the whole CpuRun); and RunOnCpu, which runs one lowered program
// on CPU devices (one per pipeline device) the way runtime/trainer.cc runs a segment, for the
// executor's own tests. If the runtime API changes, only executor_adapter.cc has to follow.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "common/version_plan.h"
#include "runtime/device.h"
#include "runtime/executor.h"
#include "runtime/method_case.h"
#include "runtime/transport.h"

namespace pipecast::runtime::testing {

// The final weights of every virtual stage, in stage order, after the executor has run the
// method's program for the whole case. Errors: whatever generating, setting up or running the
// program reports (an unknown method or parameter, an unsupported dW rule, a NaN, ...).
Result<std::vector<std::vector<float>>> RunExecutor(const MethodCase& c);

struct CpuRun {
  ExecutionResult exec;
  std::vector<std::vector<float>> weights;  // per virtual stage, after the run (replica 0's)
  std::vector<std::vector<std::vector<float>>> copies;  // [replica][virtual stage], after it
  // [replica][virtual stage]: each copy's reference weights W~ after the run (AvgPipe's elastic
  // averaging; empty for a stage the program does not average).
  std::vector<std::vector<std::vector<float>>> references;
  ir::VersionPlan plan;
  // Per virtual stage, what CpuDevice::Predictions reports after the run (all zero unless
  // CpuRunOptions::track_predictions_every).
  std::vector<PredictionStats> predictions;
};

struct CpuRunOptions {
  Transport* transport = nullptr;  // null: an in-process transport
  ExecutorConfig config;
  // Wraps each device (for fault injection); the wrapper must outlive the run.
  std::function<Device*(int32_t device, Device* cpu)> wrap;
  int32_t track_predictions_every = 0;  // DeviceSetup::track_predictions_every
  int32_t rows_per_example = 1;         // rows of one example (the sequence for token windows)
};

// Runs the lowered, valid `program` on one CpuDevice per pipeline device, virtual stage s being
// stages[s] with weights init[s] and its own optimizer (on every copy of it), inputs and labels
// from `feed`.
Result<CpuRun> RunOnCpu(const ir::Program& program, const std::vector<models::Stage<float>>& stages,
                        const models::OptimizerConfig& optimizer,
                        const std::vector<std::vector<float>>& init, DataFeed& feed,
                        const CpuRunOptions& options = {});

// Trains `c` like RunExecutor, with `options` (their learning rate replaced by the case's), and
// returns the whole run.
Result<CpuRun> RunExecutorOnCpu(const MethodCase& c, CpuRunOptions options = {});

}  // namespace pipecast::runtime::testing
