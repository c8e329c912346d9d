// The executor: runs a lowered Program for real, one thread per local device, as a pure
// interpreter of the IR and its version plan. It never re-derives a schedule and holds no
// tensor: every weight, gradient, optimizer state, copy and activation lives on a Device
// (device.h), messages travel through a Transport (transport.h), and inputs and labels come from
// a DataFeed.
//
// For each action a device thread applies the plan's weight ops (copy-on-step saves,
// predictions, corrections, releases), waits for the message the action consumes, enqueues the
// compute on the device, and hands outputs to the transport. A record slot reused by a later
// microbatch first waits for the sends that read it. Results are deterministic: a device
// computes only from its own state and from messages named by key, and gradients accumulate in
// program order, so the final weights are bit-identical whatever the thread timing.
//
// Replicas (ir::Program::replicas > 1): every device holding a copy of a stage trains it; a
// microbatch runs on its replica's copies (device_of(stage, microbatch)): its data enters at
// that replica's stage 0, its loss is taken at that replica's last stage, its messages go
// between that replica's devices. An all-reduce (AR) runs to completion where it stands in the
// program: the copies' gradients meet at the replica-0 copy, are summed there in replica order
// 0, 1, ..., R - 1 (Device::SumGradients) and the sum is sent back, so every copy steps with the
// same bits (transport.h). Each microbatch's loss is scaled by 1 / the plan's loss divisor, the
// microbatches the step applying its gradient applies (over all copies when they all-reduce), so
// a step applies the mean gradient of all of them.
//
// An elastic average (AV, AvgPipe) also runs to completion where it stands: the copies' weights
// meet at the replica-0 copy, which computes, element by element, S = sum over r = 0..R-1 of
// (W_r - W~) in replica order, moves its own weights to W_0 - a (W_0 - W~) and the reference to
// W~ + a S (a = the program's elastic_alpha as a float, W~ the old reference), and sends the new
// W~ back; every other copy, once its weights are sent, moves them to W_r - a (W_r - W~) with its
// own copy of the old W~ (the same bits on every copy) and receives the new one
// (Device::ElasticAverage, ElasticPull). So every copy and every W~ are the same bits whatever
// the timing.
//
// At the end each device is synchronised: a non-finite loss or gradient (kNonFinite), a device
// error, a deadline (every wait has one) or a cancelled peer stop the run; the error names the
// method, device, stage and step, and where every device was. The first error wins and keeps its
// code; the others are cancelled through Transport::Abort.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "common/version_plan.h"
#include "runtime/device.h"
#include "runtime/transport.h"

namespace pipecast::runtime {

// Inputs of stage 0 and labels of the last stage, for global microbatch j. The returned spans
// stay valid until the next call of the same function. The executor calls each function from
// one device thread at a time (with replicas several devices hold a stage 0 or a last stage),
// and a device copies what it needs before the next call.
class DataFeed {
 public:
  virtual ~DataFeed() = default;
  virtual std::span<const float> Input(int32_t microbatch) = 0;
  virtual std::span<const int32_t> Labels(int32_t microbatch) = 0;
};

struct ExecutorConfig {
  std::chrono::milliseconds deadline{60000};  // per blocking wait
  // Learning rate of a device's step number `step` (0-based, counted in this program); also the
  // rate of predictions made before that step. A copy of a stage uses the rate of the device of
  // the stage's replica-0 copy (with one replica, its own device), so the copies agree.
  std::function<double(int32_t device, int64_t step)> learning_rate = [](int32_t, int64_t) {
    return 0.01;
  };
  // Steps each device took before this program (for reports of the first bad step).
  std::vector<int64_t> steps_before;
  // Devices this process runs (one thread each); empty = every device. Under MPI each rank runs
  // its own device; a single local device runs on the calling thread.
  std::vector<int32_t> local_devices;
};

// Wall-clock times of one action, relative to the program's start: it began at `start_ns`,
// its inputs were there (any wait for a message over) at `ready_ns`, a full backward finished
// its input-gradient pass at `split_ns` (for other actions, where their own work ended), and it
// ended at `end_ns`. The plan's weight operations around the action (saves, predictions,
// corrections) run inside [ready_ns, end_ns]: `ops_before_ns` of them before the action's own work
// and `ops_after_ns` after it, so the work alone is end - ready - ops_before - ops_after.
struct ActionTime {
  int64_t start_ns = 0;
  int64_t ready_ns = 0;
  int64_t split_ns = 0;
  int64_t end_ns = 0;
  int64_t ops_before_ns = 0;
  int64_t ops_after_ns = 0;
};

struct ExecutionResult {
  std::vector<double> losses;  // per global microbatch (those computed by local devices)
  int64_t correct = 0;         // correct training predictions of the local last stage
  // Per device (empty for devices run elsewhere): the weights each F/B/I used, as served by the
  // device, in program order, and the wall-clock time of every action.
  std::vector<std::vector<ServedWeights>> served;
  std::vector<std::vector<ActionTime>> timing;
  int64_t wall_ns = 0;
};

// The transport space of a program's training messages: its stages, microbatches, replicas and
// all-reduce rounds (no evaluation chunks).
MessageSpace TrainingSpace(const ir::Program& program);

// REQUIRES: program lowered and valid; plan = BuildVersionPlan(program, kExecution); every
// local device d has devices[d] non-null and prepared for this program and plan.
Result<ExecutionResult> Execute(const ir::Program& program, const ir::VersionPlan& plan,
                                std::span<Device* const> devices, DataFeed& data,
                                Transport& transport, const ExecutorConfig& config = {});

}  // namespace pipecast::runtime
