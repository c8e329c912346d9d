#include "cli/plan_report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sim/report.h"

namespace pipecast::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string Seconds(double s) {
  if (!(s > 0)) return "-";
  if (s >= 3600 * 24) return fmt::format("{:.3g} d", s / 86400);
  if (s >= 3600) return fmt::format("{:.3g} h", s / 3600);
  return sim::FormatDuration(static_cast<sim::TimeNs>(std::llround(s * 1e9)));
}

std::string Rate(double per_s) {
  if (per_s >= 1e6) return fmt::format("{:.3g}M", per_s / 1e6);
  if (per_s >= 1e3) return fmt::format("{:.3g}k", per_s / 1e3);
  return fmt::format("{:.3g}", per_s);
}

Json TimeToLossJson(const sim::TimeToLoss& t) {
  Json j = {
      {"steps_to_loss", t.seconds ? Json(t.steps_to_loss) : Json(nullptr)},
      {"convergence_from", t.convergence_from.empty() ? Json(nullptr) : Json(t.convergence_from)},
      {"note", t.note.empty() ? Json(nullptr) : Json(t.note)}};
  if (t.speedup > 0) {
    j["speedup_vs_baseline"] = t.speedup;
    j["throughput_factor"] = t.throughput_factor;
    j["convergence_factor"] = t.convergence_factor;
  }
  return j;
}

Json ConfigJson(const ir::Scenario& s, const sim::PlanEntry& e, bool pareto) {
  const ir::PlanConfig& c = e.config;
  const sim::PlanMetrics& m = e.metrics;
  Json j = {
      {"rank", e.rank},
      {"method", c.method},
      {"label", sim::ConfigLabel(c)},
      {"params", c.params},
      {"stages", c.stages},
      {"microbatches", c.microbatches},
      {"microbatch_size", c.microbatch_size},
      {"data_parallel", c.data_parallel},
      {"recompute", c.recompute},
      {"partition", PartitionName(s, c)},
      {"time_per_sample_s", m.time_per_sample_s},
      {"samples_per_s", m.samples_per_s},
      {"time_per_step_s", m.time_per_step_s},
      {"peak_memory_bytes", m.peak_memory_bytes},
      {"bubble_fraction", m.bubble_fraction},
      {"max_gradient_delay", m.max_gradient_delay},
      {"max_version_gap", m.max_version_gap},
      {"feasible", e.feasible},
      {"infeasible_reason", e.feasible ? Json(nullptr) : Json(e.infeasible_reason)},
      {"time_to_loss_s", e.time_to_loss.seconds ? Json(*e.time_to_loss.seconds) : Json(nullptr)}};
  j["minibatches"] = c.minibatches;
  j["makespan_s"] = static_cast<double>(m.makespan) * 1e-9;
  j["samples_per_step"] = m.samples_per_step;
  j["steps"] = m.steps;
  j["layers"] = m.layers;
  j["pareto"] = pareto;
  j["time_to_loss"] = TimeToLossJson(e.time_to_loss);
  return j;
}

Json SpaceJson(const sim::PlanResult& r) {
  Json methods = Json::array();
  for (const ir::MethodGrid& g : r.space.methods) methods.push_back(g.name);
  Json partitions = Json::array();
  for (ir::PartitionRule p : r.space.partitions) partitions.push_back(ir::PartitionRuleName(p));
  return {{"methods", methods},
          {"stages", r.space.stages},
          {"microbatch_sizes", r.space.microbatch_sizes},
          {"global_batch", r.global_batch},
          {"recompute", r.space.recompute},
          {"partitions", partitions},
          {"data_parallel", r.space.data_parallel}};
}

std::string ConfigShape(const ir::Scenario& s, const ir::PlanConfig& c) {
  return fmt::format("D={}{} M={} b={} rc={} {}", c.stages,
                     c.data_parallel > 1 ? fmt::format(" R={}", c.data_parallel) : "",
                     c.microbatches, c.microbatch_size, c.recompute ? "on" : "off",
                     PartitionName(s, c));
}

