// Simulating, checking and ranking the configurations of a plan (sim/planner.h).
#include "sim/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "common/compact_program.h"
#include "common/generators.h"
#include "sim/cost_builder.h"
#include "sim/engine.h"
#include "sim/memory_estimate.h"
#include "sim/report.h"
#include "sim/time_to_loss.h"

namespace pipecast::sim {
namespace {

// Simulates configurations, building each cost model once: configurations that differ only in
// the method share it.
class Evaluator {
 public:
  Evaluator(const ir::Scenario& scenario, int64_t budget) : scenario_(scenario), budget_(budget) {}
  Result<PlanMetrics> Evaluate(const ir::PlanConfig& config);

 private:
  struct Costs {
    Status status;
    CostModel model;
    std::string layers;
  };
  // The costs of a program's virtual stages, by its placement (placement[stage] = device).
  const Costs& CostsFor(const ir::PlanConfig& config, const std::vector<int32_t>& placement);

  const ir::Scenario& scenario_;
  int64_t budget_;
  std::map<std::tuple<int32_t, std::vector<int32_t>, int32_t, bool, ir::PartitionRule>, Costs>
      cache_;
};

const Evaluator::Costs& Evaluator::CostsFor(const ir::PlanConfig& c,
                                            const std::vector<int32_t>& placement) {
  const auto key =
      std::make_tuple(c.stages, placement, c.microbatch_size, c.recompute, c.partition);
  const auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  const ir::Scenario s = ir::ConfiguredScenario(scenario_, c);
  Costs costs;
  Result<CostModel> model = BuildCostModel(s, placement);
  if (model.ok()) {
    costs.model = std::move(*model);
    std::vector<std::string> layers = DeviceLayers(s, placement);
    for (const std::string& l : layers) costs.layers += (costs.layers.empty() ? "" : " | ") + l;
  } else {
    costs.status = model.status();
  }
  return cache_.emplace(key, std::move(costs)).first->second;
}

// The device closest to (or furthest above) its own capacity.
void CheckCapacities(const SimResult& r, const CostModel& cost, PlanMetrics* m) {
  double tightest = -1;
  for (const StageMetrics& st : r.stages) {
    m->over_capacity = m->over_capacity || st.over_memory;
    const int64_t capacity = cost.device(st.stage).memory_bytes;
    if (capacity <= 0) continue;
    const double share = static_cast<double>(st.peak_memory_bytes) / static_cast<double>(capacity);
    if (share > tightest) {
      tightest = share;
      m->tightest_device = st.stage;
      m->tightest_peak_bytes = st.peak_memory_bytes;
      m->tightest_capacity_bytes = capacity;
    }
  }
}

PlanMetrics Summarise(const SimResult& r, const CostModel& cost, const std::string& layers) {
  PlanMetrics m;
  CheckCapacities(r, cost, &m);
  m.makespan = r.makespan;
  m.samples = r.samples;
  m.samples_per_s = r.steady_throughput_samples_per_s;
  m.time_per_sample_s = m.samples_per_s > 0 ? 1.0 / m.samples_per_s : 0;
  m.bubble_fraction = r.bubble.idle_fraction;
  for (const StageMetrics& st : r.stages) {
    m.peak_memory_bytes = std::max(m.peak_memory_bytes, st.peak_memory_bytes);
    m.max_gradient_delay = std::max(m.max_gradient_delay, st.versions.delay_max);
    m.max_version_gap = std::max(m.max_version_gap, st.versions.gap_max);
  }
  m.steps = r.stages.empty() ? 0 : r.stages[0].versions.steps;
  m.samples_per_step = m.steps > 0 ? static_cast<double>(r.samples) / m.steps : 0;
  m.time_per_step_s = m.time_per_sample_s * m.samples_per_step;
  m.layers = layers;
  return m;
}

Result<PlanMetrics> Evaluator::Evaluate(const ir::PlanConfig& c) {
  ir::GenerateOptions o;
  o.method = c.method;
  o.devices = c.stages;
  o.microbatches = c.microbatches;
  o.minibatches = c.minibatches;
  o.microbatch_size = c.microbatch_size;
  o.params = c.params;
  o.data_parallel = c.data_parallel;
  Result<ir::ProgramSize> size = ir::SizeOf(o);
  if (!size.ok()) return size.status();
  // Copies (data parallelism, AvgPipe's pipelines) must fit the scenario's devices.
  if (size->devices > scenario_.pipeline.stages) {
    return InvalidArgument(fmt::format("needs {} devices, more than the scenario's {}",
                                       size->devices, scenario_.pipeline.stages));
  }
  const int64_t need = EstimateSimulationBytes(*size, {});
  if (need > budget_) {
    return InvalidArgument(
        fmt::format("needs about {} to simulate, more than the limit of {} "
                    "(--max-memory)",
                    FormatBytes(need), FormatBytes(budget_)));
  }
  // The engine's fast pass reads the compact encoding; programs whose weight copies are tracked
  // run expanded anyway (as `pipecast sim` does). The costs follow the program's placement.
  std::optional<Result<SimResult>> result;
  const Costs* costs = nullptr;
  if (!size->tracked_copies) {
    if (Result<ir::CompactProgram> compact = ir::GenerateCompact(o); compact.ok()) {
      costs = &CostsFor(c, compact->header.stage_placement());
      if (!costs->status.ok()) return costs->status;
      result = Simulate(*compact, costs->model);
    }
  }
  if (!result) {
    Result<ir::Program> program = ir::Generate(o);
    if (!program.ok()) return program.status();
    costs = &CostsFor(c, program->stage_placement());
    if (!costs->status.ok()) return costs->status;
    result = Simulate(*program, costs->model, {.record_timeline = false});
  }
  if (!result->ok()) return result->status();
  if ((*result)->makespan == 0) return InvalidArgument("every action takes 0 ns");
  return Summarise(**result, costs->model, costs->layers);
}

// The objective's value: time to loss when asked for (configurations without a prediction after
// those with one), else time per sample.
std::tuple<bool, bool, double, int64_t, int32_t, int64_t> RankKey(const PlanEntry& e,
                                                                  bool time_to_loss) {
  const bool predicted = e.time_to_loss.seconds.has_value();
  const double time =
      time_to_loss && predicted ? *e.time_to_loss.seconds : e.metrics.time_per_sample_s;
  return {!e.feasible,
          time_to_loss && !predicted,
          time,
          e.metrics.peak_memory_bytes,
          e.metrics.max_gradient_delay,
          e.index};
}

// Checks one entry against the memory cap (or, `per_device`, each device's own capacity) and the
// staleness limits.
void CheckConstraints(const ir::PlanSpace& space, std::optional<int64_t> cap, bool per_device,
                      PlanEntry* e) {
  std::string reason;
  const auto add = [&](const std::string& r) { reason += (reason.empty() ? "" : "; ") + r; };
  if (cap && e->metrics.peak_memory_bytes > *cap) {
    add(fmt::format("peak memory {} is above the cap of {}",
                    FormatBytes(e->metrics.peak_memory_bytes), FormatBytes(*cap)));
  }
  if (per_device && e->metrics.over_capacity) {
    add(fmt::format("peak memory {} of device {} is above its capacity of {}",
                    FormatBytes(e->metrics.tightest_peak_bytes), e->metrics.tightest_device,
                    FormatBytes(e->metrics.tightest_capacity_bytes)));
  }
  if (space.max_gradient_delay && e->metrics.max_gradient_delay > *space.max_gradient_delay) {
    add(fmt::format("gradient delay {} is above plan.max_gradient_delay {}",
                    e->metrics.max_gradient_delay, *space.max_gradient_delay));
  }
  if (space.max_version_gap && e->metrics.max_version_gap > *space.max_version_gap) {
    add(fmt::format("version gap {} is above plan.max_version_gap {}", e->metrics.max_version_gap,
                    *space.max_version_gap));
  }
  e->feasible = reason.empty();
  e->infeasible_reason = reason;
}

// Whether the scenario's devices have capacities that differ (then no one cap describes them).
bool CapacitiesDiffer(const ir::Scenario& s) {
  return std::any_of(s.devices.begin(), s.devices.end(), [&](const ir::DeviceHardware& h) {
    return h.memory_bytes != s.devices.front().memory_bytes;
  });
}

Status CheckObjective(const ir::Scenario& s, const ir::PlanSpace& space,
                      const PlanOptions& options) {
  if (options.convergence != nullptr) {
    PIPECAST_RETURN_IF_ERROR(CheckProfile(*options.convergence, s, space));
  }
  if (space.objective != ir::PlanObjective::kTimeToLoss) return Status::Ok();
  if (!space.target_loss) {
    return InvalidArgument(fmt::format(
        "{}: time_to_loss needs a target loss: add plan.target_loss (a test loss, e.g. 2.1) or "
        "--target-loss",
        ir::WherePlanKey(s, space, "objective")));
  }
  if (options.convergence == nullptr) {
    return InvalidArgument(fmt::format(
        "{}: time_to_loss needs measured convergence: add plan.convergence: FILE (written by "
        "pipecast run JOB --convergence-out FILE) or --convergence FILE",
        ir::WherePlanKey(s, space, "objective")));
  }
  return Status::Ok();
}

// Time to loss ranks only configurations the profile predicts: at least one feasible one must be.
Status CheckPredicted(const ir::Scenario& s, const PlanResult& r) {
  const PlanEntry* example = nullptr;
  for (const PlanEntry& e : r.entries) {
    if (e.feasible && e.time_to_loss.seconds) return Status::Ok();
    if (e.feasible && example == nullptr) example = &e;
  }
  if (example == nullptr) return Status::Ok();  // nothing feasible: DescribeInfeasible says why
  return InvalidArgument(fmt::format(
      "{}: no feasible configuration has a time-to-loss prediction (for example {}: {}); "
      "measure the methods of the space (pipecast run JOB --methods ... --convergence-out FILE) "
      "or raise plan.target_loss",
      ir::WherePlanKey(s, r.space, "convergence"), ConfigLabel(example->config),
      example->time_to_loss.note));
}

}  // namespace

Result<PlanMetrics> EvaluateConfig(const ir::Scenario& scenario, const ir::PlanConfig& config,
                                   int64_t memory_budget) {
  Evaluator evaluator(scenario, memory_budget);
  return evaluator.Evaluate(config);
}

std::string ConfigLabel(const ir::PlanConfig& config) {
  MethodRun run;
  run.method = config.method;
  run.params = config.params;
  return MethodLabel(run);
}

std::vector<size_t> ParetoFront(const std::vector<PlanEntry>& entries, bool time_to_loss) {
  struct Point {
    double time;
    int64_t memory;
    int32_t delay;
    size_t index;
  };
  std::vector<Point> points;
  for (size_t i = 0; i < entries.size(); ++i) {
    const PlanEntry& e = entries[i];
    if (!e.feasible || (time_to_loss && !e.time_to_loss.seconds)) continue;
    const double t = time_to_loss ? *e.time_to_loss.seconds : e.metrics.time_per_sample_s;
    points.push_back({t, e.metrics.peak_memory_bytes, e.metrics.max_gradient_delay, i});
  }
  // In lexicographic order a point's dominators (and its equals) all come before it, and
  // dominance is transitive: comparing with the front found so far is enough.
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
    return std::tie(a.time, a.memory, a.delay, a.index) <
           std::tie(b.time, b.memory, b.delay, b.index);
  });
  std::vector<Point> front;
  for (const Point& p : points) {
    const bool covered = std::any_of(front.begin(), front.end(), [&](const Point& f) {
      return f.time <= p.time && f.memory <= p.memory && f.delay <= p.delay;
    });
    if (!covered) front.push_back(p);
  }
  std::vector<size_t> out;
  for (const Point& p : front) out.push_back(p.index);
  std::sort(out.begin(), out.end());
  return out;
}

