// The cost model the simulator times a program with: per-virtual-stage compute times and bytes,
// per-device memory, and the network. Times are integer nanoseconds (deterministic arithmetic);
// bytes are integers. Scenario files (common/scenario.h) are turned into a CostModel by
// BuildCostModel (sim/cost_builder.h); tests build one directly.
//
// Semantics (docs/cost-model.md): each device runs its compute actions one at a time in program
// order; an action starts when the device is free and its inputs have arrived. Stage times are
// those on a device of speed 1; on device d a compute action (F, B, I, W, a given optimizer step)
// takes round(time / devices[d].speed). A transfer starts
// when its producer ends and its link direction is free, occupies the link for
// bytes / bandwidth, and arrives `latency` later. Optimizer steps, weight prediction, stashing
// and PipeMare's correction cost time (bytes moved over memory bandwidth unless given) and memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace pipecast::sim {

using TimeNs = int64_t;

struct StageCost {
  TimeNs forward = 0;
  TimeNs backward = 0;         // full backward (B); used when B is not split
  TimeNs backward_input = 0;   // I of a split backward
  TimeNs backward_weight = 0;  // W of a split backward
  // Optimizer step of this stage's weights; < 0 means "derive from bytes over memory bandwidth".
  TimeNs optimizer_step = -1;
  // What a post-validated step (MethodOptions::post_validation: zb-1p, zb-2p) adds: keeping the
  // weights and optimizer state it replaces so that a failed check can roll it back; < 0 means
  // "derive": copy both, 2 * (weight_bytes + optimizer_state_bytes) over memory bandwidth.
  TimeNs optimizer_rollback = -1;
  int64_t activation_bytes = 0;  // stashed activations of one microbatch, F until B (or W)
  int64_t activation_bytes_after_input_grad = 0;  // kept from I until W when B is split
  int64_t message_bytes = 0;          // activation (and gradient) message size to the next stage
  int64_t weight_bytes = 0;           // one copy of this stage's weights
  int64_t gradient_bytes = -1;        // gradient buffer; < 0 means equal to weight_bytes
  int64_t optimizer_state_bytes = 0;  // e.g. momentum, Adam's two moments
  // One all-reduce / average round of this stage (given, e.g. measured); < 0: the ring time over
  // the collective link from the gradient / weight bytes (sim/engine_costs.h).
  TimeNs all_reduce = -1;
  TimeNs average = -1;
};

struct DeviceSpec {
  int64_t memory_bytes = 0;     // capacity; 0 = unlimited (no over-memory flag)
  double memory_bandwidth = 0;  // bytes/s; 0 = weight copies and derived steps are free
  // Compute speed relative to the device the stage times are given for (> 0): F, B, I, W and a
  // given optimizer_step take ComputeTime(time, speed). Memory copies and derived steps are
  // timed by memory_bandwidth instead, transfers by the link.
  double speed = 1;
};

struct LinkSpec {
  TimeNs latency = 0;
  double bandwidth = 0;  // bytes/s; 0 = infinite (transfers take only the latency)
  // LogP's per-message overheads: device time the sender spends handing a message over (the
  // transfer starts after it) and the receiver spends picking it up (its receive then waits for
  // the arrival). 0 = sends and receives take no device time.
  TimeNs send_overhead = 0;
  TimeNs recv_overhead = 0;
};

struct CostModel {
  std::vector<StageCost> stages;    // one per virtual stage
  std::vector<DeviceSpec> devices;  // one per device (or one entry used for every device)
  LinkSpec link;                    // every directed device pair gets its own link like this
  // What all-reduces and averages run over (latency and bandwidth; sim/engine_costs.h);
  // absent: `link`.
  std::optional<LinkSpec> collective_link;
  // All-reduces block their device until done, as pipecast's executor runs them (rather than
  // running beside compute on a collective channel, as NCCL does): how a measured profile of
  // `pipecast run` is simulated.
  bool blocking_collectives = false;
  const LinkSpec& collective() const { return collective_link ? *collective_link : link; }

  // Device d's spec. A list shorter than the program's devices describes one copy of the
  // pipeline and repeats for every data-parallel copy: device d is entry d mod size.
  const DeviceSpec& device(int32_t d) const {
    return devices.size() == 1 ? devices[0] : devices[static_cast<size_t>(d) % devices.size()];
  }
};

// A cost model where every stage has the same forward/backward times and nothing else costs.
// If backward_weight > 0, backward_input + backward_weight are the split-B costs.
CostModel UniformCostModel(int32_t num_stages, TimeNs forward, TimeNs backward,
                           TimeNs backward_input = 0, TimeNs backward_weight = 0);

// Largest simulated time: about 292 years of int64 nanoseconds.
inline constexpr TimeNs kMaxTime = INT64_MAX;

// A compute time of `time` ns on a speed-1 device, on a device of `speed`: time / speed rounded
// to the nearest nanosecond (exactly `time` when speed is 1). -1 when it exceeds kMaxTime.
// REQUIRES: time >= 0, speed > 0.
TimeNs ComputeTime(TimeNs time, double speed);

// Time to move `bytes` at `bandwidth` bytes/s, rounded up to whole nanoseconds; 0 if bandwidth 0.
// -1 when the time exceeds kMaxTime (the caller reports which quantity is too large).
TimeNs TransferTime(int64_t bytes, double bandwidth);

}  // namespace pipecast::sim
