#include "sim/engine.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/version_plan.h"
#include "common/version_stats.h"

namespace pipecast::sim {
namespace {

using ir::Action;
using ir::ActionKind;
using ir::WeightSource;

constexpr TimeNs kUnknown = -1;

// Per-virtual-stage durations resolved once (integer ns), so the timing loop only indexes.
struct StageDurations {
  TimeNs forward, backward, backward_input, backward_weight, predict, correct;
  int64_t act_bytes, act_after_input, message_bytes;
  TimeNs message_time;  // message_bytes over the link bandwidth
};

// Per-device constants for memory and steps.
struct DeviceConstants {
  TimeNs step = 0;
  int64_t weight_bytes = 0, optimizer_bytes = 0, gradient_bytes = 0, extra_bytes = 0;
  int32_t chunks = 1;
};

// What a device accumulates while it runs; copied into locals while the device is processed so
// the compiler can keep it in registers (stores to the int64 data-ready arrays would otherwise
// force reloads), and written back when the device blocks or finishes.
struct RunState {
  size_t cursor = 0;
  TimeNs free = 0;
  TimeNs busy = 0;
  TimeNs first_start = -1;
  TimeNs last_end = 0;
  int64_t act_bytes = 0;
  int32_t in_flight = 0;
  int32_t max_in_flight = 0;
  int64_t peak_memory = -1;
};

// The link a device sends on; a device has few peers, so a short list is fastest.
struct LinkState {
  int32_t dst;
  TimeNs free;
};

TimeNs& LinkFree(std::vector<LinkState>& links, int32_t dst) {
  for (LinkState& l : links)
    if (l.dst == dst) return l.free;
  links.push_back({dst, 0});
  return links.back().free;
}

std::string DescribeWait(const ir::Program& p, int32_t d, const Action& a) {
  std::string what;
  if (a.kind == ActionKind::kForward) {
    what = "the activation of microbatch " + std::to_string(a.microbatch) + " from stage " +
           std::to_string(a.stage - 1) + " (device " + std::to_string(p.device_of(a.stage - 1)) +
           ")";
  } else {
    what = "the gradient of microbatch " + std::to_string(a.microbatch) + " from stage " +
           std::to_string(a.stage + 1) + " (device " + std::to_string(p.device_of(a.stage + 1)) +
           ")";
  }
  (void)d;
  return what;
}

}  // namespace

Result<SimResult> Simulate(const ir::Program& p, const CostModel& cost,
                           const SimOptions& options) {
  PIPECAST_CHECK(static_cast<int32_t>(cost.stages.size()) == p.num_stages)
      << "cost model has " << cost.stages.size() << " stages, program " << p.num_stages;
  const int32_t num_devices = static_cast<int32_t>(p.devices.size());
  const int32_t num_stages = p.num_stages;
  const int32_t total_mb = p.total_microbatches();
  const int32_t last_stage = num_stages - 1;
  const size_t slots = static_cast<size_t>(num_stages) * total_mb;

  SimResult r;
  r.plan = ir::BuildVersionPlan(p, ir::PlanDetail::kLivePerAction);

  // PipeMare keeps a velocity buffer and updates it at every step.
  const std::vector<uint8_t>& uses_correction = r.plan.uses_correction;

  // Resolve durations and memory constants.
  std::vector<StageDurations> sd(num_stages);
  std::vector<DeviceConstants> dc(num_devices);
  for (int32_t d = 0; d < num_devices; ++d) dc[d].chunks = std::max(1, p.stages_on_device(d));
  for (int32_t s = 0; s < num_stages; ++s) {
    const StageCost& c = cost.stages[s];
    const int32_t d = p.device_of(s);
    const double bw = cost.device(d).memory_bandwidth;
    const int64_t grad = c.gradient_bytes < 0 ? c.weight_bytes : c.gradient_bytes;
    sd[s] = {c.forward,
             c.backward,
             c.backward_input,
             c.backward_weight,
             // Prediction reads W and the optimizer state and writes the predicted copy.
             TransferTime(2 * c.weight_bytes + c.optimizer_state_bytes, bw),
             // Correction reads W and the velocity and writes the corrected copy.
             TransferTime(3 * c.weight_bytes, bw),
             c.activation_bytes,
             c.activation_bytes_after_input_grad,
             c.message_bytes,
             TransferTime(c.message_bytes, cost.link.bandwidth)};
    DeviceConstants& k = dc[d];
    // A step reads and writes W and the optimizer state and reads the gradient; PipeMare also
    // updates its velocity buffer (read velocity, old and new W; write velocity).
    const int64_t step_bytes = 2 * c.weight_bytes + grad + 2 * c.optimizer_state_bytes +
                               (uses_correction[d] ? 4 * c.weight_bytes : 0);
    if (c.optimizer_step >= 0) {
      k.step += c.optimizer_step + (uses_correction[d] ? TransferTime(4 * c.weight_bytes, bw) : 0);
    } else {
      k.step += TransferTime(step_bytes, bw);
    }
    k.weight_bytes += c.weight_bytes;
    k.optimizer_bytes += c.optimizer_state_bytes;
    k.gradient_bytes += grad;
    k.extra_bytes += uses_correction[d] ? c.weight_bytes : 0;
  }

  // Data-ready times: act_ready[s * T + j] = when stage s may run F of microbatch j;
  // grad_ready likewise for its backward. fwd_end/bwd_end: producer end times for sends.
  std::vector<TimeNs> act_ready(slots, kUnknown), grad_ready(slots, kUnknown);
  std::vector<TimeNs> fwd_end(slots, kUnknown), bwd_end(slots, kUnknown);
  std::vector<TimeNs> minibatch_done(p.minibatches, 0);
  const bool record = options.record_timeline;
  // For the timeline: which receive consumed each slot (to pair transfers with receives).
  std::vector<int32_t> recv_act_index, recv_grad_index;
  std::vector<std::pair<int32_t, int32_t>> transfer_of_act, transfer_of_grad;
  if (record) {
    r.timing.resize(num_devices);
    r.memory.resize(num_devices);
    size_t sends = 0;
    for (int32_t d = 0; d < num_devices; ++d) {
      r.timing[d].resize(p.devices[d].size());
      r.memory[d].reserve(p.devices[d].size());
      for (const Action& a : p.devices[d])
        sends += a.kind == ActionKind::kSendActivation || a.kind == ActionKind::kSendGradient;
    }
    r.transfers.reserve(sends);
  }

  std::vector<RunState> state(num_devices);
  std::vector<int64_t> waiting_slot(num_devices, -1);  // 2 * slot + (gradient ? 1 : 0)
  std::vector<std::vector<LinkState>> links(num_devices);
  r.stages.resize(num_devices);
  for (int32_t d = 0; d < num_devices; ++d) r.stages[d].stage = d;
  std::vector<int32_t> ready;
  ready.reserve(num_devices);
  for (int32_t d = num_devices - 1; d >= 0; --d) ready.push_back(d);

  // Writes a data-ready slot and wakes the consumer device if it waits for exactly this slot.
  auto deliver = [&](std::vector<TimeNs>& arr, size_t slot, TimeNs t, int32_t consumer,
                     int64_t key) {
    arr[slot] = t;
    if (waiting_slot[consumer] == key) {
      waiting_slot[consumer] = -1;
      ready.push_back(consumer);
    }
  };

  while (!ready.empty()) {
    const int32_t d = ready.back();
    ready.pop_back();
    const std::vector<Action>& prog = p.devices[d];
    const size_t len = prog.size();
    const std::vector<int32_t>& live = r.plan.live_during[d];
    const bool simple_live = live.empty();
    StageMetrics& m = r.stages[d];
    const DeviceConstants k = dc[d];
    RunState st = state[d];
    size_t i = st.cursor;
    TimeNs free = st.free;
    for (; i < len; ++i) {
      const Action& a = prog[i];
      const size_t slot = static_cast<size_t>(a.stage) * total_mb + a.microbatch;
      TimeNs start = free, dur = 0;
      switch (a.kind) {
        case ActionKind::kForward: {
          if (a.stage > 0) {
            const TimeNs t = act_ready[slot];
            if (t == kUnknown) {
              waiting_slot[d] = 2 * static_cast<int64_t>(slot);
              goto blocked;
            }
            start = std::max(start, t);
          }
          const StageDurations& s = sd[a.stage];
          dur = s.forward;
          if (a.weights.source == WeightSource::kPredicted) dur += s.predict;
          st.act_bytes += s.act_bytes;
          st.max_in_flight = std::max(st.max_in_flight, ++st.in_flight);
          break;
        }
        case ActionKind::kBackward:
        case ActionKind::kBackwardInput: {
          if (a.stage < last_stage) {
            const TimeNs t = grad_ready[slot];
            if (t == kUnknown) {
              waiting_slot[d] = 2 * static_cast<int64_t>(slot) + 1;
              goto blocked;
            }
            start = std::max(start, t);
          }
          const StageDurations& s = sd[a.stage];
          dur = a.kind == ActionKind::kBackward ? s.backward : s.backward_input;
          if (a.weights.source == WeightSource::kPredicted) dur += s.predict;
          if (a.weights.source == WeightSource::kCorrected) dur += s.correct;
          break;
        }
        case ActionKind::kWeightGrad:
          dur = sd[a.stage].backward_weight;
          break;
        case ActionKind::kStep:
          dur = k.step;
          break;
        case ActionKind::kSendActivation:
        case ActionKind::kSendGradient: {
          const bool grad = a.kind == ActionKind::kSendGradient;
          const int32_t to_stage = grad ? a.stage - 1 : a.stage + 1;
          const int32_t dst = p.device_of(to_stage);
          const TimeNs produced = grad ? bwd_end[slot] : fwd_end[slot];
          PIPECAST_CHECK(produced != kUnknown)
              << "device " << d << " action " << i << ": send before its producer";
          TimeNs ready = produced;
          if (cost.link.send_overhead > 0) {  // the sender's device hands the message over
            const TimeNs s0 = std::max(free, produced);
            ready = free = s0 + cost.link.send_overhead;
            st.busy += cost.link.send_overhead;
            if (st.first_start < 0) st.first_start = s0;
            st.last_end = free;
          }
          TimeNs& link_free = LinkFree(links[d], dst);
          const TimeNs t0 = std::max(ready, link_free);
          const int64_t bytes = sd[a.stage].message_bytes;
          const TimeNs link_end = t0 + sd[a.stage].message_time;
          link_free = link_end;
          const TimeNs arrival = link_end + cost.link.latency;
          const size_t to_slot = static_cast<size_t>(to_stage) * total_mb + a.microbatch;
          deliver(grad ? grad_ready : act_ready, to_slot, arrival, dst,
                  2 * static_cast<int64_t>(to_slot) + (grad ? 1 : 0));
          if (record) {
            r.timing[d][i] = {t0, link_end};
            r.transfers.push_back({d, dst, static_cast<int32_t>(i), -1, t0, link_end, arrival,
                                   bytes});
          }
          continue;  // a send occupies the link, not the device
        }
        case ActionKind::kRecvActivation:
        case ActionKind::kRecvGradient:
          if (cost.link.recv_overhead > 0) {  // the receiver's device picks the message up
            const bool grad = a.kind == ActionKind::kRecvGradient;
            const TimeNs t = (grad ? grad_ready : act_ready)[slot];
            if (t == kUnknown) {
              waiting_slot[d] = 2 * static_cast<int64_t>(slot) + (grad ? 1 : 0);
              goto blocked;
            }
            const TimeNs r0 = std::max(free, t);
            free = r0 + cost.link.recv_overhead;
            st.busy += cost.link.recv_overhead;
            if (st.first_start < 0) st.first_start = r0;
            st.last_end = free;
            if (record) r.timing[d][i] = {r0, free};
          }
          if (record) {
            const bool grad = a.kind == ActionKind::kRecvGradient;
            auto& index = grad ? recv_grad_index : recv_act_index;
            if (index.empty()) index.assign(slots, -1);
            index[slot] = static_cast<int32_t>(i);
          }
          continue;  // the consuming F/B waits for the data
      }
      {
        const TimeNs end = start + dur;
        free = end;
        st.busy += dur;
        if (st.first_start < 0) st.first_start = start;
        st.last_end = end;
        if (record) r.timing[d][i] = {start, end};
        // Memory while the action runs: activations include this F's; weights as held now.
        const int64_t weights =
            k.weight_bytes *
            (simple_live ? 1 + ir::VersionPlan::ScratchCopy(a) : live[i]);
        const int64_t total =
            weights + k.optimizer_bytes + k.gradient_bytes + k.extra_bytes + st.act_bytes;
        if (total > st.peak_memory) {
          st.peak_memory = total;
          m.peak_breakdown = {weights, k.optimizer_bytes, k.gradient_bytes, st.act_bytes,
                              k.extra_bytes};
        }
        if (record && a.kind == ActionKind::kForward) r.memory[d].push_back({start, total});
        if (ir::ProducesWeightGrad(a.kind)) {  // a microbatch's last action on a stage
          TimeNs& done = minibatch_done[a.microbatch / p.microbatches];
          done = std::max(done, end);
        }
        // Completion: publish data for consumers on this device, free activations.
        switch (a.kind) {
          case ActionKind::kForward:
            fwd_end[slot] = end;
            if (a.stage < last_stage && p.device_of(a.stage + 1) == d)
              act_ready[slot + total_mb] = end;
            break;
          case ActionKind::kBackward:
          case ActionKind::kBackwardInput: {
            bwd_end[slot] = end;
            if (a.stage > 0 && p.device_of(a.stage - 1) == d) grad_ready[slot - total_mb] = end;
            const StageDurations& s = sd[a.stage];
            if (a.kind == ActionKind::kBackward) {
              st.act_bytes -= s.act_bytes;
              --st.in_flight;
            } else {
              st.act_bytes += s.act_after_input - s.act_bytes;
            }
            if (record) r.memory[d].push_back({end, total - s.act_bytes +
                                                        (a.kind == ActionKind::kBackward
                                                             ? 0
                                                             : s.act_after_input)});
            break;
          }
          case ActionKind::kWeightGrad:
            st.act_bytes -= sd[a.stage].act_after_input;
            --st.in_flight;
            if (record) r.memory[d].push_back({end, total - sd[a.stage].act_after_input});
            break;
          default:
            break;
        }
      }
    }
  blocked:
    st.cursor = i;
    st.free = free;
    state[d] = st;
  }

  // Anything left unrun is a deadlock: name every blocked device and what it waits for.
  std::string deadlock;
  for (int32_t d = 0; d < num_devices; ++d) {
    const size_t at = state[d].cursor;
    if (at >= p.devices[d].size()) continue;
    const Action& a = p.devices[d][at];
    deadlock += "\n  device " + std::to_string(d) + " at action " + std::to_string(at) +
                " (" + ir::ActionToken(a, true) + ") waits for " + DescribeWait(p, d, a);
  }
  if (!deadlock.empty()) {
    return Status(StatusCode::kDeadlock,
                  "deadlock: no device can make progress" + deadlock);
  }

  // Aggregate metrics.
  TimeNs makespan = 0, max_busy = 0, max_span = 0;
  TimeNs total_busy = 0;
  for (int32_t d = 0; d < num_devices; ++d) {
    StageMetrics& m = r.stages[d];
    const RunState& st = state[d];
    m.busy = st.busy;
    m.first_start = std::max<TimeNs>(st.first_start, 0);
    m.last_end = st.last_end;
    m.peak_memory_bytes = std::max<int64_t>(st.peak_memory, 0);
    m.peak_activations_microbatches = static_cast<double>(st.max_in_flight) / dc[d].chunks;
    makespan = std::max(makespan, m.last_end);
    max_busy = std::max(max_busy, m.busy);
    max_span = std::max(max_span, m.span());
    total_busy += m.busy;
    const int64_t capacity = cost.device(d).memory_bytes;
    m.over_memory = capacity > 0 && m.peak_memory_bytes > capacity;
  }
  // Version metrics per device, over the microbatches of its stages.
  const std::vector<ir::DeviceVersionStats> versions = ir::ComputeVersionStats(p, r.plan);
  for (int32_t d = 0; d < num_devices; ++d) r.stages[d].versions = versions[d];

  if (record) {
    // Pair each transfer with the receive that consumed it.
    for (Transfer& t : r.transfers) {
      const Action& a = p.devices[t.src_device][t.send_index];
      const bool grad = a.kind == ActionKind::kSendGradient;
      const int32_t to_stage = grad ? a.stage - 1 : a.stage + 1;
      const size_t to_slot = static_cast<size_t>(to_stage) * total_mb + a.microbatch;
      const auto& index = grad ? recv_grad_index : recv_act_index;
      if (!index.empty() && index[to_slot] >= 0) {
        t.recv_index = index[to_slot];
        if (cost.link.recv_overhead == 0)
          r.timing[t.dst_device][t.recv_index] = {t.arrival, t.arrival};
      }
    }
  }

  r.makespan = makespan;
  r.samples = static_cast<int64_t>(total_mb) * p.microbatch_size;
  if (makespan > 0) {
    r.throughput_samples_per_s = static_cast<double>(r.samples) * 1e9 / makespan;
    r.bubble.idle_fraction =
        1.0 - static_cast<double>(total_busy) / (static_cast<double>(makespan) * num_devices);
  }
  if (max_busy > 0)
    r.bubble.overhead_vs_ideal = static_cast<double>(makespan - max_busy) / max_busy;
  if (max_span > 0) r.bubble.zb_rate = static_cast<double>(max_span - max_busy) / max_span;
  // Steady state: samples of minibatches 2..N over the time from minibatch 1's completion to
  // minibatch N's; the start-up and the first minibatch's fill are excluded.
  r.steady_throughput_samples_per_s = r.throughput_samples_per_s;
  if (p.minibatches >= 2) {
    const TimeNs window = minibatch_done.back() - minibatch_done.front();
    if (window > 0) {
      r.steady_throughput_samples_per_s = static_cast<double>(p.minibatches - 1) *
                                          p.microbatches * p.microbatch_size * 1e9 / window;
    }
  }
  return r;
}

}  // namespace pipecast::sim
