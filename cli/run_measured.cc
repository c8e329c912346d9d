// `pipecast run`'s measurements as the simulator's inputs: measured costs, the measured trace,
// the profile scenario, and measured against simulated time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

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

// Bytes one step moves per stage: it reads and writes the weights and the optimizer state and
// reads the gradient (the simulator's formula, docs/cost-model.md).
int64_t StepBytes(const runtime::MethodTraining& t, int32_t stage) {
  const int64_t w = 4 * t.stage_params[stage];
  return 2 * w + w + 2 * w * t.optimizer_state_tensors;
}

// Per-stage sums of the measured actions of the last segment.
struct Measured {
  std::vector<Sum> f, b_input, b_weight, b, i, w;
  std::vector<Sum> step;  // per device
  Sum send;
  std::vector<int64_t> pickups;  // waits of actions whose input came from another device
};

Measured Collect(const runtime::MethodTraining& t) {
  const ir::Program& p = t.last_program;
  Measured m;
  for (auto* v : {&m.f, &m.b_input, &m.b_weight, &m.b, &m.i, &m.w}) v->assign(p.num_stages, {});
  m.step.assign(p.num_devices, {});
  for (int32_t d = 0; d < p.num_devices; ++d) {
    for (size_t k = 0; k < p.devices[d].size() && k < t.last_timing[d].size(); ++k) {
      const ir::Action& a = p.devices[d][k];
      const runtime::ActionTime& at = t.last_timing[d][k];
      const int64_t compute = at.end_ns - at.ready_ns;
      const bool remote =
          (a.kind == ir::ActionKind::kForward && a.stage > 0 && p.device_of(a.stage - 1) != d) ||
          (ir::IsBackward(a.kind) && a.stage + 1 < p.num_stages && p.device_of(a.stage + 1) != d);
      if (remote) m.pickups.push_back(at.ready_ns - at.start_ns);
      switch (a.kind) {
        case ir::ActionKind::kForward:
          m.f[a.stage].Add(compute);
          break;
        case ir::ActionKind::kBackward:
          m.b[a.stage].Add(compute);
          m.b_input[a.stage].Add(at.split_ns - at.ready_ns);
          m.b_weight[a.stage].Add(at.end_ns - at.split_ns);
          break;
        case ir::ActionKind::kBackwardInput:
          m.i[a.stage].Add(compute);
          break;
        case ir::ActionKind::kWeightGrad:
          m.w[a.stage].Add(compute);
          break;
        case ir::ActionKind::kStep:
          m.step[d].Add(at.end_ns - at.start_ns);
          break;
        case ir::ActionKind::kSendActivation:
        case ir::ActionKind::kSendGradient:
          m.send.Add(at.end_ns - at.start_ns);
          break;
        default:
          break;
      }
    }
  }
  return m;
}

std::string PerDevice(const ir::Program& p, const sim::CostModel& c,
                      int64_t (*field)(const sim::StageCost&), const char* unit) {
  std::string s = "[";
  for (int32_t d = 0; d < p.num_devices; ++d) {
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

sim::CostModel MeasuredCosts(const runtime::MethodTraining& t) {
  const ir::Program& p = t.last_program;
  Measured m = Collect(t);
  sim::CostModel c;
  sim::DeviceSpec device;
  // Memory bandwidth as the optimizer step achieves it: what predictions, corrections and
  // stash copies cost in the simulator.
  int64_t step_bytes = 0, step_ns = 0;
  for (int32_t s = 0; s < p.num_stages; ++s) {
    const int32_t d = p.device_of(s);
    if (m.step[d].count == 0 || t.stage_params.empty()) continue;
    step_bytes += StepBytes(t, s);
    step_ns += m.step[d].Mean() / std::max(1, p.stages_on_device(d));
  }
  if (step_ns > 0) device.memory_bandwidth = static_cast<double>(step_bytes) * 1e9 / step_ns;
  c.devices.assign(1, device);
  // A message costs its sender's hand-over and its receiver's pick-up, both device time (LogP's
  // overheads): the mean send, and the 10th-percentile wait of an action whose input came from
  // another device (the fastest found the message there, so they measure the pick-up).
  c.link.send_overhead = m.send.Mean();
  if (!m.pickups.empty()) {
    std::nth_element(m.pickups.begin(), m.pickups.begin() + m.pickups.size() / 10, m.pickups.end());
    c.link.recv_overhead = m.pickups[m.pickups.size() / 10];
  }
  for (int32_t s = 0; s < p.num_stages; ++s) {
    sim::StageCost sc;
    sc.forward = m.f[s].Mean();
    const bool split = m.i[s].count > 0;
    sc.backward_input = split ? m.i[s].Mean() : m.b_input[s].Mean();
    sc.backward_weight = split ? m.w[s].Mean() : m.b_weight[s].Mean();
    sc.backward = m.b[s].count ? m.b[s].Mean() : sc.backward_input + sc.backward_weight;
    sc.optimizer_step =
        m.step[p.device_of(s)].Mean() / std::max(1, p.stages_on_device(p.device_of(s)));
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
       "# input and weight passes as measured inside it, the message hand-over and pick-up\n"
       "# (LogP overheads) and the memory bandwidth the optimizer step achieves.\n";
  s << "name: " << job.name << "-measured\n";
  s << "pipeline:\n  stages: " << p.num_devices << "\n  microbatches: " << p.microbatches
    << "\n  minibatches: " << p.minibatches << "\n  microbatch_size: " << p.microbatch_size << "\n";
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
  s << "network:\n  send_overhead: " << c.link.send_overhead
    << "ns\n  recv_overhead: " << c.link.recv_overhead << "ns\n";
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
    auto costs = sim::BuildCostModel(*predict_with, t.last_program.num_stages);
    if (!costs.ok()) {
      s << Label(t) << ": " << costs.status().message() << "\n";
      continue;
    }
    s << CompareLine(t, *costs);
  }
  s << "error = (simulated - measured) / measured, per minibatch of the last segment.\n";
  return s.str();
}

}  // namespace pipecast::cli
