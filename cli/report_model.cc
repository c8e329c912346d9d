#include "cli/report_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace pipecast::cli::report {
namespace {

// The view of the method `label` simulates or `run` trained: same method, same parameters.
MethodView* Find(std::vector<MethodView>& views, const std::string& key,
                 std::vector<std::string>& keys) {
  for (size_t i = 0; i < views.size(); ++i)
    if (keys[i] == key) return &views[i];
  return nullptr;
}

template <typename Fn>
Spread OverSeeds(const MethodView& m, Fn f) {
  std::vector<double> values;
  for (const RunResult* r : m.runs) values.push_back(f(*r));
  return SpreadOf(values);
}

}  // namespace

ReportModel BuildModel(const Inputs& inputs) {
  ReportModel model;
  model.inputs = &inputs;
  std::vector<std::string> keys;  // per view: method + params
  for (const SimInput& s : inputs.sims) {
    if (model.scenario.empty()) model.scenario = s.scenario_name;
    model.device_memory_bytes = std::max(model.device_memory_bytes, s.device_memory_bytes);
    for (const SimMethod& m : s.results) {
      for (const SimStage& st : m.stages) {
        model.capacities_differ = model.capacities_differ ||
                                  (st.memory_capacity_bytes >= 0 &&
                                   st.memory_capacity_bytes != m.stages[0].memory_capacity_bytes);
      }
      model.methods.push_back({m.label, &m, {}, 0});
      keys.push_back(m.label);
    }
  }
  for (const RunInput& r : inputs.runs) {
    if (model.scenario.empty()) model.scenario = r.job_name;
    model.samples_per_minibatch = r.microbatches * r.microbatch_size;
    for (const RunResult& t : r.results) {
      const std::string key = SimLabel(t.method, t.params);
      MethodView* view = Find(model.methods, key, keys);
      if (view == nullptr) {
        model.methods.push_back({t.label, nullptr, {}, 0});
        keys.push_back(key);
        view = &model.methods.back();
      }
      if (view->sim != nullptr && view->runs.empty() && t.label != view->label) {
        view->label = t.label;  // "pipeoptim[sgd]": the run's label says more
      }
      view->runs.push_back(&t);
    }
  }
  if (!inputs.plans.empty()) {
    model.plan = &inputs.plans[0];
    if (model.scenario.empty()) model.scenario = model.plan->scenario_name;
  }
  for (size_t i = 0; i < model.methods.size(); ++i) model.methods[i].colour = i;
  return model;
}

Spread SpreadOf(const std::vector<double>& values) {
  Spread s;
  s.n = values.size();
  if (values.empty()) return s;
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(values.size());
  if (values.size() > 1) {
    double sq = 0;
    for (double v : values) sq += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(sq / static_cast<double>(values.size() - 1));
  }
  return s;
}

Spread FinalAccuracy(const MethodView& m) {
  return OverSeeds(m, [](const RunResult& r) { return r.final_accuracy; });
}

Spread FinalTestLoss(const MethodView& m) {
  return OverSeeds(m, [](const RunResult& r) { return r.evaluations.back().test_loss; });
}

Spread MeasuredSamplesPerS(const MethodView& m, int64_t samples_per_minibatch) {
  return OverSeeds(m, [&](const RunResult& r) {
    const RunEvaluation& last = r.evaluations.back();
    return last.wall_s > 0
               ? static_cast<double>(last.minibatches * samples_per_minibatch) / last.wall_s
               : NAN;
  });
}

std::optional<double> SimulatedMinibatchS(const MethodView& m) {
  if (m.sim == nullptr || m.sim->steady_throughput <= 0) return std::nullopt;
  return static_cast<double>(m.sim->microbatches * m.sim->microbatch_size) /
         m.sim->steady_throughput;
}

std::string PercentWithSpread(const Spread& s, int digits) {
  std::string text = fmt::format("{:.{}f}%", s.mean * 100, digits);
  if (s.n > 1) text += fmt::format(" ± {:.{}f}", s.sd * 100, digits);
  return text;
}

}  // namespace pipecast::cli::report
