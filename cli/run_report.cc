#include "cli/run_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/engine.h"
#include "sim/report.h"
#include "sim/trace.h"

namespace pipecast::cli {
namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string PerStage(const std::vector<runtime::StageVersions>& stages, bool delay) {
  std::string s;
  for (const auto& v : stages) {
    if (!s.empty()) s += ",";
    s += std::to_string(delay ? v.gradient_delay_max : v.version_gap_max);
  }
  return s;
}

// Program-order timing of the segment, relative to its first action.
int64_t SegmentStart(const runtime::MethodTraining& t) {
  int64_t first = INT64_MAX;
  for (const auto& dev : t.last_timing)
    for (const auto& a : dev) first = std::min(first, a.start_ns);
  return first == INT64_MAX ? 0 : first;
}

}  // namespace

std::string Label(const runtime::MethodTraining& t) {
  sim::MethodRun run;
  run.method = t.method;
  run.params = t.params;
  return sim::MethodLabel(run);
}

std::string RunTable(const ir::Job& job, const std::vector<runtime::MethodTraining>& results) {
  std::ostringstream s;
  s << "job: " << job.name << " (" << job.source << "), " << job.pipeline.stages << " stages, "
    << job.pipeline.microbatches << " x " << job.pipeline.microbatch_size
    << " per minibatch, " << job.epochs << " epochs\n";
  int width = 26;  // the method column fits the longest label
  for (const auto& t : results) width = std::max(width, static_cast<int>(Label(t).size()));
  char line[512];
  std::snprintf(line, sizeof(line), "%-*s %9s %9s %10s %9s %9s %11s  %-18s %s\n", width, "method",
                "best acc", "final acc", "final loss", "test ppl", "time", "samples/s",
                "gap per stage", "delay per stage");
  s << line;
  for (const auto& t : results) {
    const runtime::Evaluation& last = t.evaluations.back();
    double samples = 0;
    for (const auto& e : t.evaluations) samples += e.samples_per_s;
    const std::string ppl = last.test_perplexity > 0 ? Fixed(last.test_perplexity, 3) : "-";
    std::snprintf(line, sizeof(line),
                  "%-*s %8.2f%% %8.2f%% %10.4f %9s %8.1fs %11.0f  %-18s %s\n", width,
                  Label(t).c_str(), 100 * t.best_accuracy, 100 * t.final_accuracy,
                  last.test_loss, ppl.c_str(), t.wall_s, samples / t.evaluations.size(),
                  PerStage(t.stages, false).c_str(), PerStage(t.stages, true).c_str());
    s << line;
  }
  s << "acc = test accuracy (next-token accuracy for language models); gap = most optimizer "
       "steps between a\nmicrobatch's F and B; delay = most steps between the weights F used "
       "and the step applying the gradient.\n";
  return s.str();
}

std::string RunJson(const ir::Job& job, const std::vector<runtime::MethodTraining>& results) {
  nlohmann::ordered_json j;
  j["schema"] = "pipecast-run";
  j["schema_version"] = 1;
  j["job"] = {{"name", job.name}, {"source", job.source}, {"epochs", job.epochs},
              {"stages", job.pipeline.stages}, {"microbatches", job.pipeline.microbatches},
              {"microbatch_size", job.pipeline.microbatch_size}, {"seed", job.seed}};
  j["results"] = nlohmann::ordered_json::array();
  for (const auto& t : results) {
    nlohmann::ordered_json r;
    r["method"] = t.method;
    r["params"] = t.params;
    r["best_accuracy"] = t.best_accuracy;
    r["final_accuracy"] = t.final_accuracy;
    r["wall_s"] = t.wall_s;
    r["evaluations"] = nlohmann::ordered_json::array();
    for (const auto& e : t.evaluations) {
      r["evaluations"].push_back({{"epoch", e.epoch}, {"minibatches", e.minibatches},
                                  {"train_loss", e.train_loss}, {"test_loss", e.test_loss},
                                  {"test_accuracy", e.test_accuracy},
                                  {"test_perplexity", e.test_perplexity}, {"wall_s", e.wall_s},
                                  {"samples_per_s", e.samples_per_s}});
    }
    r["stages"] = nlohmann::ordered_json::array();
    for (size_t k = 0; k < t.stages.size(); ++k) {
      r["stages"].push_back({{"stage", k}, {"version_gap_max", t.stages[k].version_gap_max},
                             {"gradient_delay_max", t.stages[k].gradient_delay_max}});
    }
    j["results"].push_back(r);
  }
  return j.dump(2) + "\n";
}

