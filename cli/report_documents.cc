// Field-by-field readers of the three documents `pipecast report` takes (report_inputs.h): the
// keys docs/outputs.md lists, each checked for presence and type. Keys a reader does not know
// are ignored (a newer writer may add fields without a version change).
#include "cli/report_documents.h"

#include <string>
#include <vector>

#include "cli/report_inputs.h"

namespace pipecast::cli::report {
namespace {

std::map<std::string, std::string> Params(FieldReader& r, const Json& object,
                                          const std::string& path) {
  std::map<std::string, std::string> params;
  const Json& p = r.Object(object, "params", path);
  for (const auto& [key, value] : p.items()) {
    params[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return params;
}

// Every element of the array at `key` of `object` (at `path`) read with `read(element, its
// path)`, stopping at the first problem; an empty array is one when `if_empty` says why.
template <typename Read>
auto ReadArray(FieldReader& r, const Json& object, std::string_view key, const std::string& path,
               const char* if_empty, Read read) {
  const std::string at = JsonPath(path, key);
  const Json& list = r.Array(object, key, path);
  std::vector<decltype(read(list, at))> out;
  if (r.ok() && list.empty() && if_empty != nullptr) r.Fail(at, if_empty);
  for (size_t i = 0; i < list.size() && r.ok(); ++i) out.push_back(read(list[i], JsonPath(at, i)));
  return out;
}

SimStage ReadSimStage(FieldReader& r, const Json& s, const std::string& path) {
  SimStage st;
  st.stage = r.Int(s, "stage", path);
  st.busy_s = r.Number(s, "busy_s", path);
  st.peak_memory_bytes = r.Int(s, "peak_memory_bytes", path);
  const std::string mem = JsonPath(path, "memory_breakdown");
  const Json& m = r.Object(s, "memory_breakdown", path);
  st.weights = r.Int(m, "weights", mem);
  st.optimizer_state = r.Int(m, "optimizer_state", mem);
  st.gradients = r.Int(m, "gradients", mem);
  st.activations = r.Int(m, "activations", mem);
  st.extra = r.Int(m, "extra", mem);
  Staleness& v = st.staleness;
  v.live_versions = r.Int(s, "live_weight_versions_max", path);
  v.gap_max = r.Int(s, "version_gap_max", path);
  v.gap_mean = r.Number(s, "version_gap_mean", path);
  v.delay_max = r.Int(s, "gradient_delay_max", path);
  v.delay_mean = r.Number(s, "gradient_delay_mean", path);
  const std::string hp = JsonPath(path, "prediction_horizon");
  const Json& h = r.Object(s, "prediction_horizon", path);
  v.horizon_forward = r.Int(h, "forward_max", hp);
  v.horizon_backward = r.Int(h, "backward_max", hp);
  v.crossing_fraction = r.Number(s, "crossing_fraction", path);
  st.over_memory = r.Bool(s, "over_memory", path);
  st.memory_capacity_bytes = r.OptionalInt(s, "memory_capacity_bytes", path).value_or(-1);
  return st;
}

SimMethod ReadSimMethod(FieldReader& r, const Json& m, const std::string& path) {
  SimMethod s;
  s.method = r.String(m, "method", path);
  s.params = Params(r, m, path);
  s.label = SimLabel(s.method, s.params);
  s.devices = r.Int(m, "devices", path);
  s.virtual_stages = r.Int(m, "virtual_stages", path);
  s.microbatches = r.Int(m, "microbatches", path);
  s.minibatches = r.Int(m, "minibatches", path);
  s.microbatch_size = r.Int(m, "microbatch_size", path);
  s.makespan_s = r.Number(m, "makespan_s", path);
  s.makespan_ns = r.Int(m, "makespan_ns", path);
  s.throughput = r.Number(m, "throughput_samples_per_s", path);
  s.steady_throughput = r.Number(m, "steady_throughput_samples_per_s", path);
  const std::string bp = JsonPath(path, "bubble");
  const Json& b = r.Object(m, "bubble", path);
  s.idle_fraction = r.Number(b, "idle_fraction", bp);
  s.overhead_vs_ideal = r.Number(b, "overhead_vs_ideal", bp);
  s.zb_rate = r.Number(b, "zb_rate", bp);
  s.stages = ReadArray(r, m, "stages", path, nullptr, [&](const Json& st, const std::string& at) {
    return ReadSimStage(r, st, at);
  });
  return s;
}

RunStage ReadRunStage(FieldReader& r, const Json& s, const std::string& path) {
  RunStage st;
  st.stage = r.Int(s, "stage", path);
  Staleness& v = st.staleness;
  v.gap_max = r.Int(s, "version_gap_max", path);
  v.gap_mean = r.Number(s, "version_gap_mean", path);
  v.delay_max = r.Int(s, "gradient_delay_max", path);
  v.delay_mean = r.Number(s, "gradient_delay_mean", path);
  v.horizon_forward = r.Int(s, "prediction_horizon_forward_max", path);
  v.horizon_backward = r.Int(s, "prediction_horizon_backward_max", path);
  v.crossing_fraction = r.Number(s, "crossing_fraction", path);
  v.live_versions = r.Int(s, "live_weight_versions_max", path);
  st.prediction_error = r.OptionalNumber(s, "prediction_error_mean", path);
  return st;
}

RunEvaluation ReadEvaluation(FieldReader& r, const Json& e, const std::string& path) {
  RunEvaluation ev;
  ev.epoch = r.Number(e, "epoch", path);
  ev.minibatches = r.Int(e, "minibatches", path);
  ev.train_loss = r.Number(e, "train_loss", path);
  ev.test_loss = r.Number(e, "test_loss", path);
  ev.test_accuracy = r.Number(e, "test_accuracy", path);
  ev.wall_s = r.Number(e, "wall_s", path);
  ev.samples_per_s = r.Number(e, "samples_per_s", path);
  return ev;
}

RunResult ReadRunResult(FieldReader& r, const Json& m, const std::string& path) {
  RunResult t;
  t.method = r.String(m, "method", path);
  t.label = r.String(m, "label", path);
  t.params = Params(r, m, path);
  t.seed = r.Int(m, "seed", path);
  t.best_accuracy = r.Number(m, "best_accuracy", path);
  t.final_accuracy = r.Number(m, "final_accuracy", path);
  t.wall_s = r.Number(m, "wall_s", path);
  t.evaluations =
      ReadArray(r, m, "evaluations", path, "empty: a run has at least one evaluation",
                [&](const Json& e, const std::string& at) { return ReadEvaluation(r, e, at); });
  t.stages = ReadArray(r, m, "stages", path, nullptr, [&](const Json& st, const std::string& at) {
    return ReadRunStage(r, st, at);
  });
  return t;
}

PlanConfig ReadConfig(FieldReader& r, const Json& c, const std::string& path) {
  PlanConfig p;
  p.rank = r.Int(c, "rank", path);
  p.method = r.String(c, "method", path);
  p.label = r.String(c, "label", path);
  p.stages = r.Int(c, "stages", path);
  p.microbatches = r.Int(c, "microbatches", path);
  p.microbatch_size = r.Int(c, "microbatch_size", path);
  p.data_parallel = r.Int(c, "data_parallel", path);
  p.recompute = r.Bool(c, "recompute", path);
  p.partition = r.String(c, "partition", path);
  p.time_per_sample_s = r.Number(c, "time_per_sample_s", path);
  p.samples_per_s = r.Number(c, "samples_per_s", path);
  p.time_per_step_s = r.Number(c, "time_per_step_s", path);
  p.peak_memory_bytes = r.Int(c, "peak_memory_bytes", path);
  p.bubble_fraction = r.Number(c, "bubble_fraction", path);
  p.max_gradient_delay = r.Int(c, "max_gradient_delay", path);
  p.max_version_gap = r.Int(c, "max_version_gap", path);
  p.feasible = r.Bool(c, "feasible", path);
  p.infeasible_reason = r.OptionalString(c, "infeasible_reason", path);
  p.time_to_loss_s = r.OptionalNumber(c, "time_to_loss_s", path);
  if (const auto it = c.find("time_to_loss"); it != c.end() && it->is_object()) {
    const std::string at = JsonPath(path, "time_to_loss");
    PlanConfig::TimeToLoss t;
    t.speedup = r.OptionalNumber(*it, "speedup_vs_baseline", at).value_or(0);
    t.throughput_factor = r.OptionalNumber(*it, "throughput_factor", at).value_or(0);
    t.convergence_factor = r.OptionalNumber(*it, "convergence_factor", at).value_or(0);
    t.convergence_from = r.OptionalString(*it, "convergence_from", at).value_or("");
    t.note = r.OptionalString(*it, "note", at).value_or("");
    p.time_to_loss = std::move(t);
  }
  return p;
}

std::vector<PlanConfig> ReadConfigs(FieldReader& r, const Json& doc, std::string_view key,
                                    const char* if_empty) {
  return ReadArray(r, doc, key, "", if_empty,
                   [&](const Json& c, const std::string& at) { return ReadConfig(r, c, at); });
}

}  // namespace

SimInput ReadSimDocument(FieldReader& r, const Json& doc) {
  SimInput in;
  in.file = r.file();
  const Json& scenario = r.Object(doc, "scenario", "");
  in.scenario_name = r.String(scenario, "name", "scenario");
  in.scenario_source = r.String(scenario, "source", "scenario");
  in.device_memory_bytes = r.OptionalInt(scenario, "device_memory_bytes", "scenario").value_or(0);
  in.results =
      ReadArray(r, doc, "results", "", "empty: no method was simulated",
                [&](const Json& m, const std::string& at) { return ReadSimMethod(r, m, at); });
  return in;
}

RunInput ReadRunDocument(FieldReader& r, const Json& doc) {
  RunInput in;
  in.file = r.file();
  const Json& job = r.Object(doc, "job", "");
  in.job_name = r.String(job, "name", "job");
  in.job_source = r.String(job, "source", "job");
  in.optimizer = r.String(job, "optimizer", "job");
  in.stages = r.Int(job, "stages", "job");
  in.microbatches = r.Int(job, "microbatches", "job");
  in.microbatch_size = r.Int(job, "microbatch_size", "job");
  in.results =
      ReadArray(r, doc, "results", "", "empty: no method was trained",
                [&](const Json& m, const std::string& at) { return ReadRunResult(r, m, at); });
  return in;
}

PlanInput ReadPlanDocument(FieldReader& r, const Json& doc) {
  PlanInput in;
  in.file = r.file();
  const Json& scenario = r.Object(doc, "scenario", "");
  in.scenario_name = r.String(scenario, "name", "scenario");
  in.scenario_source = r.String(scenario, "source", "scenario");
  in.objective = r.String(doc, "objective", "");
  in.target_loss = r.OptionalNumber(doc, "target_loss", "");
  const Json& constraints = r.Object(doc, "constraints", "");
  in.memory_cap_bytes = r.OptionalInt(constraints, "memory_cap_bytes", "constraints");
  in.max_gradient_delay = r.OptionalInt(constraints, "max_gradient_delay", "constraints");
  in.evaluated = r.Int(doc, "evaluated", "");
  in.feasible = r.Int(doc, "feasible", "");
  in.elapsed_s = r.Number(doc, "elapsed_s", "");
  in.best = ReadConfig(r, r.Object(doc, "best", ""), "best");
  in.pareto = ReadConfigs(r, doc, "pareto", "empty: a plan has at least its best");
  in.configs = ReadConfigs(r, doc, "configs", nullptr);
  if (const auto it = doc.find("time_to_loss"); it != doc.end() && it->is_object()) {
    in.baseline_rank = r.OptionalInt(*it, "baseline_rank", "time_to_loss");
    in.rests_on = r.OptionalString(*it, "rests_on", "time_to_loss");
  }
  return in;
}

}  // namespace pipecast::cli::report
