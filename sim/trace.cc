#include "sim/trace.h"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/ir.h"

namespace pipecast::sim {
namespace {

using Json = nlohmann::ordered_json;

constexpr int32_t kComputeTid = 0;
constexpr int32_t kFirstCommTid = 1;

// The trace format's unit is the microsecond; doubles keep every nanosecond exactly enough
// (15+ significant digits cover hours of simulated time at 1 ns).
double Micros(TimeNs ns) { return static_cast<double>(ns) / 1000.0; }

Json Metadata(const char* name, int32_t pid, int32_t tid, Json args) {
  return Json{{"ph", "M"}, {"name", name}, {"pid", pid}, {"tid", tid}, {"args", std::move(args)}};
}

std::string WeightsAnnotation(const ir::WeightRef& w) {
  std::string s(ir::WeightSourceName(w.source));
  if (w.source == ir::WeightSource::kPredicted || w.source == ir::WeightSource::kCorrected ||
      w.source == ir::WeightSource::kVersion) {
    s += ':' + std::to_string(w.value);
  }
  return s;
}

const ir::VersionRecord* FindRecord(const ir::VersionPlan& v, const ir::Action& a) {
  if (a.stage < 0 || a.stage >= v.num_stages || a.microbatch < 0 ||
      a.microbatch >= v.total_microbatches) {
    return nullptr;
  }
  const size_t idx = static_cast<size_t>(a.stage) * v.total_microbatches + a.microbatch;
  return idx < v.records.size() ? &v.records[idx] : nullptr;
}

// Arguments of a compute event: what it computes and, from the version table, with which weights.
Json ComputeArgs(const ir::Action& a, const ir::VersionPlan& versions, int32_t steps_before) {
  Json args = Json::object();
  if (a.kind == ir::ActionKind::kStep) {
    args["version_after"] = steps_before + 1;  // version n is the weights after n Steps
    return args;
  }
  args["stage"] = a.stage;
  args["microbatch"] = a.microbatch;
  if (ir::UsesWeights(a.kind)) args["weights"] = WeightsAnnotation(a.weights);
  const ir::VersionRecord* r = FindRecord(versions, a);
  if (r == nullptr) return args;
  if (a.kind == ir::ActionKind::kForward && r->f_version >= 0) {
    args["version"] = r->f_version;
    if (r->f_horizon != 0) args["horizon"] = r->f_horizon;
  } else if (ir::IsBackward(a.kind) && r->b_version >= 0) {
    args["version"] = r->b_version;
    if (r->b_horizon != 0) args["horizon"] = r->b_horizon;
    if (r->f_counter >= 0 && r->b_counter >= 0) args["version_gap"] = r->version_gap();
  }
  if (ir::ProducesWeightGrad(a.kind) && r->applied_step >= 0) {
    args["applied_by_step"] = r->applied_step;
    if (r->f_version >= 0) args["gradient_delay"] = r->gradient_delay();
  }
  return args;
}

// Index of the compute action on `device` that consumes the receive at `recv_index`: the F of
// the same (stage, microbatch) after an activation receive, the B/I after a gradient receive;
// else the next compute action; -1 if there is none.
int32_t Consumer(const std::vector<ir::Action>& prog, int32_t recv_index) {
  if (recv_index < 0 || recv_index >= static_cast<int32_t>(prog.size())) return -1;
  const ir::Action& recv = prog[recv_index];
  int32_t next_compute = -1;
  for (int32_t i = recv_index + 1; i < static_cast<int32_t>(prog.size()); ++i) {
    const ir::Action& a = prog[i];
    if (!ir::IsCompute(a.kind)) continue;
    if (next_compute < 0) next_compute = i;
    const bool matches =
        a.stage == recv.stage && a.microbatch == recv.microbatch &&
        ((recv.kind == ir::ActionKind::kRecvActivation && a.kind == ir::ActionKind::kForward) ||
         (recv.kind == ir::ActionKind::kRecvGradient && ir::IsBackward(a.kind)));
    if (matches) return i;
  }
  return next_compute;
}

bool HasTiming(const SimResult& r, int32_t device, int32_t index) {
  return device >= 0 && static_cast<size_t>(device) < r.timing.size() && index >= 0 &&
         static_cast<size_t>(index) < r.timing[device].size();
}

}  // namespace

std::string FormatPerfettoTrace(const MethodRun& run) {
  const ir::Program& p = run.program;
  const SimResult& r = run.result;
  const int32_t num_devices = static_cast<int32_t>(p.devices.size());
  Json events = Json::array();

  // Communication lanes: complete events on one thread must nest, so transfers of one sender
  // that overlap in time go to further threads. Greedy interval partitioning in start order.
  std::vector<int32_t> lane_of(r.transfers.size(), 0);
  std::vector<int32_t> lanes_per_device(std::max(num_devices, 1), 1);
  {
    std::vector<size_t> order(r.transfers.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return r.transfers[a].start < r.transfers[b].start;
    });
    std::vector<std::vector<TimeNs>> lane_end(lanes_per_device.size());
    for (size_t i : order) {
      const Transfer& t = r.transfers[i];
      if (t.src_device < 0 || t.src_device >= num_devices) continue;
      auto& ends = lane_end[t.src_device];
      size_t lane = 0;
      while (lane < ends.size() && ends[lane] > t.start) ++lane;
      if (lane == ends.size()) ends.push_back(0);
      ends[lane] = std::max(t.arrival, t.start);
      lane_of[i] = static_cast<int32_t>(lane);
      lanes_per_device[t.src_device] =
          std::max(lanes_per_device[t.src_device], static_cast<int32_t>(ends.size()));
    }
  }