// One row of the configuration tables.
std::string Row(const ir::Scenario& s, const sim::PlanEntry& e, bool ttl) {
  const sim::PlanMetrics& m = e.metrics;
  std::string row = fmt::format(
      "{:>5}  {:<32} {:<34} {:>10} {:>9} {:>10} {:>10} {:>6.1f}% {:>5} {:>4}", e.rank,
      sim::ConfigLabel(e.config), ConfigShape(s, e.config), Seconds(m.time_per_sample_s),
      Rate(m.samples_per_s), Seconds(m.time_per_step_s), sim::FormatBytes(m.peak_memory_bytes),
      100 * m.bubble_fraction, m.max_gradient_delay, m.max_version_gap);
  if (ttl) {
    const sim::TimeToLoss& t = e.time_to_loss;
    row += t.seconds ? fmt::format(" {:>10} {:>7}", Seconds(*t.seconds),
                                   t.speedup > 0 ? fmt::format("{:.2f}x", t.speedup) : "-")
                     : fmt::format(" {:>10} {:>7}", "-", "-");
  }
  if (!e.feasible) row += "  ! " + e.infeasible_reason;
  if (ttl && !e.time_to_loss.note.empty()) row += "  (" + e.time_to_loss.note + ")";
  return row + "\n";
}

std::string Header(bool ttl) {
  std::string h = fmt::format("{:>5}  {:<32} {:<34} {:>10} {:>9} {:>10} {:>10} {:>7} {:>5} {:>4}",
                              "rank", "method", "shape", "time/smpl", "smpl/s", "time/step",
                              "peak mem", "bubble", "delay", "gap");
  if (ttl) h += fmt::format(" {:>10} {:>7}", "to loss", "speedup");
  return h + "\n";
}

void Summary(std::ostringstream& out, const ir::Scenario& s, const sim::PlanResult& r) {
  const ir::PlanSpace& sp = r.space;
  out << "scenario: " << s.name << " (" << s.source << ")\n";
  out << "objective: " << ir::PlanObjectiveName(sp.objective);
  if (sp.target_loss) out << fmt::format(" (target test loss {})", *sp.target_loss);
  out << "; memory cap "
      << (r.memory_cap_bytes      ? sim::FormatBytes(*r.memory_cap_bytes) + " per device"
          : r.per_device_capacity ? std::string("each device's own capacity")
                                  : std::string("none"));
  if (sp.max_gradient_delay) out << "; gradient delay <= " << *sp.max_gradient_delay;
  if (sp.max_version_gap) out << "; version gap <= " << *sp.max_version_gap;
  out << "\n";
  out << fmt::format(
      "space: {} methods, D in {{{}}}, data-parallel copies R in {{{}}} (D x R <= {} devices), "
      "b in {{{}}} for a global batch of {}, recompute {{{}}}, {} partition rule(s)\n",
      sp.methods.size(), fmt::join(sp.stages, ","), fmt::join(sp.data_parallel, ","),
      s.pipeline.stages, fmt::join(sp.microbatch_sizes, ","), r.global_batch,
      fmt::join(sp.recompute, ","), sp.partitions.size());
  out << fmt::format("{} configurations: {} simulated, {} invalid, {} feasible; {:.2f} s\n",
                     r.enumerated, r.entries.size(), r.invalid, r.feasible, r.elapsed_s);
}

// With a target loss: the best configuration against the baseline, split into its factors.
void Decomposition(std::ostringstream& out, const ir::Scenario& s, const sim::PlanResult& r) {
  if (!r.baseline) return;
  const sim::PlanEntry& base = r.entries[*r.baseline];
  const sim::PlanEntry& best = r.entries.front();
  const sim::TimeToLoss& t = best.time_to_loss;
  if (!t.seconds || t.speedup <= 0) return;
  const double log_total = std::log(t.speedup);
  const double share =
      std::abs(log_total) > 1e-12 ? std::log(t.throughput_factor) / log_total : 0.5;
  out << fmt::format(
      "time to loss: best {} ({}) {} vs baseline {} ({}) {}: {:.2f}x = {:.2f}x throughput x "
      "{:.2f}x convergence ({:.0f}% of the log-speedup from throughput, {:.0f}% from "
      "convergence)\n",
      sim::ConfigLabel(best.config), ConfigShape(s, best.config), Seconds(*t.seconds),
      sim::ConfigLabel(base.config), ConfigShape(s, base.config),
      Seconds(*base.time_to_loss.seconds), t.speedup, t.throughput_factor, t.convergence_factor,
      100 * share, 100 * (1 - share));
}

}  // namespace

