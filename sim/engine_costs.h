// The engine's per-stage and per-device costs, resolved once from the CostModel before the event
// pass, so the pass only indexes. Every time and byte computation here is checked: a quantity
// that does not fit the simulator's int64 nanoseconds or bytes is an error naming it (e.g. a
// 2 GB message over a 1 bit/s link), never a wrapped number.
#pragma once

#include <cstdint>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "sim/cost_model.h"

namespace pipecast::sim::internal {

// What one virtual stage's actions cost.
struct StageTimes {
  TimeNs forward = 0;
  TimeNs backward = 0;
  TimeNs backward_input = 0;
  TimeNs backward_weight = 0;
  TimeNs predict = 0;  // extra device time of an F/B/I that computes with predicted weights
  TimeNs correct = 0;  // extra device time of a B/I with PipeMare-corrected weights
  TimeNs message = 0;  // link occupancy of one activation or gradient message
  // One ring all-reduce of the stage's gradient over the program's replicas (AllReduceTime).
  TimeNs all_reduce = 0;
  TimeNs average = 0;  // the same over the stage's weights (AvgPipe's elastic averaging)
  int64_t activation_bytes = 0;
  int64_t activation_bytes_after_input_grad = 0;
  int64_t message_bytes = 0;
};

// A ring all-reduce of `bytes` over `participants` copies (Patarasuk and Yuan, "Bandwidth
// optimal all-reduce algorithms for clusters of workstations", JPDC 2009): a reduce-scatter and
// an all-gather of R - 1 steps each, every step moving bytes / R over each link and paying the
// link's latency: 2(R - 1)/R * bytes / bandwidth + 2(R - 1) * latency. 0 for one participant;
// -1 when it does not fit int64 nanoseconds.
TimeNs AllReduceTime(int64_t bytes, int32_t participants, const LinkSpec& link);

// What one device's steps cost and what its memory holds besides activations and weights.
struct DeviceCosts {
  TimeNs step = 0;  // one optimizer step of every stage on the device
  // Extra time of a step that first saves the version it replaces (copy-on-step: a stash, 2BW's
  // older buffer or a later explicit reference still needs it): read and write the weights.
  TimeNs save = 0;
  int64_t weight_bytes = 0;
  int64_t optimizer_bytes = 0;
  int64_t gradient_bytes = 0;
  int64_t extra_bytes = 0;  // PipeMare's velocity buffer
  int64_t fixed_bytes = 0;  // optimizer + gradient + extra
  int32_t chunks = 1;       // virtual stages on the device (at least 1)
};

struct EngineCosts {
  // Per copy of a stage: stages[r * num_stages + s] for replica r's copy of stage s, timed on
  // its own device (devices may differ in speed); replica 0's entries are stages[0 .. S).
  std::vector<StageTimes> stages;
  std::vector<DeviceCosts> devices;
};

// `uses_correction[d]` is 1 when device d computes with PipeMare-corrected weights (its steps
// also update the velocity). Errors (kInvalidArgument): a negative time or size, or a derived
// time or byte count beyond int64.
Result<EngineCosts> ResolveCosts(const ir::Program& program, const CostModel& cost,
                                 const std::vector<uint8_t>& uses_correction);

}  // namespace pipecast::sim::internal