std::string RunCsv(const ir::Job& job, const std::vector<runtime::MethodTraining>& results) {
  std::ostringstream s;
  s << "job,method,epoch,minibatches,train_loss,test_loss,test_accuracy,test_perplexity,wall_s,"
       "samples_per_s\r\n";
  for (const auto& t : results) {
    for (const auto& e : t.evaluations) {
      s << sim::CsvField(job.name) << "," << sim::CsvField(Label(t)) << "," << e.epoch << ","
        << e.minibatches << "," << e.train_loss << "," << e.test_loss << "," << e.test_accuracy
        << "," << e.test_perplexity << "," << e.wall_s << "," << e.samples_per_s << "\r\n";
    }
  }
  return s.str();
}

sim::CostModel MeasuredCosts(const runtime::MethodTraining& t) {
  const ir::Program& p = t.last_program;
  struct Sum {
    int64_t total = 0, count = 0;
    void Add(int64_t d) {
      total += d;
      ++count;
    }
    sim::TimeNs Mean() const { return count ? total / count : 0; }
  };
  std::vector<Sum> f(p.num_stages), b(p.num_stages), i(p.num_stages), w(p.num_stages);
  std::vector<Sum> step(p.num_devices);
  Sum send;
  std::vector<int64_t> recv;
  for (int32_t d = 0; d < p.num_devices; ++d) {
    for (size_t k = 0; k < p.devices[d].size(); ++k) {
      const ir::Action& a = p.devices[d][k];
      const int64_t dur = t.last_timing[d][k].end_ns - t.last_timing[d][k].start_ns;
      switch (a.kind) {
        case ir::ActionKind::kForward: f[a.stage].Add(dur); break;
        case ir::ActionKind::kBackward: b[a.stage].Add(dur); break;
        case ir::ActionKind::kBackwardInput: i[a.stage].Add(dur); break;
        case ir::ActionKind::kWeightGrad: w[a.stage].Add(dur); break;
        case ir::ActionKind::kStep: step[d].Add(dur); break;
        case ir::ActionKind::kSendActivation:
        case ir::ActionKind::kSendGradient: send.Add(dur); break;
        case ir::ActionKind::kRecvActivation:
        case ir::ActionKind::kRecvGradient: recv.push_back(dur); break;
      }
    }
  }
  sim::CostModel c;
  c.devices.assign(1, sim::DeviceSpec{});
  // A message costs its sender's hand-over and its receiver's pick-up, both device time (LogP's
  // overheads): the mean send, and the 10th-percentile receive (the fastest receives found the
  // message already there, so they measure the pick-up and not the wait).
  c.link.send_overhead = send.Mean();
  if (!recv.empty()) {
    std::nth_element(recv.begin(), recv.begin() + recv.size() / 10, recv.end());
    c.link.recv_overhead = recv[recv.size() / 10];
  }
  for (int32_t s = 0; s < p.num_stages; ++s) {
    sim::StageCost sc;
    sc.forward = f[s].Mean();
    sc.backward_input = i[s].count ? i[s].Mean() : b[s].Mean();
    sc.backward_weight = w[s].Mean();
    sc.backward = b[s].count ? b[s].Mean() : sc.backward_input + sc.backward_weight;
    sc.optimizer_step = step[p.device_of(s)].Mean() / std::max(1, p.stages_on_device(p.device_of(s)));
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
      run.result.timing[d].push_back({a.start_ns - t0, a.end_ns - t0});
      run.result.makespan = std::max(run.result.makespan, a.end_ns - t0);
    }
  }
  run.result.stages.resize(t.last_timing.size());
  return sim::FormatPerfettoTrace(run);
}