std::string PartitionName(const ir::Scenario& s, const ir::PlanConfig& c) {
  return s.model ? ir::PartitionRuleName(c.partition) : "explicit";
}

std::string PlanTable(const ir::Scenario& s, const sim::PlanResult& r,
                      const PlanReportOptions& options) {
  std::ostringstream out;
  Summary(out, s, r);
  const bool ttl = r.space.objective == ir::PlanObjective::kTimeToLoss;
  const sim::PlanEntry& best = r.entries.front();
  out << "\nbest: " << Row(s, best, ttl).substr(7);
  Decomposition(out, s, r);
  out << fmt::format("\nPareto front (time vs peak memory vs gradient delay): {} configurations\n",
                     r.pareto.size());
  out << Header(ttl);
  for (size_t i : r.pareto) out << Row(s, r.entries[i], ttl);
  const size_t top =
      std::min<size_t>(static_cast<size_t>(std::max(options.top, 0)), r.entries.size());
  out << fmt::format("\ntop {} by {}:\n", top, ir::PlanObjectiveName(r.space.objective));
  out << Header(ttl);
  for (size_t i = 0; i < top; ++i) out << Row(s, r.entries[i], ttl);
  out << "time/smpl = 1 / steady-state samples/s; time/step = per optimizer step of device 0; "
         "delay, gap = most\ngradient delay and version gap over devices (docs/metrics.md); "
         "! = infeasible; shape: D stages,\nM microbatches of b samples, recomputation, "
         "partition rule. --emit-scenario RANK FILE writes one.\n";
  return out.str();
}

std::string PlanJson(const ir::Scenario& s, const sim::PlanResult& r,
                     const PlanReportOptions& options) {
  const std::set<size_t> front(r.pareto.begin(), r.pareto.end());
  Json j;
  j["schema"] = kPlanSchemaName;
  j["schema_version"] = kPlanSchemaVersion;
  j["scenario"] = {{"name", s.name}, {"source", s.source}};
  j["objective"] = ir::PlanObjectiveName(r.space.objective);
  j["target_loss"] = r.space.target_loss ? Json(*r.space.target_loss) : Json(nullptr);
  j["constraints"] = {
      {"memory_cap_bytes", r.memory_cap_bytes ? Json(*r.memory_cap_bytes) : Json(nullptr)},
      {"per_device_capacity", r.per_device_capacity},
      {"max_gradient_delay",
       r.space.max_gradient_delay ? Json(*r.space.max_gradient_delay) : Json(nullptr)},
      {"max_version_gap",
       r.space.max_version_gap ? Json(*r.space.max_version_gap) : Json(nullptr)}};
  j["evaluated"] = r.entries.size();
  j["feasible"] = r.feasible;
  j["elapsed_s"] = r.elapsed_s;
  j["best"] = ConfigJson(s, r.entries.front(), front.count(0) != 0);
  j["pareto"] = Json::array();
  for (size_t i : r.pareto) j["pareto"].push_back(ConfigJson(s, r.entries[i], true));
  j["configs"] = Json::array();
  for (size_t i = 0; i < r.entries.size() && i < kMaxJsonConfigs; ++i) {
    j["configs"].push_back(ConfigJson(s, r.entries[i], front.count(i) != 0));
  }
  j["configs_truncated"] = r.entries.size() > kMaxJsonConfigs;
  j["enumerated"] = r.enumerated;
  j["invalid"] = r.invalid;
  j["space"] = SpaceJson(r);
  j["pruning"] = "none";
  if (!options.sweep.empty()) j["sweep"] = options.sweep;
  if (r.space.target_loss && !options.convergence.empty()) {
    j["time_to_loss"] = {
        {"convergence", options.convergence},
        {"baseline_rank", r.baseline ? Json(r.entries[*r.baseline].rank) : Json(nullptr)},
        {"rests_on",
         "steps to the target loss measured in the profile's job (its model and data "
         "set) times the time per optimizer step simulated on this scenario"}};
  }
  return j.dump(2) + "\n";
}

