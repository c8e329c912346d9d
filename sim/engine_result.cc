// From the engine's per-device totals to the reported metrics (docs/metrics.md), the deadlock
// report and the transfer/receive pairing of the timeline.
#include <algorithm>
#include <string>
#include <vector>

#include "sim/engine_state.h"

namespace pipecast::sim::internal {
namespace {

// Sums of int64 values that may exceed int64 (busy time over many devices).
__extension__ typedef __int128 Int128;

using ir::Action;
using ir::ActionKind;

std::string WaitFor(const ir::Program& p, const Action& a) {
  if (a.kind == ActionKind::kStep) return "the all-reduces it issued to complete";
  if (ir::IsCollective(a.kind)) {
    return "every copy of stage " + std::to_string(a.stage) + " to reach round " +
           std::to_string(a.microbatch) + " of its " + std::string(ir::KindName(a.kind));
  }
  const bool activation = a.kind == ActionKind::kForward || a.kind == ActionKind::kRecvActivation;
  const int32_t from = activation ? a.stage - 1 : a.stage + 1;
  const std::string what = activation ? "the activation" : "the gradient";
  std::string device;
  if (from >= 0 && from < p.num_stages)
    device = " (device " + std::to_string(p.placement_well_formed() && a.microbatch >= 0
                                              ? p.device_of(from, a.microbatch)
                                              : p.device_of(from)) +
             ")";
  return what + " of microbatch " + std::to_string(a.microbatch) + " from stage " +
         std::to_string(from) + device;
}

}  // namespace

std::string DescribeDeadlock(const ir::Program& p, const std::vector<DeviceRun>& runs) {
  std::string blocked;
  for (size_t d = 0; d < p.devices.size(); ++d) {
    const size_t at = runs[d].cursor;
    if (at >= p.devices[d].size()) continue;
    const Action& a = p.devices[d][at];
    blocked += "\n  device " + std::to_string(d) + " at action " + std::to_string(at) + " (" +
               ir::ActionToken(a, true) + ") waits for " + WaitFor(p, a);
  }
  return blocked.empty() ? "" : "deadlock: no device can make progress" + blocked;
}

Result<SimResult> AssembleResult(const ir::Program& p, const CostModel& cost,
                                 const EngineCosts& costs, const std::vector<DeviceRun>& runs,
                                 const std::vector<MemoryBreakdown>& peak_breakdown,
                                 const std::vector<VersionTally>& tallies,
                                 const std::vector<TimeNs>& minibatch_done) {
  SimResult r;
  const size_t num_devices = p.devices.size();
  r.stages.resize(num_devices);
  TimeNs makespan = 0, max_busy = 0, max_span = 0;
  Int128 total_busy = 0;  // the sum over devices may exceed int64 where each term does not
  for (size_t d = 0; d < num_devices; ++d) {
    StageMetrics& m = r.stages[d];
    const DeviceRun& st = runs[d];
    m.stage = static_cast<int32_t>(d);
    m.busy = st.busy;
    m.first_start = std::max<TimeNs>(st.first_start, 0);
    m.last_end = st.free;
    m.peak_memory_bytes = std::max<int64_t>(st.peak_memory, 0);
    m.peak_breakdown = peak_breakdown[d];
    m.peak_activations_microbatches =
        static_cast<double>(st.max_in_flight) / costs.devices[d].chunks;
    m.versions = tallies[d].Finish(st.live_max, st.steps);
    const int64_t capacity = cost.device(static_cast<int32_t>(d)).memory_bytes;
    m.over_memory = capacity > 0 && m.peak_memory_bytes > capacity;
    m.memory_capacity_bytes = capacity;
    makespan = std::max(makespan, m.last_end);
    max_busy = std::max(max_busy, m.busy);
    max_span = std::max(max_span, m.span());
    total_busy += m.busy;
  }
  r.makespan = makespan;
  r.samples = static_cast<int64_t>(p.total_microbatches()) * p.microbatch_size;
  if (makespan > 0) {
    r.throughput_samples_per_s =
        static_cast<double>(r.samples) * 1e9 / static_cast<double>(makespan);
    r.bubble.idle_fraction =
        1.0 - static_cast<double>(total_busy) /
                  (static_cast<double>(makespan) * static_cast<double>(num_devices));
  }
  if (max_busy > 0) {
    r.bubble.overhead_vs_ideal =
        static_cast<double>(makespan - max_busy) / static_cast<double>(max_busy);
  }
  if (max_span > 0) {
    r.bubble.zb_rate = static_cast<double>(max_span - max_busy) / static_cast<double>(max_span);
  }
  // Steady state: samples of minibatches 2..N over the time from minibatch 1's completion to
  // minibatch N's; the start-up and the first minibatch's fill are excluded.
  r.steady_throughput_samples_per_s = r.throughput_samples_per_s;
  if (p.minibatches >= 2) {
    const TimeNs window = minibatch_done.back() - minibatch_done.front();
    if (window > 0) {
      r.steady_throughput_samples_per_s = static_cast<double>(p.minibatches - 1) * p.microbatches *
                                          static_cast<double>(p.microbatch_size) * 1e9 /
                                          static_cast<double>(window);
    }
  }
  return r;
}

void PairTransfers(const ir::Program& p, bool receives_take_time,
                   const std::vector<int32_t>& recv_activation,
                   const std::vector<int32_t>& recv_gradient, SimResult& r) {
  const size_t total = static_cast<size_t>(p.total_microbatches());
  for (Transfer& t : r.transfers) {
    const Action& a = p.devices[t.src_device][t.send_index];
    const bool grad = a.kind == ActionKind::kSendGradient;
    const int32_t to_stage = grad ? a.stage - 1 : a.stage + 1;
    const size_t to_slot = static_cast<size_t>(to_stage) * total + a.microbatch;
    const std::vector<int32_t>& index = grad ? recv_gradient : recv_activation;
    if (index.empty() || index[to_slot] < 0) continue;
    t.recv_index = index[to_slot];
    if (!receives_take_time) r.timing[t.dst_device][t.recv_index] = {t.arrival, t.arrival};
  }
}

}  // namespace pipecast::sim::internal
