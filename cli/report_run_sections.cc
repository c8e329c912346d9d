// The report's training section (report_sections.h): test loss and accuracy per method over
// training, the mean over seeds with their minimum-to-maximum band, against epochs, measured
// time and (with a simulation of the same pipeline) simulated time; and measured against
// simulated time per minibatch.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "cli/report_sections.h"
#include "sim/chart.h"

namespace pipecast::cli::report {
namespace {

using EvalValue = std::function<double(const RunResult&, const RunEvaluation&)>;

// One method's curve: at each evaluation (the seeds evaluate at the same points), the mean x,
// the mean y and, over several seeds, the band from the smallest to the largest y.
sim::LineSeries Curve(const MethodView& v, const EvalValue& x, const EvalValue& y) {
  sim::LineSeries s{v.label, MethodColour(v), MethodDashed(v), {}, {}, {}, {}};
  size_t points = std::numeric_limits<size_t>::max();
  for (const RunResult* r : v.runs) points = std::min(points, r->evaluations.size());
  for (size_t i = 0; i < points; ++i) {
    std::vector<double> xs, ys;
    for (const RunResult* r : v.runs) {
      xs.push_back(x(*r, r->evaluations[i]));
      ys.push_back(y(*r, r->evaluations[i]));
    }
    const Spread sy = SpreadOf(ys);
    s.x.push_back(SpreadOf(xs).mean);
    s.y.push_back(sy.mean);
    if (v.runs.size() > 1) {
      s.low.push_back(sy.min);
      s.high.push_back(sy.max);
    }
  }
  return s;
}

struct CurveChart {
  std::string name, title, x_label, y_label;
  EvalValue x, y;
  bool needs_sim = false;
};

std::string BandLegend(const ReportModel& m) {
  size_t seeds = 0;
  for (const MethodView& v : m.methods) seeds = std::max(seeds, v.runs.size());
  return seeds > 1 ? fmt::format("band: min to max over {} seeds; line: mean", seeds) : "";
}

std::string RenderCurves(const ReportModel& m, const CurveChart& spec) {
  sim::LineChart c;
  c.frame = {spec.title, spec.x_label, spec.y_label, 560, 220};
  c.band_legend = BandLegend(m);
  for (const MethodView& v : m.methods) {
    if (v.runs.empty() || (spec.needs_sim && !SimulatedMinibatchS(v))) continue;
    c.series.push_back(Curve(v, spec.x, spec.y));
  }
  return sim::RenderLineChart(c);
}

double LongestTime(const ReportModel& m, bool simulated) {
  double longest = 0;
  for (const MethodView& v : m.methods) {
    for (const RunResult* r : v.runs) {
      const RunEvaluation& last = r->evaluations.back();
      if (!simulated) longest = std::max(longest, last.wall_s);
      if (simulated && SimulatedMinibatchS(v)) {
        longest =
            std::max(longest, *SimulatedMinibatchS(v) * static_cast<double>(last.minibatches));
      }
    }
  }
  return longest;
}

std::vector<CurveChart> CurveCharts(const ReportModel& m, bool any_sim) {
  auto epoch = [](const RunResult&, const RunEvaluation& e) { return e.epoch; };
  auto loss = [](const RunResult&, const RunEvaluation& e) { return e.test_loss; };
  auto accuracy = [](const RunResult&, const RunEvaluation& e) { return e.test_accuracy * 100; };
  const sim::DisplayUnit measured = sim::SecondsUnit(LongestTime(m, false));
  auto wall = [measured](const RunResult&, const RunEvaluation& e) {
    return e.wall_s / measured.divisor;
  };
  std::vector<CurveChart> charts = {
      {"loss-epochs", "Test loss", "training (epochs)", "test loss (cross-entropy, nats)", epoch,
       loss},
      {"accuracy-epochs", "Test accuracy", "training (epochs)", "test accuracy (%)", epoch,
       accuracy},
      {"accuracy-measured-time", "Test accuracy against measured time",
       "measured training time (" + measured.name + ", this machine)", "test accuracy (%)", wall,
       accuracy}};
  if (any_sim) {
    const sim::DisplayUnit unit = sim::SecondsUnit(LongestTime(m, true));
    std::map<const RunResult*, double> per_minibatch;
    for (const MethodView& v : m.methods)
      for (const RunResult* r : v.runs)
        if (SimulatedMinibatchS(v)) per_minibatch[r] = *SimulatedMinibatchS(v) / unit.divisor;
    auto simulated = [per_minibatch](const RunResult& r, const RunEvaluation& e) {
      const auto it = per_minibatch.find(&r);
      return it == per_minibatch.end() ? NAN : it->second * static_cast<double>(e.minibatches);
    };
    charts.push_back({"accuracy-simulated-time", "Test accuracy against simulated time",
                      "simulated training time (" + unit.name + ", the simulated cluster)",
                      "test accuracy (%)", simulated, accuracy, true});
  }
  return charts;
}

// Measured and simulated time per minibatch, per method that has both.
std::string TimePerMinibatchChart(const ReportModel& m, Table& table) {
  std::vector<const MethodView*> both;
  double longest = 0;
  for (const MethodView& v : m.methods) {
    if (v.runs.empty() || !SimulatedMinibatchS(v)) continue;
    both.push_back(&v);
    longest = std::max(longest, *SimulatedMinibatchS(v));
    for (const RunResult* r : v.runs) {
      longest = std::max(longest, r->evaluations.back().wall_s /
                                      static_cast<double>(r->evaluations.back().minibatches));
    }
  }
  if (both.empty()) return "";
  const sim::DisplayUnit unit = sim::SecondsUnit(longest);
  sim::BarChart c;
  c.frame = {"Time per minibatch: measured and simulated", "method",
             "time per minibatch (" + unit.name + ")", 560, 200};
  sim::BarSeries measured{"measured (mean over seeds)", "#0072B2", {}, {}};
  sim::BarSeries simulated{"simulated (steady state)", "#E69F00", {}, {}};
  table.header = {"method", "measured per minibatch", "simulated per minibatch", "error"};
  table.numeric = {false, true, true, true};
  for (const MethodView* v : both) {
    std::vector<double> per;
    for (const RunResult* r : v->runs) {
      per.push_back(r->evaluations.back().wall_s /
                    static_cast<double>(r->evaluations.back().minibatches));
    }
    const double meas = SpreadOf(per).mean, simu = *SimulatedMinibatchS(*v);
    c.categories.push_back(v->label);
    measured.values.push_back(meas / unit.divisor);
    simulated.values.push_back(simu / unit.divisor);
    table.rows.push_back({v->label, Seconds(meas), Seconds(simu),
                          fmt::format("{:+.1f}%", (simu - meas) / meas * 100)});
  }
  table.notes.push_back(
      "error = (simulated - measured) / measured; measured: training time over "
      "minibatches trained (docs/metrics.md).");
  c.series = {measured, simulated};
  return sim::RenderBarChart(c);
}

}  // namespace

Section TrainingSection(const ReportModel& m) {
  Section s = Titled("training", "Training: loss and accuracy");
  bool any_run = false, any_sim = false;
  for (const MethodView& v : m.methods) {
    any_run = any_run || !v.runs.empty();
    any_sim = any_sim || (!v.runs.empty() && SimulatedMinibatchS(v));
  }
  if (!any_run) {
    s.paragraphs.push_back(
        "No run among the inputs: add the JSON of pipecast run (--format "
        "json, --seeds K for the spread) to see this.");
    return s;
  }
  s.paragraphs.push_back(
      "Test loss and accuracy at each evaluation of pipecast run, per method: the line is the "
      "mean over the seeds, the band their minimum to maximum. Measured time is the training "
      "time on the machine that ran the job; simulated time multiplies the minibatches trained "
      "by the simulated time per minibatch of the same method (steady state).");
  for (const CurveChart& c : CurveCharts(m, any_sim)) {
    s.figures.push_back({c.name, c.title, RenderCurves(m, c)});
  }
  Table table;
  if (std::string svg = TimePerMinibatchChart(m, table); !svg.empty()) {
    s.figures.push_back(
        {"time-per-minibatch", "measured against simulated time per minibatch", svg});
    s.tables.push_back(table);
  }
  return s;
}

}  // namespace pipecast::cli::report