std::string PlanCsv(const ir::Scenario& s, const sim::PlanResult& r) {
  const std::set<size_t> front(r.pareto.begin(), r.pareto.end());
  std::ostringstream out;
  out << "rank,method,label,params,stages,microbatches,microbatch_size,data_parallel,recompute,"
         "partition,time_per_sample_s,samples_per_s,time_per_step_s,peak_memory_bytes,"
         "bubble_fraction,max_gradient_delay,max_version_gap,feasible,infeasible_reason,"
         "time_to_loss_s,pareto\r\n";
  for (size_t i = 0; i < r.entries.size(); ++i) {
    const Json c = ConfigJson(s, r.entries[i], front.count(i) != 0);
    std::string params;
    for (const auto& [k, v] : r.entries[i].config.params) {
      params += (params.empty() ? "" : ";") + k + "=" + v;
    }
    out << c["rank"] << "," << c["method"].get<std::string>() << ","
        << sim::CsvField(c["label"].get<std::string>()) << "," << sim::CsvField(params);
    for (const char* key :
         {"stages", "microbatches", "microbatch_size", "data_parallel", "recompute", "partition",
          "time_per_sample_s", "samples_per_s", "time_per_step_s", "peak_memory_bytes",
          "bubble_fraction", "max_gradient_delay", "max_version_gap", "feasible",
          "infeasible_reason", "time_to_loss_s", "pareto"}) {
      const Json& v = c[key];
      out << ","
          << (v.is_null()     ? ""
              : v.is_string() ? sim::CsvField(v.get<std::string>())
                              : v.dump());
    }
    out << "\r\n";
  }
  return out.str();
}

std::string SweepTable(const ir::Scenario& s, const sim::PlanResult& r) {
  std::map<std::pair<std::string, int32_t>, const sim::PlanEntry*> cell;
  std::vector<std::string> methods;
  for (const sim::PlanEntry& e : r.entries)
    cell[{sim::ConfigLabel(e.config), e.config.stages}] = &e;
  for (const ir::MethodGrid& g : r.space.methods) methods.push_back(g.name);
  std::ostringstream out;
  out << "scenario: " << s.name << " (" << s.source << "); every method at its default "
      << "parameters, M and b of the scenario, against D\n";
  const auto block = [&](const char* title, auto value) {
    out << "\n" << title << "\n" << fmt::format("{:<16}", "method");
    for (int32_t d : r.space.stages) out << fmt::format(" {:>10}", fmt::format("D={}", d));
    out << "\n";
    for (const std::string& m : methods) {
      out << fmt::format("{:<16}", m);
      for (int32_t d : r.space.stages) {
        const auto it = cell.find({m, d});
        out << fmt::format(" {:>10}", it == cell.end() ? "-" : value(*it->second));
      }
      out << "\n";
    }
  };
  block("throughput (samples/s, steady state)",
        [](const sim::PlanEntry& e) { return Rate(e.metrics.samples_per_s); });
  block("peak memory per device (! = above the cap)", [](const sim::PlanEntry& e) {
    return sim::FormatBytes(e.metrics.peak_memory_bytes) +
           (e.infeasible_reason.find("memory") != std::string::npos ? "!" : "");
  });
  block("gradient delay / version gap (max over devices)", [](const sim::PlanEntry& e) {
    return fmt::format("{}/{}", e.metrics.max_gradient_delay, e.metrics.max_version_gap);
  });
  out << "\n- = the configuration is invalid (e.g. more stages than layers, or fewer microbatches "
         "than the method needs)\n";
  return out.str();
}

}  // namespace pipecast::cli
