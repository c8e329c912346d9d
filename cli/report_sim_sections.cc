// The report's sections on simulated results (report_sections.h): timelines, bubbles, memory
// per device against the capacity, and staleness per device.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cli/report_sections.h"
#include "sim/chart.h"

namespace pipecast::cli::report {
namespace {

constexpr const char* kNoSim =
    "No simulation among the inputs: add the JSON of pipecast sim (--format json) to see this.";

std::vector<const MethodView*> Simulated(const ReportModel& m) {
  std::vector<const MethodView*> out;
  for (const MethodView& v : m.methods)
    if (v.sim != nullptr) out.push_back(&v);
  return out;
}

// A section on simulated results: its title, and when nothing was simulated, what to add.
Section SimSection(const ReportModel& m, const char* id, const char* title) {
  Section s = Titled(id, title);
  if (Simulated(m).empty()) s.paragraphs.push_back(kNoSim);
  return s;
}

std::vector<std::string> DeviceNames(const SimMethod& s) {
  std::vector<std::string> names;
  for (const SimStage& st : s.stages) names.push_back("dev " + std::to_string(st.stage));
  return names;
}

// The memory components in stacking order, with their colours.
struct Component {
  const char* name;
  const char* colour;
  int64_t SimStage::*bytes;
};
constexpr Component kComponents[] = {
    {"weights x versions", "#0072B2", &SimStage::weights},
    {"optimizer state", "#E69F00", &SimStage::optimizer_state},
    {"gradients", "#009E73", &SimStage::gradients},
    {"activations", "#56B4E9", &SimStage::activations},
    {"extra", "#CC79A7", &SimStage::extra},
};

// One method's memory at the peak of each device: stacked components against the capacity, on
// a y axis reaching `top` bytes (the same for every method).
std::string MemoryChart(const MethodView& v, const sim::DisplayUnit& unit, double top,
                        int64_t capacity) {
  sim::BarChart c;
  c.frame = {v.label + ": memory at the peak", "device", "memory (" + unit.name + ")", 560, 200};
  c.categories = DeviceNames(*v.sim);
  c.stacked = true;
  c.y_at_least = top / unit.divisor;
  if (capacity > 0) {
    c.reference = sim::ReferenceLine{static_cast<double>(capacity) / unit.divisor,
                                     "capacity " + Bytes(static_cast<double>(capacity)), "#D55E00"};
  }
  for (const Component& k : kComponents) {
    sim::BarSeries series{k.name, k.colour, {}, {}};
    for (const SimStage& st : v.sim->stages) {
      series.values.push_back(static_cast<double>(st.*k.bytes) / unit.divisor);
      series.tooltips.push_back(fmt::format("dev {}, {}: {} (live versions {})", st.stage, k.name,
                                            Bytes(static_cast<double>(st.*k.bytes)),
                                            st.staleness.live_versions));
    }
    c.series.push_back(std::move(series));
  }
  return sim::RenderBarChart(c);
}

}  // namespace

Section TimelineSection(const ReportModel& m, const std::vector<Timeline>& timelines,
                        const PageOptions& o) {
  Section s = SimSection(m, "timelines", "Timelines");
  s.figures_wide = true;
  if (Simulated(m).empty()) return s;
  s.paragraphs.push_back(
      "What every device does over time, one row per device: F forward (sky blue), B backward "
      "(green), I and W the two halves of a split backward (orange, pink), S optimizer step "
      "(grey); blank is idle. A heavy border marks stashed weights, hatching predicted ones "
      "(docs/outputs.md, SVG timeline).");
  if (!o.timeline_note.empty()) s.paragraphs.push_back(o.timeline_note);
  for (const Timeline& t : timelines) {
    if (t.svg.empty()) {
      s.paragraphs.push_back(t.label + ": not drawn: " + t.note);
      continue;
    }
    s.figures.push_back({FigureName("timeline", t.label),
                         t.label + ": simulated timeline" + (t.note.empty() ? "" : "; " + t.note),
                         t.svg});
  }
  return s;
}

Section BubbleSection(const ReportModel& m) {
  Section s = SimSection(m, "bubbles", "Bubbles");
  const std::vector<const MethodView*> sims = Simulated(m);
  if (sims.empty()) return s;
  s.paragraphs.push_back(
      "Three definitions from the literature (docs/metrics.md): idle share 1 - sum busy / "
      "(devices x makespan); overhead against the ideal (makespan - max busy) / max busy; "
      "zero-bubble rate (max span - max busy) / max span.");
  sim::BarChart c;
  c.frame = {"Pipeline bubbles per method", "method", "bubble (%)", 1100, 240};
  sim::BarSeries idle{"idle share", "#0072B2", {}, {}};
  sim::BarSeries ideal{"overhead vs ideal", "#E69F00", {}, {}};
  sim::BarSeries zb{"zero-bubble rate", "#009E73", {}, {}};
  for (const MethodView* v : sims) {
    c.categories.push_back(v->label);
    idle.values.push_back(v->sim->idle_fraction * 100);
    ideal.values.push_back(v->sim->overhead_vs_ideal * 100);
    zb.values.push_back(v->sim->zb_rate * 100);
  }
  c.series = {idle, ideal, zb};
  s.figures.push_back(
      {"bubbles", "bubbles of each simulated method, in percent", sim::RenderBarChart(c), true});
  return s;
}

// "dev 0 512 GiB, dev 1 80.0 GiB, ...": each device's own capacity (0 = unlimited).
std::string Capacities(const SimMethod& sim) {
  std::string out;
  for (const SimStage& st : sim.stages) {
    out += fmt::format("{}dev {} {}", out.empty() ? "" : ", ", st.stage,
                       st.memory_capacity_bytes > 0
                           ? Bytes(static_cast<double>(st.memory_capacity_bytes))
                           : std::string("unlimited"));
  }
  return out;
}

Section MemorySection(const ReportModel& m) {
  Section s = SimSection(m, "memory", "Memory per device");
  const std::vector<const MethodView*> sims = Simulated(m);
  if (sims.empty()) return s;
  // Devices of different capacities get no one line: their capacities are listed instead.
  const int64_t capacity = m.capacities_differ ? 0 : m.device_memory_bytes;
  double top = static_cast<double>(capacity);
  for (const MethodView* v : sims) top = std::max(top, static_cast<double>(v->sim->peak_memory()));
  const sim::DisplayUnit unit = sim::BytesUnit(top);
  std::string ending = "; the scenario gives no device capacity.";
  if (m.capacities_differ) {
    ending = ", and the devices have capacities of their own (" + Capacities(*sims[0]->sim) +
             "), so no capacity line is drawn: a method is over the capacity when a device is "
             "above its own.";
  } else if (capacity > 0) {
    ending = ", and the dashed line is the device's capacity (" +
             Bytes(static_cast<double>(capacity)) + ").";
  }
  s.paragraphs.push_back(
      "Each device's memory at its peak, split into the weights times the versions held, the "
      "optimizer state, the gradient buffer, the activations of microbatches in flight and extra "
      "buffers (PipeMare's velocity); every chart has the same scale" +
      ending);
  for (const MethodView* v : sims) {
    s.figures.push_back({FigureName("memory", v->label),
                         v->label + ": peak " + Bytes(static_cast<double>(v->sim->peak_memory())) +
                             (v->sim->over_memory() ? ", over the capacity" : ""),
                         MemoryChart(*v, unit, top, capacity)});
  }
  return s;
}

}  // namespace pipecast::cli::report