std::string ProfileScenario(const ir::Job& job, const runtime::MethodTraining& t) {
  const sim::CostModel c = MeasuredCosts(t);
  const ir::Program& p = t.last_program;
  const int32_t devices = p.num_devices;
  // Explicit costs are per device; chunks of an interleaved device are summed (the cost builder
  // divides them again).
  auto per_device = [&](auto field) {
    std::string s = "[";
    for (int32_t d = 0; d < devices; ++d) {
      int64_t sum = 0;
      for (int32_t st = 0; st < p.num_stages; ++st)
        if (p.device_of(st) == d) sum += field(c.stages[st]);
      s += (d ? ", " : "") + std::to_string(sum) + "ns";
    }
    return s + "]";
  };
  std::ostringstream s;
  s << "# Measured by `pipecast run " << job.source << "` (" << t.method
    << "): mean duration of each action kind per stage over the last segment.\n";
  s << "name: " << job.name << "-measured\n";
  s << "pipeline:\n  stages: " << devices << "\n  microbatches: " << p.microbatches
    << "\n  minibatches: " << p.minibatches << "\n  microbatch_size: " << p.microbatch_size
    << "\n";
  s << "costs:\n";
  s << "  forward: " << per_device([](const sim::StageCost& x) { return x.forward; }) << "\n";
  const bool split = std::any_of(c.stages.begin(), c.stages.end(),
                                 [](const sim::StageCost& x) { return x.backward_weight > 0; });
  if (split) {
    s << "  backward_input: "
      << per_device([](const sim::StageCost& x) { return x.backward_input; }) << "\n";
    s << "  backward_weight: "
      << per_device([](const sim::StageCost& x) { return x.backward_weight; }) << "\n";
  } else {
    s << "  backward: " << per_device([](const sim::StageCost& x) { return x.backward; }) << "\n";
  }
  s << "  optimizer_step: "
    << per_device([](const sim::StageCost& x) { return x.optimizer_step; }) << "\n";
  s << "methods:\n  - name: " << t.method << "\n";
  for (const auto& [k, v] : t.params) s << "    " << k << ": " << v << "\n";
  return s.str();
}

std::string CompareWithSimulation(const std::vector<runtime::MethodTraining>& results) {
  std::ostringstream s;
  char line[256];
  std::snprintf(line, sizeof(line), "%-26s %14s %14s %8s %14s\n", "method",
                "measured/mb", "simulated/mb", "error", "start error");
  s << line;
  for (const auto& t : results) {
    auto r = sim::Simulate(t.last_program, MeasuredCosts(t));
    if (!r.ok()) {
      s << Label(t) << ": " << r.status().message() << "\n";
      continue;
    }
    const int64_t t0 = SegmentStart(t);
    int64_t measured = 0;
    double start_error = 0;
    int64_t actions = 0;
    for (size_t d = 0; d < t.last_timing.size(); ++d) {
      for (size_t k = 0; k < t.last_timing[d].size(); ++k) {
        measured = std::max(measured, t.last_timing[d][k].end_ns - t0);
        if (!ir::IsCompute(t.last_program.devices[d][k].kind)) continue;
        start_error += std::abs(static_cast<double>(r->timing[d][k].start -
                                                    (t.last_timing[d][k].start_ns - t0)));
        ++actions;
      }
    }
    const double n = t.last_program.minibatches;
    const double err = 100.0 * (static_cast<double>(r->makespan) - measured) / measured;
    std::snprintf(line, sizeof(line), "%-26s %12.3fms %12.3fms %+7.1f%% %13.1f%%\n",
                  Label(t).c_str(), measured * 1e-6 / n, r->makespan * 1e-6 / n, err,
                  actions ? 100.0 * start_error / actions / measured : 0.0);
    s << line;
  }
  s << "error = (simulated - measured) / measured; start error = mean |simulated - measured| "
       "start of the compute actions, relative to the segment's length.\n";
  return s.str();
}

}  // namespace pipecast::cli
