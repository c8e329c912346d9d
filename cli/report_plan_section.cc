// The report's Pareto section (report_sections.h): the plan's configurations as a scatter of
// time per sample against peak memory, coloured by staleness, the front joined and the best
// ringed, with the memory cap; and the front as a table.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cli/report_sections.h"
#include "sim/chart.h"

namespace pipecast::cli::report {
namespace {

// Most configurations drawn besides the front (the rest are counted in the caption).
constexpr size_t kMaxOtherPoints = 5000;

// Staleness classes, the scatter's colours.
const std::vector<sim::ScatterGroup>& Groups() {
  static const std::vector<sim::ScatterGroup> kGroups = {
      {"synchronous (no staleness)", "#0072B2"},
      {"delay 0, gap > 0 (predicted weights)", "#009E73"},
      {"gradient delay 1", "#E69F00"},
      {"gradient delay 2-3", "#D55E00"},
      {"gradient delay 4 or more", "#CC79A7"},
      {"other configurations (feasible)", "#BBBBBB"},
      {"infeasible", "#888888"},
  };
  return kGroups;
}

size_t StalenessGroup(const PlanConfig& c) {
  if (c.max_gradient_delay == 0) return c.max_version_gap == 0 ? 0 : 1;
  if (c.max_gradient_delay == 1) return 2;
  return c.max_gradient_delay <= 3 ? 3 : 4;
}

std::string Tooltip(const PlanConfig& c) {
  return fmt::format("#{} {}: {} stages, {} x {}, {} per sample, peak {}, delay {}, gap {}{}",
                     c.rank, c.label, c.stages, c.microbatches, c.microbatch_size,
                     Seconds(c.time_per_sample_s), Bytes(static_cast<double>(c.peak_memory_bytes)),
                     c.max_gradient_delay, c.max_version_gap,
                     c.infeasible_reason ? "; infeasible: " + *c.infeasible_reason : "");
}

bool OnFront(const PlanInput& p, const PlanConfig& c) {
  return std::any_of(p.pareto.begin(), p.pareto.end(),
                     [&](const PlanConfig& f) { return f.rank == c.rank && f.label == c.label; });
}

std::string ParetoChart(const PlanInput& p, size_t& left_out) {
  double top_time = 0, top_memory = static_cast<double>(p.memory_cap_bytes.value_or(0));
  for (const auto* list : {&p.pareto, &p.configs})
    for (const PlanConfig& c : *list) {
      top_time = std::max(top_time, c.time_per_sample_s);
      top_memory = std::max(top_memory, static_cast<double>(c.peak_memory_bytes));
    }
  const sim::DisplayUnit t = sim::SecondsUnit(top_time), b = sim::BytesUnit(top_memory);
  sim::ScatterChart c;
  c.frame = {"Pareto front: time per sample against peak memory",
             "time per sample (" + t.name + ")", "peak memory per device (" + b.name + ")", 1100,
             320};
  c.groups = Groups();
  auto point = [&](const PlanConfig& k, size_t group, bool best) {
    return sim::ScatterPoint{k.time_per_sample_s / t.divisor,
                             static_cast<double>(k.peak_memory_bytes) / b.divisor,
                             group,
                             best,
                             best ? "best: " + k.label : "",
                             Tooltip(k)};
  };
  size_t others = 0;
  for (const PlanConfig& k : p.configs) {
    if (OnFront(p, k)) continue;
    if (++others > kMaxOtherPoints) continue;
    c.points.push_back(point(k, k.feasible ? 5 : 6, false));
  }
  left_out = others > kMaxOtherPoints ? others - kMaxOtherPoints : 0;
  std::vector<PlanConfig> front = p.pareto;
  std::stable_sort(front.begin(), front.end(), [](const PlanConfig& a, const PlanConfig& z) {
    return a.time_per_sample_s < z.time_per_sample_s;
  });
  for (const PlanConfig& k : front) {
    c.connect.push_back(c.points.size());
    c.points.push_back(
        point(k, StalenessGroup(k), k.rank == p.best.rank && k.label == p.best.label));
  }
  c.connect_legend = "Pareto front";
  if (p.memory_cap_bytes) {
    c.y_reference = sim::ReferenceLine{
        static_cast<double>(*p.memory_cap_bytes) / b.divisor,
        "memory cap " + Bytes(static_cast<double>(*p.memory_cap_bytes)), "#D55E00"};
  }
  return sim::RenderScatterChart(c);
}

Table FrontTable(const PlanInput& p) {
  Table t;
  t.header = {"rank",      "configuration",   "stages",    "microbatches x size",
              "recompute", "time per sample", "samples/s", "peak memory",
              "bubble",    "max delay",       "max gap"};
  t.numeric = {true, false, true, true, false, true, true, true, true, true, true};
  for (const PlanConfig& c : p.pareto) {
    t.rows.push_back({std::to_string(c.rank), c.label, std::to_string(c.stages),
                      fmt::format("{} x {}", c.microbatches, c.microbatch_size),
                      c.recompute ? "on" : "off", Seconds(c.time_per_sample_s),
                      Rate(c.samples_per_s), Bytes(static_cast<double>(c.peak_memory_bytes)),
                      fmt::format("{:.1f}%", c.bubble_fraction * 100),
                      std::to_string(c.max_gradient_delay), std::to_string(c.max_version_gap)});
    t.marked.push_back(c.rank == p.best.rank && c.label == p.best.label);
  }
  t.notes.push_back(
      "The front: no other configuration is at once faster, smaller and less "
      "stale. Bubble: the plan's bubble fraction.");
  return t;
}

// The configurations ranked by predicted time to the target loss (the plan's `configs`, best
// first), with the speed-up over the baseline split into throughput and convergence.
Table TimeToLossTable(const PlanInput& p) {
  constexpr size_t kRows = 15;
  std::vector<const PlanConfig*> ranked;
  for (const PlanConfig& c : p.configs)
    if (c.time_to_loss_s && c.feasible) ranked.push_back(&c);
  std::stable_sort(ranked.begin(), ranked.end(), [](const PlanConfig* a, const PlanConfig* z) {
    return *a->time_to_loss_s < *z->time_to_loss_s;
  });
  Table t;
  t.header = {"rank", "configuration", "stages", "microbatches x size", "time to loss",
              "speed-up", "from throughput", "from convergence", "convergence of"};
  t.numeric = {true, false, true, true, true, true, true, true, false};
  for (size_t i = 0; i < ranked.size() && i < kRows; ++i) {
    const PlanConfig& c = *ranked[i];
    const auto& ttl = c.time_to_loss;
    auto factor = [&](double PlanConfig::TimeToLoss::*f) {
      return ttl && (*ttl).*f > 0 ? fmt::format("{:.2f}x", (*ttl).*f) : std::string("-");
    };
    t.rows.push_back({std::to_string(c.rank), c.label, std::to_string(c.stages),
                      fmt::format("{} x {}", c.microbatches, c.microbatch_size),
                      Seconds(*c.time_to_loss_s), factor(&PlanConfig::TimeToLoss::speedup),
                      factor(&PlanConfig::TimeToLoss::throughput_factor),
                      factor(&PlanConfig::TimeToLoss::convergence_factor),
                      ttl ? ttl->convergence_from + (ttl->note.empty() ? "" : " (" + ttl->note + ")")
                          : ""});
    t.marked.push_back(c.rank == p.best.rank && c.label == p.best.label);
  }
  t.notes.push_back(fmt::format(
      "Time to loss = steps to the target loss in the convergence profile x the simulated time "
      "per step; speed-up = the baseline's time to loss / this one's = (throughput factor) x "
      "(convergence factor){}. It rests on: {}.",
      p.baseline_rank ? fmt::format(", against the configuration ranked {}", *p.baseline_rank)
                      : "",
      p.rests_on.value_or("the plan's convergence profile")));
  return t;
}

}  // namespace

Section ParetoSection(const ReportModel& m) {
  Section s = Titled("pareto", "Plan: Pareto front");
  if (m.plan == nullptr) {
    s.paragraphs.push_back(
        "No plan among the inputs: add the JSON of pipecast plan (--format "
        "json) to see the configurations it searched.");
    return s;
  }
  const PlanInput& p = *m.plan;
  s.paragraphs.push_back(fmt::format(
      "{} configurations evaluated in {:.2f} s, {} feasible; {} on the Pareto front of time per "
      "sample, peak memory and staleness. Colour: staleness; the ringed point is the best.",
      p.evaluated, p.elapsed_s, p.feasible, p.pareto.size()));
  size_t left_out = 0;
  const std::string svg = ParetoChart(p, left_out);
  s.figures.push_back({"pareto",
                       left_out == 0 ? "the plan's configurations"
                                     : fmt::format("the plan's configurations ({} more "
                                                   "not drawn)",
                                                   left_out),
                       svg, true});
  s.tables.push_back(FrontTable(p));
  if (p.objective == "time_to_loss") {
    s.paragraphs.push_back(fmt::format(
        "Objective: time to a test loss of {}: below, the configurations ranked by it.",
        p.target_loss ? fmt::format("{:g}", *p.target_loss) : std::string("the target")));
    s.tables.push_back(TimeToLossTable(p));
  }
  return s;
}

}  // namespace pipecast::cli::report
