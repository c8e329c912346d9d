// The report's recommendation and summary table (report_sections.h). With a plan, the plan's
// best configuration and why; otherwise the fastest method that fits in memory (simulated
// steady-state throughput, else measured) whose measured accuracy, where runs measured it, is
// within the tolerance of the best.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cli/report_sections.h"

namespace pipecast::cli::report {
namespace {

bool Synchronous(const PlanConfig& c) {
  return c.max_gradient_delay == 0 && c.max_version_gap == 0;
}

std::string ConfigShape(const PlanConfig& c) {
  return fmt::format("{} stages, {} microbatches of {}, recompute {}{}", c.stages, c.microbatches,
                     c.microbatch_size, c.recompute ? "on" : "off",
                     c.partition.empty() ? "" : ", partition " + c.partition);
}

std::string Constraints(const PlanInput& p) {
  std::string s = p.memory_cap_bytes
                      ? "a memory cap of " + Bytes(*p.memory_cap_bytes) + " per device"
                      : "no memory cap";
  if (p.max_gradient_delay)
    s += fmt::format(" and a gradient delay of at most {}", *p.max_gradient_delay);
  return s;
}

Recommendation FromPlan(const PlanInput& p) {
  const PlanConfig& b = p.best;
  Recommendation r;
  r.choice = b.label;
  r.headline = fmt::format("Recommended: {} ({}), {} per sample", b.label, ConfigShape(b),
                           Seconds(b.time_per_sample_s));
  const std::string objective = p.objective == "time_to_loss" && p.target_loss
                                    ? fmt::format("time to a test loss of {:.4g}", *p.target_loss)
                                    : "time per sample";
  r.reasons.push_back(fmt::format(
      "The plan ({}) evaluated {} configurations, {} of them feasible under {}, and ranks this one "
      "first by {}: {} per sample ({} samples/s), peak memory {}, bubble {:.1f}%.",
      p.file, p.evaluated, p.feasible, Constraints(p), objective, Seconds(b.time_per_sample_s),
      Rate(b.samples_per_s), Bytes(static_cast<double>(b.peak_memory_bytes)),
      b.bubble_fraction * 100));
  if (b.time_to_loss_s) {
    r.reasons.push_back("Predicted time to the target loss: " + Seconds(*b.time_to_loss_s) + ".");
  }
  r.reasons.push_back(Synchronous(b) ? "It is synchronous: no weight is stale."
                                     : fmt::format("Its staleness: gradient delay up to {}, "
                                                   "version gap up to {} optimizer steps.",
                                                   b.max_gradient_delay, b.max_version_gap));
  std::optional<PlanConfig> sync;
  for (const auto* list : {&p.pareto, &p.configs}) {
    for (const PlanConfig& c : *list) {
      if (c.feasible && Synchronous(c) && (!sync || c.time_per_sample_s < sync->time_per_sample_s))
        sync = c;
    }
  }
  if (!Synchronous(b) && sync && b.time_per_sample_s > 0) {
    r.reasons.push_back(fmt::format(
        "The fastest synchronous configuration, {} ({}), takes {:.2f}x as long per sample with "
        "no staleness.",
        sync->label, ConfigShape(*sync), sync->time_per_sample_s / b.time_per_sample_s));
  }
  r.reasons.push_back(
      fmt::format("The Pareto front (section 7) has {} configurations trading "
                  "time against memory and staleness.",
                  p.pareto.size()));
  return r;
}

// A method's speed for the ranking: simulated steady-state throughput, else measured.
double Speed(const ReportModel& m, const MethodView& v) {
  if (v.sim != nullptr) return v.sim->steady_throughput;
  if (!v.runs.empty()) return MeasuredSamplesPerS(v, m.samples_per_minibatch).mean;
  return 0;
}

bool Stale(const MethodView& v) {
  if (v.sim != nullptr) return v.sim->delay_max() > 0 || v.sim->gap_max() > 0;
  for (const RunResult* r : v.runs)
    for (const RunStage& s : r->stages)
      if (s.staleness.delay_max > 0 || s.staleness.gap_max > 0) return true;
  return false;
}

std::string StalenessSentence(const MethodView& v) {
  if (!Stale(v)) return "It is synchronous: no weight is stale.";
  if (v.sim == nullptr) return "Its weights are stale (see section 5).";
  return fmt::format(
      "Its staleness: gradient delay up to {}, version gap up to {} optimizer steps "
      "(section 5).",
      v.sim->delay_max(), v.sim->gap_max());
}

// The best mean final accuracy over the methods that have runs, and whose it is.
const MethodView* MostAccurate(const ReportModel& m) {
  const MethodView* best = nullptr;
  for (const MethodView& v : m.methods) {
    if (v.runs.empty()) continue;
    if (best == nullptr || FinalAccuracy(v).mean > FinalAccuracy(*best).mean) best = &v;
  }
  return best;
}

// The methods by speed, the recommended one (null if none qualifies) and the faster ones ruled
// out, with why.
struct Ranking {
  std::vector<const MethodView*> order;
  const MethodView* choice = nullptr;
  const MethodView* accurate = nullptr;
  std::vector<std::string> ruled_out;
  size_t fitting = 0;
};

// Why a simulated method does not fit: its peak against the device's capacity, or, for devices
// of different capacities, the first device above its own.
std::string OverMemory(const ReportModel& m, const MethodView& v) {
  if (m.capacities_differ) {
    for (const SimStage& st : v.sim->stages) {
      if (!st.over_memory) continue;
      return fmt::format("{} (needs {} on dev {}, more than its {})", v.label,
                         Bytes(static_cast<double>(st.peak_memory_bytes)), st.stage,
                         Bytes(static_cast<double>(st.memory_capacity_bytes)));
    }
  }
  return fmt::format("{} (needs {}, more than the device's {})", v.label,
                     Bytes(static_cast<double>(v.sim->peak_memory())),
                     Bytes(static_cast<double>(m.device_memory_bytes)));
}

Ranking Rank(const ReportModel& m, const PageOptions& o) {
  Ranking k;
  for (const MethodView& v : m.methods) k.order.push_back(&v);
  std::stable_sort(k.order.begin(), k.order.end(), [&](const MethodView* a, const MethodView* b) {
    return Speed(m, *a) > Speed(m, *b);
  });
  k.accurate = MostAccurate(m);
  for (const MethodView* v : k.order) k.fitting += v->sim == nullptr || !v->sim->over_memory();
  for (const MethodView* v : k.order) {
    if (v->sim != nullptr && v->sim->over_memory()) {
      k.ruled_out.push_back(OverMemory(m, *v));
      continue;
    }
    const MethodView* best = k.accurate;
    if (!v->runs.empty() && best != nullptr &&
        FinalAccuracy(*best).mean - FinalAccuracy(*v).mean > o.accuracy_tolerance) {
      k.ruled_out.push_back(
          fmt::format("{} (final accuracy {}, more than {:.1f} points below {}'s {})", v->label,
                      PercentWithSpread(FinalAccuracy(*v)), o.accuracy_tolerance * 100, best->label,
                      PercentWithSpread(FinalAccuracy(*best))));
      continue;
    }
    k.choice = v;
    break;
  }
  return k;
}

// Why the choice: fastest of those that qualify, and by how much over the next.
std::string WhyFastest(const ReportModel& m, const Ranking& k, const PageOptions& o) {
  const bool measured = m.inputs->sims.empty();
  std::string why =
      measured ? fmt::format("The fastest of the {} methods trained", k.order.size())
               : fmt::format("The fastest of the {} methods that fit in memory", k.fitting);
  if (k.accurate != nullptr) {
    why += fmt::format(" that come within {:.1f} points of the best final accuracy",
                       o.accuracy_tolerance * 100);
  }
  if (measured) {
    why +=
        ", by the samples/s measured on the machine that ran the job (not a cluster's: report "
        "the runs with the simulation of the job's profile for that)";
  }
  why += ".";
  const auto it = std::find(k.order.begin(), k.order.end(), k.choice);
  if (it + 1 != k.order.end() && Speed(m, **(it + 1)) > 0) {
    const MethodView& next = **(it + 1);
    const double ratio = Speed(m, *k.choice) / Speed(m, next);
    why += ratio < 1.005 ? fmt::format(
                               " It is as fast as the next, {} ({} samples/s), which "
                               "comes later in the inputs.",
                               next.label, Rate(Speed(m, next)))
                         : fmt::format(" It runs {:.2f}x as fast as the next, {} ({} samples/s).",
                                       ratio, next.label, Rate(Speed(m, next)));
  }
  return why;
}

std::string AccuracySentence(const MethodView& choice, const MethodView* accurate) {
  if (!choice.runs.empty()) {
    return fmt::format("Measured final test accuracy {} over {} seed{} (best: {}, {}).",
                       PercentWithSpread(FinalAccuracy(choice)), choice.runs.size(),
                       choice.runs.size() == 1 ? "" : "s", accurate->label,
                       PercentWithSpread(FinalAccuracy(*accurate)));
  }
  if (!Stale(choice)) return "";
  return "Its accuracy was not measured (no run of it among the inputs): train it (pipecast run "
         "JOB --methods " +
         choice.sim->method + ") before relying on its stale weights.";
}

}  // namespace

Recommendation Recommend(const ReportModel& m, const PageOptions& o) {
  if (m.plan != nullptr) return FromPlan(*m.plan);
  const Ranking k = Rank(m, o);
  Recommendation r;
  if (k.choice == nullptr) {
    r.headline = "No method qualifies: every one is over memory or too inaccurate";
    if (!k.ruled_out.empty()) r.reasons.push_back("Ruled out: " + Join(k.ruled_out, "; ") + ".");
    return r;
  }
  r.choice = k.choice->label;
  r.headline =
      fmt::format("Recommended: {}, {} samples/s ({})", k.choice->label, Rate(Speed(m, *k.choice)),
                  k.choice->sim != nullptr ? "simulated, steady state" : "measured");
  r.reasons.push_back(WhyFastest(m, k, o));
  r.reasons.push_back(StalenessSentence(*k.choice));
  if (std::string acc = AccuracySentence(*k.choice, k.accurate); !acc.empty()) {
    r.reasons.push_back(acc);
  }
  if (!k.ruled_out.empty()) {
    r.reasons.push_back("Faster but ruled out: " + Join(k.ruled_out, "; ") + ".");
  }
  return r;
}

namespace {

// One row per method: what the simulation and the runs say, the recommended one marked.
Table MethodsTable(const ReportModel& m, const std::string& choice) {
  const bool sims = !m.inputs->sims.empty(), runs = !m.inputs->runs.empty();
  Table t;
  t.header = {"method"};
  if (sims) {
    for (const char* h :
         {"samples/s (steady)", "makespan", "idle", "peak memory", "fits", "max delay", "max gap"})
      t.header.push_back(h);
  }
  if (runs) {
    for (const char* h : {"seeds", "final accuracy", "final test loss", "measured samples/s"})
      t.header.push_back(h);
  }
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = false;
  for (const MethodView& v : m.methods) {
    std::vector<std::string> row = {v.label};
    if (sims && v.sim != nullptr) {
      const SimMethod& s = *v.sim;
      const std::vector<std::string> cells = {Rate(s.steady_throughput),
                                              Seconds(s.makespan_s),
                                              fmt::format("{:.1f}%", s.idle_fraction * 100),
                                              Bytes(static_cast<double>(s.peak_memory())),
                                              s.over_memory() ? "no" : "yes",
                                              std::to_string(s.delay_max()),
                                              std::to_string(s.gap_max())};
      row.insert(row.end(), cells.begin(), cells.end());
    } else if (sims) {
      row.insert(row.end(), 7, "-");
    }
    if (runs && !v.runs.empty()) {
      const Spread loss = FinalTestLoss(v);
      const std::vector<std::string> cells = {
          std::to_string(v.runs.size()), PercentWithSpread(FinalAccuracy(v), 2),
          loss.n > 1 ? fmt::format("{:.4f} ± {:.4f}", loss.mean, loss.sd)
                     : fmt::format("{:.4f}", loss.mean),
          Rate(MeasuredSamplesPerS(v, m.samples_per_minibatch).mean)};
      row.insert(row.end(), cells.begin(), cells.end());
    } else if (runs) {
      row.insert(row.end(), 4, "-");
    }
    t.marked.push_back(v.label == choice);
    t.rows.push_back(std::move(row));
  }
  if (sims) {
    const std::string capacity =
        m.capacities_differ ? std::string("each device's own capacity")
        : m.device_memory_bytes > 0
            ? "the device's " + Bytes(static_cast<double>(m.device_memory_bytes))
            : std::string("the device's memory (the scenario gives none: unlimited)");
    t.notes.push_back(
        "samples/s: simulated, once the pipeline is full; idle: 1 - busy / "
        "(devices x makespan); fits: peak memory within " +
        capacity + "; delay, gap: most optimizer steps over any device (docs/metrics.md).");
  }
  if (runs) {
    t.notes.push_back(
        "final accuracy and loss: test set, mean ± sample standard deviation over "
        "the seeds; measured samples/s: this machine's executor, not the cluster.");
  }
  return t;
}

}  // namespace

Section SummarySection(const ReportModel& m, const Recommendation& r) {
  Section s = Titled("summary", "Summary and recommendation");
  s.paragraphs = r.reasons;
  if (!m.methods.empty()) s.tables.push_back(MethodsTable(m, r.choice));
  if (m.plan != nullptr && !m.methods.empty()) {
    s.paragraphs.push_back(
        "The table lists the methods simulated or trained in the other inputs; "
        "the recommendation above is the plan's.");
  }
  return s;
}

}  // namespace pipecast::cli::report
