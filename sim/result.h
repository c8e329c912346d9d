// What a simulation produces: the timeline of every action and transfer, memory over time, and
// the metrics reported per method and per stage. Output writers (report.h, trace.h, svg.h) read
// only this and the Program it was computed from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/version_plan.h"
#include "common/version_stats.h"
#include "sim/cost_model.h"

namespace pipecast::sim {

// Start and end of one action of one device's program (end = start for receives, which take no
// device time). For sends, start/end are the transfer's link occupancy and `arrival` its arrival.
struct ActionTiming {
  TimeNs start = 0;
  TimeNs end = 0;
  friend bool operator==(const ActionTiming&, const ActionTiming&) = default;
};

struct Transfer {
  int32_t src_device = 0;
  int32_t dst_device = 0;
  int32_t send_index = 0;   // index of the send action in the source device's program
  int32_t recv_index = -1;  // index of the matching receive in the destination's program
  TimeNs start = 0;         // link starts carrying the message
  TimeNs link_end = 0;      // link free again (start + bytes / bandwidth)
  TimeNs arrival = 0;       // link_end + latency
  int64_t bytes = 0;
};

// Memory of one device after a change, for the memory counter track.
struct MemorySample {
  TimeNs time = 0;
  int64_t bytes = 0;
};

struct MemoryBreakdown {
  int64_t weights = 0;            // weight_bytes x live weight copies
  int64_t optimizer_state = 0;
  int64_t gradients = 0;
  int64_t activations = 0;        // activations of microbatches in flight
  int64_t extra = 0;              // PipeMare's velocity buffer
  int64_t total() const { return weights + optimizer_state + gradients + activations + extra; }
};

struct StageMetrics {
  int32_t stage = 0;  // the device index
  TimeNs busy = 0;    // sum of compute, step, prediction, stash and correction time
  TimeNs first_start = 0;
  TimeNs last_end = 0;
  TimeNs span() const { return last_end - first_start; }
  int64_t peak_memory_bytes = 0;
  MemoryBreakdown peak_breakdown;     // breakdown at the moment of the peak
  double peak_activations_microbatches = 0;  // in-flight chunk-microbatches / chunks per device
  // Weight versions: gap, delay, horizons, crossing share, live copies, steps (version_stats.h).
  ir::DeviceVersionStats versions;
  bool over_memory = false;
  int64_t memory_capacity_bytes = 0;  // the device's own capacity (DeviceSpec); 0 = unlimited
};

struct Bubble {
  double idle_fraction = 0;      // (a) 1 - sum busy / (devices x makespan)
  double overhead_vs_ideal = 0;  // (b) (makespan - max busy) / max busy
  double zb_rate = 0;            // (c) (max span - max busy) / max span
};

struct SimResult {
  TimeNs makespan = 0;
  int64_t samples = 0;
  double throughput_samples_per_s = 0;
  double steady_throughput_samples_per_s = 0;
  Bubble bubble;
  std::vector<StageMetrics> stages;  // one per device
  ir::VersionPlan plan;  // the program's version plan (records, live copies)

  // Filled when SimOptions::record_timeline is set.
  std::vector<std::vector<ActionTiming>> timing;  // [device][action index]
  std::vector<Transfer> transfers;  // grouped by sender; per link in send (= start) order
  std::vector<std::vector<MemorySample>> memory;  // [device]
};

}  // namespace pipecast::sim