  for (int32_t d = 0; d < num_devices; ++d) {
    events.push_back(Metadata("process_name", d, 0, {{"name", "device " + std::to_string(d)}}));
    events.push_back(Metadata("process_sort_index", d, 0, {{"sort_index", d}}));
    events.push_back(Metadata("thread_name", d, kComputeTid, {{"name", "compute"}}));
    events.push_back(Metadata("thread_sort_index", d, kComputeTid, {{"sort_index", 0}}));
    for (int32_t lane = 0; lane < lanes_per_device[d]; ++lane) {
      const std::string name =
          lane == 0 ? "communication" : "communication " + std::to_string(lane + 1);
      events.push_back(Metadata("thread_name", d, kFirstCommTid + lane, {{"name", name}}));
      events.push_back(
          Metadata("thread_sort_index", d, kFirstCommTid + lane, {{"sort_index", 1 + lane}}));
    }
  }

  // Compute: every F/B/I/W and Step, in program order.
  for (int32_t d = 0; d < num_devices; ++d) {
    const std::vector<ir::Action>& prog = p.devices[d];
    int32_t steps = 0;
    for (int32_t i = 0; i < static_cast<int32_t>(prog.size()); ++i) {
      const ir::Action& a = prog[i];
      const bool is_step = a.kind == ir::ActionKind::kStep;
      if (!ir::IsCompute(a.kind) && !is_step) continue;
      if (HasTiming(r, d, i)) {
        const ActionTiming& t = r.timing[d][i];
        events.push_back({{"ph", "X"},
                          {"name", ir::ActionToken(a, true)},
                          {"cat", ir::KindName(a.kind)},
                          {"pid", d},
                          {"tid", kComputeTid},
                          {"ts", Micros(t.start)},
                          {"dur", Micros(t.end - t.start)},
                          {"args", ComputeArgs(a, r.plan, steps)}});
      }
      if (is_step) ++steps;
    }
  }

  // Communication: one complete event per transfer on the sender, plus a flow to the consumer.
  for (size_t k = 0; k < r.transfers.size(); ++k) {
    const Transfer& t = r.transfers[k];
    if (t.src_device < 0 || t.src_device >= num_devices || t.send_index < 0 ||
        t.send_index >= static_cast<int32_t>(p.devices[t.src_device].size())) {
      continue;
    }
    const ir::Action& send = p.devices[t.src_device][t.send_index];
    const int32_t tid = kFirstCommTid + lane_of[k];
    const TimeNs end = std::max(t.arrival, t.start);
    Json args = {{"bytes", t.bytes},
                 {"stage", send.stage},
                 {"microbatch", send.microbatch},
                 {"to_device", t.dst_device},
                 {"link_busy_us", Micros(t.link_end - t.start)},
                 {"latency_us", Micros(t.arrival - t.link_end)}};
    events.push_back(
        {{"ph", "X"},
         {"name", ir::ActionToken(send, false) + " \u2192 dev " + std::to_string(t.dst_device)},
         {"cat", ir::KindName(send.kind)},
         {"pid", t.src_device},
         {"tid", tid},
         {"ts", Micros(t.start)},
         {"dur", Micros(end - t.start)},
         {"args", std::move(args)}});

    // Flow ends bind ("bp": "e") to the slice enclosing their timestamp, so both ends sit in the
    // middle of their slices: the transfer on the sender, the consuming action on the receiver.
    const int64_t id = static_cast<int64_t>(k) + 1;
    events.push_back({{"ph", "s"},
                      {"id", id},
                      {"name", "transfer"},
                      {"cat", "transfer"},
                      {"pid", t.src_device},
                      {"tid", tid},
                      {"ts", Micros(t.start + (end - t.start) / 2)}});
    TimeNs flow_end = t.arrival;
    if (t.dst_device >= 0 && t.dst_device < num_devices) {
      const int32_t consumer = Consumer(p.devices[t.dst_device], t.recv_index);
      if (HasTiming(r, t.dst_device, consumer)) {
        const ActionTiming& c = r.timing[t.dst_device][consumer];
        flow_end = c.start + (c.end - c.start) / 2;
      }
    }
    events.push_back({{"ph", "f"},
                      {"bp", "e"},
                      {"id", id},
                      {"name", "transfer"},
                      {"cat", "transfer"},
                      {"pid", t.dst_device},
                      {"tid", kComputeTid},
                      {"ts", Micros(flow_end)}});
  }

  // Memory counters.
  for (int32_t d = 0; d < static_cast<int32_t>(r.memory.size()); ++d) {
    for (const MemorySample& m : r.memory[d]) {
      events.push_back({{"ph", "C"},
                        {"name", "memory"},
                        {"pid", d},
                        {"tid", kComputeTid},
                        {"ts", Micros(m.time)},
                        {"args", {{"bytes", m.bytes}}}});
    }
  }

  Json doc;
  doc["traceEvents"] = std::move(events);
  doc["displayTimeUnit"] = "ns";
  doc["otherData"] = {{"generator", "pipecast"},
                      {"method", MethodLabel(run)},
                      {"devices", std::to_string(p.num_devices)},
                      {"makespan_ns", std::to_string(r.makespan)}};
  return doc.dump() + '\n';
}

}  // namespace pipecast::sim
