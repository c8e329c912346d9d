// The report's staleness section (report_sections.h): per device, the version gap, gradient
// delay and prediction horizons the simulation counts, the same measured by the runs, and the
// runs' prediction error.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cli/report_sections.h"
#include "sim/chart.h"

namespace pipecast::cli::report {
namespace {

bool AnyStale(const SimMethod& s) {
  return std::any_of(s.stages.begin(), s.stages.end(), [](const SimStage& st) {
    const Staleness& v = st.staleness;
    return v.gap_max > 0 || v.delay_max > 0 || v.horizon_forward > 0 || v.horizon_backward > 0;
  });
}

std::string StalenessChart(const MethodView& v) {
  sim::BarChart c;
  c.frame = {v.label + ": staleness per device", "device", "optimizer steps", 560, 160};
  sim::BarSeries gap{"version gap (max)", "#0072B2", {}, {}};
  sim::BarSeries delay{"gradient delay (max)", "#D55E00", {}, {}};
  sim::BarSeries forward{"prediction horizon F", "#009E73", {}, {}};
  sim::BarSeries backward{"prediction horizon B", "#CC79A7", {}, {}};
  for (const SimStage& st : v.sim->stages) {
    c.categories.push_back("dev " + std::to_string(st.stage));
    gap.values.push_back(static_cast<double>(st.staleness.gap_max));
    delay.values.push_back(static_cast<double>(st.staleness.delay_max));
    forward.values.push_back(static_cast<double>(st.staleness.horizon_forward));
    backward.values.push_back(static_cast<double>(st.staleness.horizon_backward));
  }
  c.series = {gap, delay, forward, backward};
  return sim::RenderBarChart(c);
}

// "3,2,1,0": one value per device.
template <typename Stages, typename Fn>
std::string PerDevice(const Stages& stages, Fn f) {
  std::vector<std::string> parts;
  for (const auto& st : stages) parts.push_back(std::to_string(f(st.staleness)));
  return Join(parts, ",");
}

// Simulated and measured staleness side by side, per device.
Table StalenessTable(const ReportModel& m) {
  Table t;
  t.header = {"method", "from", "gap max", "delay max", "horizon F", "horizon B"};
  auto add = [&](const std::string& label, const std::string& from, const auto& stages) {
    t.rows.push_back({label, from, PerDevice(stages, [](const Staleness& s) { return s.gap_max; }),
                      PerDevice(stages, [](const Staleness& s) { return s.delay_max; }),
                      PerDevice(stages, [](const Staleness& s) { return s.horizon_forward; }),
                      PerDevice(stages, [](const Staleness& s) { return s.horizon_backward; })});
  };
  for (const MethodView& v : m.methods) {
    if (v.sim != nullptr) add(v.label, "simulated", v.sim->stages);
    if (!v.runs.empty()) {
      add(v.label, fmt::format("measured (seed {})", v.runs[0]->seed), v.runs[0]->stages);
    }
  }
  t.notes.push_back(
      "Values per device, device 0 first, in optimizer steps. The runs count them "
      "from the weights each device actually served (docs/metrics.md).");
  return t;
}

// The mean over seeds of each device's prediction error; NaN where it did not predict.
std::vector<double> PredictionErrors(const MethodView& v, size_t devices) {
  std::vector<double> out(devices, NAN);
  for (size_t d = 0; d < devices; ++d) {
    std::vector<double> seeds;
    for (const RunResult* r : v.runs)
      if (d < r->stages.size() && r->stages[d].prediction_error) {
        seeds.push_back(*r->stages[d].prediction_error);
      }
    if (!seeds.empty()) out[d] = SpreadOf(seeds).mean;
  }
  return out;
}

void AddPredictionError(const ReportModel& m, Section& s) {
  size_t devices = 0;
  for (const MethodView& v : m.methods)
    for (const RunResult* r : v.runs) devices = std::max(devices, r->stages.size());
  sim::BarChart c;
  c.frame = {"Prediction error of the weight predictions, per device", "device",
             "relative error (1 = no prediction)", 1100, 200};
  for (size_t d = 0; d < devices; ++d) c.categories.push_back("dev " + std::to_string(d));
  for (const MethodView& v : m.methods) {
    const std::vector<double> errors = PredictionErrors(v, devices);
    if (std::none_of(errors.begin(), errors.end(), [](double e) { return std::isfinite(e); }))
      continue;
    c.series.push_back({v.label, MethodColour(v), errors, {}});
  }
  if (c.series.empty()) return;
  s.paragraphs.push_back(
      "Prediction error, measured by the runs: ||W_pred - W_reached|| / ||W_reached - W_now|| "
      "per prediction, averaged over the run and the seeds; 0 is a perfect prediction, 1 what "
      "predicting no change gives (docs/metrics.md).");
  s.figures.push_back({"prediction-error", "prediction error per device (runs, mean over seeds)",
                       sim::RenderBarChart(c), true});
}

}  // namespace

Section StalenessSection(const ReportModel& m) {
  Section s = Titled("staleness", "Staleness per device");
  if (m.methods.empty()) return s;
  s.paragraphs.push_back(
      "Version gap: optimizer steps of a device between a microbatch's forward and its backward. "
      "Gradient delay: steps between the version the forward's weights stand for and the step "
      "that applies the gradient. Prediction horizon: how many steps ahead a forward (F) or "
      "backward (B) predicts its weights.");
  std::vector<std::string> fresh;
  for (const MethodView& v : m.methods) {
    if (v.sim == nullptr) continue;
    if (!AnyStale(*v.sim)) {
      fresh.push_back(v.label);
      continue;
    }
    s.figures.push_back(
        {FigureName("staleness", v.label), v.label + ": staleness per device", StalenessChart(v)});
  }
  if (!fresh.empty()) {
    s.paragraphs.push_back(
        "No staleness on any device (all zero, not drawn): " + Join(fresh, ", ") + ".");
  }
  if (!m.inputs->runs.empty()) s.tables.push_back(StalenessTable(m));
  AddPredictionError(m, s);
  return s;
}

}  // namespace pipecast::cli::report
