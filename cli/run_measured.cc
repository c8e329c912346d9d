// `pipecast run`'s measurements as the simulator's inputs: measured costs, the measured trace,
// the profile scenario, and measured against simulated time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <chrono>
#include <map>
#include <sstream>
#include <tuple>

#include "cli/run_report.h"
#include "sim/cost_builder.h"
#include "sim/engine.h"
#include "sim/trace.h"

namespace pipecast::cli {
namespace {

struct Sum {
  int64_t total = 0, count = 0;
  void Add(int64_t d) {
    total += d;
    ++count;
  }
  sim::TimeNs Mean() const { return count ? total / count : 0; }
};

int64_t SegmentStart(const runtime::MethodTraining& t) {
  int64_t first = INT64_MAX;
  for (const auto& dev : t.last_timing)
    for (const auto& a : dev) first = std::min(first, a.start_ns);
  return first == INT64_MAX ? 0 : first;
}

// Whether device d's program reads PipeMare's corrected weights: its steps also keep the old
// weights and update the velocity.
bool Corrects(const ir::Program& p, int32_t d) {
  return std::any_of(p.devices[d].begin(), p.devices[d].end(), [](const ir::Action& a) {
    return a.weights.source == ir::WeightSource::kCorrected;
  });
}

// PipeMare's velocity bookkeeping in a step: read and write W (the old weights), read the
// velocity and both W, write the velocity (the simulator's formula, docs/cost-model.md).
int64_t VelocityBytes(const runtime::MethodTraining& t, int32_t stage) {
  return 6 * 4 * t.stage_params[stage];
}


// Per-stage sums of the measured actions of the last segment.
struct Measured {
  std::vector<Sum> f, b_input, b_weight, b, i, w;
  std::vector<Sum> step;  // per device
  Sum send;
  std::vector<int64_t> pickups;  // waits of actions whose input came from another device
  // Only when every device ran in this process, on one clock, per message between devices:
  // found (it had arrived when its receiver began to wait): the receiver's wait, the pick-up;
  // awaited (the receiver was waiting when the send ended): from the send's end to the
  // receiver's ready, the latency and the pick-up.
  std::vector<int64_t> found, awaited;
  // Per (kind, stage, round) of a collective: the shortest of its copies' times, from ready to
  // end. The last copy to arrive waits for no one, so that is the exchange itself.
  std::map<std::tuple<ir::ActionKind, int32_t, int32_t>, int64_t> collectives;
};

// The receiver of a send: the forward of the next stage (activation) or the first backward of
// the previous stage (gradient), as (device, index in its program).
using ActionIndex = std::map<std::tuple<int32_t, int32_t, int32_t>, std::pair<int32_t, size_t>>;

ActionIndex IndexConsumers(const ir::Program& p) {
  ActionIndex index;
  for (int32_t d = 0; d < p.num_devices; ++d) {
    for (size_t k = 0; k < p.devices[d].size(); ++k) {
      const ir::Action& a = p.devices[d][k];
      const int32_t what = a.kind == ir::ActionKind::kForward ? 0 : ir::IsBackward(a.kind) ? 1 : -1;
      if (what >= 0) index.emplace(std::make_tuple(what, a.stage, a.microbatch), std::pair{d, k});
    }
  }
  return index;
}

void CollectArrivals(const runtime::MethodTraining& t, Measured& m) {
  const ir::Program& p = t.last_program;
  for (int32_t d = 0; d < p.num_devices; ++d)
    if (t.last_timing[d].size() != p.devices[d].size()) return;
  const ActionIndex consumers = IndexConsumers(p);
  for (int32_t d = 0; d < p.num_devices; ++d) {
    for (size_t k = 0; k < p.devices[d].size(); ++k) {
      const ir::Action& a = p.devices[d][k];
      const bool act = a.kind == ir::ActionKind::kSendActivation;
      if (!act && a.kind != ir::ActionKind::kSendGradient) continue;
      auto it = consumers.find({act ? 0 : 1, act ? a.stage + 1 : a.stage - 1, a.microbatch});
      if (it == consumers.end() || it->second.first == d) continue;
      const runtime::ActionTime& send = t.last_timing[d][k];
      const runtime::ActionTime& use = t.last_timing[it->second.first][it->second.second];
      if (use.start_ns >= send.end_ns) {
        m.found.push_back(use.ready_ns - use.start_ns);
      } else {
        m.awaited.push_back(use.ready_ns - send.end_ns);
      }
    }
  }
}

int64_t Mean(const std::vector<int64_t>& v) {
  int64_t sum = 0;
  for (int64_t x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<int64_t>(v.size());
}

int64_t Percentile(std::vector<int64_t> v, size_t tenths) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, v.size() * tenths / 10);
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

// Bytes per second of out = a - k·b over `floats` weights (read two, write one), the median of
// 15 passes after one to warm up: the kind of pass a prediction, a correction or a save makes,
// on weights as large as the largest stage's, as the CPU devices run them (the host's cores).
double WeightPassBandwidth(int64_t floats) {
  if (floats <= 0) return 0;
  std::vector<float> a(static_cast<size_t>(floats), 1.0f), b(a.size(), 0.5f), out(a.size());
  std::vector<float> evict(size_t{16} << 20, 0.0f);  // 64 MiB
  std::vector<int64_t> ns;
  for (int rep = 0; rep < 16; ++rep) {
    for (size_t i = 0; i < evict.size(); i += 16) evict[i] += 1.0f;
    asm volatile("" : : "r"(evict.data()) : "memory");
    const auto start = std::chrono::steady_clock::now();
    const float k = 0.25f + static_cast<float>(rep) * 1e-3f;
    for (size_t i = 0; i < out.size(); ++i) out[i] = a[i] - k * b[i];
    asm volatile("" : : "r"(out.data()) : "memory");  // keep the pass
    const auto end = std::chrono::steady_clock::now();
    if (rep > 0) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
  }
  const int64_t median = std::max<int64_t>(1, Percentile(ns, 5));
  return 3.0 * 4.0 * static_cast<double>(floats) * 1e9 / static_cast<double>(median);
}

Measured Collect(const runtime::MethodTraining& t) {
  const ir::Program& p = t.last_program;
  Measured m;
  for (auto* v : {&m.f, &m.b_input, &m.b_weight, &m.b, &m.i, &m.w}) v->assign(p.num_stages, {});
  m.step.assign(p.num_devices, {});
  for (int32_t d = 0; d < p.num_devices; ++d) {
    for (size_t k = 0; k < p.devices[d].size() && k < t.last_timing[d].size(); ++k) {
      const ir::Action& a = p.devices[d][k];
      const runtime::ActionTime& at = t.last_timing[d][k];
      // The action's own work: the plan's weight operations around it are not part of it (the
      // simulator charges them from the bytes they move).
      const int64_t compute = at.end_ns - at.ready_ns - at.ops_before_ns - at.ops_after_ns;
      const bool remote = (a.kind == ir::ActionKind::kForward && a.stage > 0 &&
                           p.device_of(a.stage - 1, a.microbatch) != d) ||
                          (ir::IsBackward(a.kind) && a.stage + 1 < p.num_stages &&
                           p.device_of(a.stage + 1, a.microbatch) != d);
      if (remote) m.pickups.push_back(at.ready_ns - at.start_ns);
      switch (a.kind) {
        case ir::ActionKind::kForward:
          m.f[a.stage].Add(compute);
          break;
        case ir::ActionKind::kBackward:
          m.b[a.stage].Add(compute);
          m.b_input[a.stage].Add(at.split_ns - at.ready_ns - at.ops_before_ns);
          m.b_weight[a.stage].Add(at.end_ns - at.split_ns - at.ops_after_ns);
          break;
        case ir::ActionKind::kBackwardInput:
          m.i[a.stage].Add(compute);
          break;
        case ir::ActionKind::kWeightGrad:
          m.w[a.stage].Add(compute);
          break;
        case ir::ActionKind::kStep:
          m.step[d].Add(compute);
          break;
        case ir::ActionKind::kSendActivation:
        case ir::ActionKind::kSendGradient:
          m.send.Add(at.end_ns - at.start_ns);
          break;
        case ir::ActionKind::kAllReduce:
        case ir::ActionKind::kAverage: {
          const auto key = std::make_tuple(a.kind, a.stage, a.microbatch);
          const int64_t took = at.end_ns - at.ready_ns;
          const auto [it, fresh] = m.collectives.emplace(key, took);
          if (!fresh) it->second = std::min(it->second, took);
          break;
        }
        default:
          break;
      }
    }
  }
  CollectArrivals(t, m);
  return m;
}

// The devices of one copy of the pipeline (replica 0's): what a profile describes.
int32_t CopyDevices(const ir::Program& p) {
  const std::vector<int32_t> placement = p.stage_placement();
  return placement.empty() ? p.num_devices
                           : 1 + *std::max_element(placement.begin(), placement.end());
}

std::string PerDevice(const ir::Program& p, const sim::CostModel& c,
                      int64_t (*field)(const sim::StageCost&), const char* unit) {
  std::string s = "[";
  for (int32_t d = 0; d < CopyDevices(p); ++d) {
    int64_t sum = 0;
    for (int32_t st = 0; st < p.num_stages; ++st)
      if (p.device_of(st) == d) sum += field(c.stages[st]);
    s += (d ? ", " : "") + std::to_string(sum) + unit;
  }
  return s + "]";
}

// Time per minibatch of one method, measured, against `costs`.
std::string CompareLine(const runtime::MethodTraining& t, const sim::CostModel& costs) {
  char line[256];
  auto r = sim::Simulate(t.last_program, costs);
  if (!r.ok()) return Label(t) + ": " + r.status().message() + "\n";
  const int64_t t0 = SegmentStart(t);
  int64_t measured = 0;
  for (const auto& dev : t.last_timing)
    for (const auto& a : dev) measured = std::max(measured, a.end_ns - t0);
  const double n = t.last_program.minibatches;
  const double err = 100.0 * (static_cast<double>(r->makespan) - measured) / measured;
  std::snprintf(line, sizeof(line), "%-32s %12.3fms %12.3fms %+7.1f%%\n", Label(t).c_str(),
                measured * 1e-6 / n, r->makespan * 1e-6 / n, err);
  return line;
}

}  // namespace

// A profile gives the costs of its own stages; a program with more stages (interleaved chunks)
// cuts the model differently, and unevenly, where the cost builder would cut each device into
// equal chunks. So each cost is taken as a rate per parameter of the profile's whole model and
// charged to each of the program's stages by its parameters (the layers' multiply-adds are
// 2·rows·params); each stage gets its own weight and gradient bytes.
void ApportionByParams(const std::vector<int64_t>& stage_params, sim::CostModel& c) {
  if (c.stages.size() != stage_params.size()) return;
  constexpr int64_t sim::StageCost::*kScaled[] = {
      &sim::StageCost::forward,        &sim::StageCost::backward,
      &sim::StageCost::backward_input, &sim::StageCost::backward_weight,
      &sim::StageCost::optimizer_step, &sim::StageCost::optimizer_state_bytes};
  int64_t profile_bytes = 0, params = 0;
  sim::StageCost total;
  for (size_t s = 0; s < c.stages.size(); ++s) {
    profile_bytes += c.stages[s].weight_bytes;
    params += stage_params[s];
    for (auto f : kScaled) total.*f += c.stages[s].*f;
  }
  if (profile_bytes <= 0 || params <= 0) return;
  for (size_t s = 0; s < c.stages.size(); ++s) {
    const double share = static_cast<double>(stage_params[s]) / static_cast<double>(params);
    sim::StageCost& x = c.stages[s];
    for (auto f : kScaled)
      x.*f = static_cast<int64_t>(std::llround(static_cast<double>(total.*f) * share));
    x.weight_bytes = 4 * stage_params[s];
    x.gradient_bytes = x.weight_bytes;
  }
}

sim::CostModel MeasuredCosts(const runtime::MethodTraining& t) {
  const ir::Program& p = t.last_program;
  Measured m = Collect(t);
  sim::CostModel c;
  sim::DeviceSpec device;
  // Memory bandwidth as a pass over a stage's weights achieves it: what predictions,
  // corrections and stash copies cost in the simulator (the steps are measured themselves).
  if (!t.stage_params.empty()) {
    device.memory_bandwidth =
        WeightPassBandwidth(*std::max_element(t.stage_params.begin(), t.stage_params.end()));
  }
  c.devices.assign(1, device);
  // A message costs its sender's hand-over and its receiver's pick-up, both device time (LogP's
  // overheads): the mean send, and the 10th-percentile wait of an action whose input came from
  // another device (the fastest found the message there, so they measure the pick-up).
  // LogP: the sender's overhead is its mean send. The receiver's is the mean wait for a message
  // that was already there: taking it is not free, and when the sender sleeps waiting for the
  // hand-over, waking it costs the receiver tens of microseconds on a virtual machine, which the
  // mean keeps. Without one clock for every device it is the 10th-percentile wait of an action
  // whose input came from another device (the fastest found the message there). The latency is
  // the median time from a send's end to a waiting receiver's ready, less the pick-up.
  // The executor's collectives block where they stand (docs/executor.md); each stage's round
  // costs the mean over rounds of its exchange time.
  c.blocking_collectives = true;
  std::map<std::pair<ir::ActionKind, int32_t>, Sum> rounds;
  for (const auto& [key, took] : m.collectives)
    rounds[{std::get<0>(key), std::get<1>(key)}].Add(took);
  c.link.send_overhead = m.send.Mean();
  c.link.recv_overhead = m.found.empty() ? Percentile(m.pickups, 1) : Mean(m.found);
  if (!m.awaited.empty())
    c.link.latency = std::max<int64_t>(0, Percentile(m.awaited, 5) - c.link.recv_overhead);
  for (int32_t s = 0; s < p.num_stages; ++s) {
    sim::StageCost sc;
    sc.forward = m.f[s].Mean();
    const bool split = m.i[s].count > 0;
    sc.backward_input = split ? m.i[s].Mean() : m.b_input[s].Mean();
    sc.backward_weight = split ? m.w[s].Mean() : m.b_weight[s].Mean();
    sc.backward = m.b[s].count ? m.b[s].Mean() : sc.backward_input + sc.backward_weight;
    sc.optimizer_step =
        m.step[p.device_of(s)].Mean() / std::max(1, p.stages_on_device(p.device_of(s)));
    // The simulator adds PipeMare's velocity to a given step time: take it out of the measured.
    if (Corrects(p, p.device_of(s)) && !t.stage_params.empty()) {
      sc.optimizer_step = std::max<int64_t>(
          0, sc.optimizer_step - sim::TransferTime(VelocityBytes(t, s), device.memory_bandwidth));
    }
    if (auto it = rounds.find({ir::ActionKind::kAllReduce, s}); it != rounds.end())
      sc.all_reduce = it->second.Mean();
    if (auto it = rounds.find({ir::ActionKind::kAverage, s}); it != rounds.end())
      sc.average = it->second.Mean();
    if (!t.stage_params.empty()) {
      sc.weight_bytes = 4 * t.stage_params[s];
      sc.gradient_bytes = sc.weight_bytes;
      sc.optimizer_state_bytes = sc.weight_bytes * t.optimizer_state_tensors;
    }
    c.stages.push_back(sc);
  }
  return c;
}

std::string MeasuredTrace(const runtime::MethodTraining& t) {
  sim::MethodRun run;
  run.method = t.method + " (measured)";
  run.params = t.params;
  run.program = t.last_program;
  const int64_t t0 = SegmentStart(t);
  run.result.timing.resize(t.last_timing.size());
  for (size_t d = 0; d < t.last_timing.size(); ++d) {
    for (const auto& a : t.last_timing[d]) {
      run.result.timing[d].push_back({a.ready_ns - t0, a.end_ns - t0});
      run.result.makespan = std::max(run.result.makespan, a.end_ns - t0);
    }
  }
  run.result.stages.resize(t.last_timing.size());
  return sim::FormatPerfettoTrace(run);
}

std::string ProfileScenario(const ir::Job& job, const runtime::MethodTraining& t) {
  const sim::CostModel c = MeasuredCosts(t);
  const ir::Program& p = t.last_program;
  std::ostringstream s;
  s << "# Measured by `pipecast run " << job.source << "` (" << Label(t)
    << "): mean duration of each action kind per stage over the last segment, the backward's\n"
       "# input and weight passes as measured inside it, the message latency, hand-over and\n"
       "# pick-up (LogP) and the memory bandwidth the optimizer step achieves.\n";
  s << "name: " << job.name << "-measured\n";
  // One copy's shape: Chimera's copies share its devices, data-parallel copies and AvgPipe's
  // pipelines bring their own (the method or data_parallel makes them again).
  const int32_t copies = p.num_devices / std::max(1, CopyDevices(p));
  s << "pipeline:\n  stages: " << CopyDevices(p) << "\n  microbatches: " << p.microbatches / copies
    << "\n  minibatches: " << p.minibatches << "\n  microbatch_size: " << p.microbatch_size << "\n";
  if (job.pipeline.data_parallel > 1) s << "  data_parallel: " << job.pipeline.data_parallel << "\n";
  // Explicit costs are per device; chunks of an interleaved device are summed (the cost builder
  // divides them again).
  s << "costs:\n";
  s << "  forward: "
    << PerDevice(
           p, c, [](const sim::StageCost& x) { return x.forward; }, "ns")
    << "\n";
  s << "  backward_input: "
    << PerDevice(
           p, c, [](const sim::StageCost& x) { return x.backward_input; }, "ns")
    << "\n";
  s << "  backward_weight: "
    << PerDevice(
           p, c, [](const sim::StageCost& x) { return x.backward_weight; }, "ns")
    << "\n";
  s << "  optimizer_step: "
    << PerDevice(
           p, c, [](const sim::StageCost& x) { return x.optimizer_step; }, "ns")
    << "\n";
  if (!t.stage_params.empty()) {
    s << "  weight_bytes: "
      << PerDevice(
             p, c, [](const sim::StageCost& x) { return x.weight_bytes; }, "")
      << "\n";
    s << "  optimizer_state_bytes: "
      << PerDevice(
             p, c, [](const sim::StageCost& x) { return x.optimizer_state_bytes; }, "")
      << "\n";
  }
  // Collective rounds as measured, and how the executor runs them.
  const auto measured = [](int64_t (*f)(const sim::StageCost&), const sim::CostModel& m) {
    for (const sim::StageCost& x : m.stages)
      if (f(x) >= 0) return true;
    return false;
  };
  if (measured([](const sim::StageCost& x) { return x.all_reduce; }, c)) {
    s << "  all_reduce: "
      << PerDevice(p, c, [](const sim::StageCost& x) { return std::max<int64_t>(0, x.all_reduce); },
                   "ns")
      << "\n";
  }
  if (measured([](const sim::StageCost& x) { return x.average; }, c)) {
    s << "  average: "
      << PerDevice(p, c, [](const sim::StageCost& x) { return std::max<int64_t>(0, x.average); },
                   "ns")
      << "\n";
  }
  s << "network:\n  latency: " << c.link.latency << "ns\n  send_overhead: " << c.link.send_overhead
    << "ns\n  recv_overhead: " << c.link.recv_overhead << "ns\n";
  if (p.replicas > 1) s << "  collectives: blocking\n";
  if (c.devices[0].memory_bandwidth > 0) {
    char bw[64];
    std::snprintf(bw, sizeof(bw), "%.0fB/s", c.devices[0].memory_bandwidth);
    s << "device:\n  memory_bandwidth: " << bw << "\n";
  }
  s << "methods:\n  - name: " << t.method << "\n";
  for (const auto& [k, v] : t.params) s << "    " << k << ": " << v << "\n";
  return s.str();
}

std::string CompareWithSimulation(const std::vector<MethodRuns>& results,
                                  const ir::Scenario* predict_with) {
  std::ostringstream s;
  char line[256];
  s << (predict_with ? "out of sample: every method simulated with the costs of " +
                           predict_with->source + "\n"
                     : "in sample: each method simulated with its own measured costs\n");
  std::snprintf(line, sizeof(line), "%-32s %14s %14s %8s\n", "method", "measured/mb",
                predict_with ? "predicted/mb" : "simulated/mb", "error");
  s << line;
  for (const auto& runs : results) {
    const runtime::MethodTraining& t = runs.back();
    if (predict_with == nullptr) {
      s << CompareLine(t, MeasuredCosts(t));
      continue;
    }
    auto costs = sim::BuildCostModel(*predict_with, t.last_program.stage_placement());
    if (!costs.ok()) {
      s << Label(t) << ": " << costs.status().message() << "\n";
      continue;
    }
    if (t.last_program.num_stages > predict_with->pipeline.stages)
      ApportionByParams(t.stage_params, *costs);
    s << CompareLine(t, *costs);
  }
  s << "error = (simulated - measured) / measured, per minibatch of the last segment.\n";
  return s.str();
}

}  // namespace pipecast::cli