Result<PlanResult> RunPlan(const ir::Scenario& scenario, const ir::PlanSpace& space,
                           const PlanOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  PlanResult r;
  r.space = space;
  PIPECAST_RETURN_IF_ERROR(CheckObjective(scenario, space, options));
  Result<std::vector<ir::PlanConfig>> configs = EnumerateSpace(scenario, &r.space, &r.global_batch);
  if (!configs.ok()) return configs.status();
  r.per_device_capacity = !space.memory_cap_bytes && CapacitiesDiffer(scenario);
  const int64_t cap = space.memory_cap_bytes.value_or(
      r.per_device_capacity ? 0 : ir::DeviceMemoryBytes(scenario, 0));
  if (cap > 0) r.memory_cap_bytes = cap;
  r.enumerated = static_cast<int64_t>(configs->size());
  Evaluator evaluator(scenario, options.memory_budget);
  for (size_t i = 0; i < configs->size(); ++i) {
    if (options.progress && i % 64 == 0) options.progress(static_cast<int64_t>(i), r.enumerated);
    const ir::PlanConfig& c = (*configs)[i];
    Result<PlanMetrics> m = evaluator.Evaluate(c);
    if (!m.ok()) {
      if (r.invalid++ == 0) r.first_invalid = ConfigLabel(c) + ": " + m.status().message();
      continue;
    }
    PlanEntry e{c, static_cast<int64_t>(i), 0, std::move(*m)};
    CheckConstraints(r.space, r.memory_cap_bytes, r.per_device_capacity, &e);
    if (options.convergence && space.target_loss) {
      e.time_to_loss =
          PredictTimeToLoss(*options.convergence, c, e.metrics, r.global_batch, *space.target_loss);
    }
    r.feasible += e.feasible;
    r.entries.push_back(std::move(e));
  }
  if (options.progress) options.progress(r.enumerated, r.enumerated);
  if (r.entries.empty()) {
    return InvalidArgument(fmt::format(
        "{}: the search space is empty: none of its {} configurations can be simulated (for "
        "example {}); widen plan.stages, plan.microbatch_sizes or plan.methods",
        scenario.source, r.enumerated, r.first_invalid));
  }
  const bool ttl = space.objective == ir::PlanObjective::kTimeToLoss;
  if (ttl) PIPECAST_RETURN_IF_ERROR(CheckPredicted(scenario, r));
  std::sort(r.entries.begin(), r.entries.end(), [&](const PlanEntry& a, const PlanEntry& b) {
    return RankKey(a, ttl) < RankKey(b, ttl);
  });
  for (size_t i = 0; i < r.entries.size(); ++i) r.entries[i].rank = static_cast<int32_t>(i + 1);
  r.baseline = CompareWithBaseline(&r.entries);
  r.pareto = ParetoFront(r.entries, ttl);
  r.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace pipecast::sim
