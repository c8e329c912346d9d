#include "sim/time_to_loss.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "common/generators.h"

namespace pipecast::sim {
namespace {

bool Asynchronous(const std::string& method) {
  const ir::MethodInfo* info = ir::FindMethod(method);
  return info != nullptr && info->asynchronous;
}

// The parameters with every default filled in; PACI's accumulation defaults to the
// microbatches per minibatch.
std::map<std::string, std::string> Normalized(const std::string& method,
                                              std::map<std::string, std::string> params,
                                              int32_t microbatches) {
  const ir::MethodInfo* info = ir::FindMethod(method);
  if (info == nullptr) return params;
  for (const ir::ParamInfo& p : info->params) {
    if (params.count(p.name) != 0) continue;
    if (!p.default_value.empty()) params[p.name] = p.default_value;
  }
  if (method == "paci" && params.count("accumulation") == 0) {
    params["accumulation"] = std::to_string(microbatches);
  }
  return params;
}

bool SameShare(double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(a, b); }

// The profile entry that predicts `config`'s convergence, and whether it is borrowed from
// another synchronous method; null with `note` set when none fits.
const ir::ConvergenceMethod* Match(const ir::ConvergenceProfile& profile,
                                   const ir::PlanConfig& config, double share, bool* borrowed,
                                   std::string* note) {
  const auto wanted = Normalized(config.method, config.params, config.microbatches);
  const ir::ConvergenceMethod* same_method = nullptr;
  for (const ir::ConvergenceMethod& m : profile.methods) {
    if (m.method != config.method) continue;
    same_method = &m;
    if (Normalized(m.method, m.params, profile.microbatches) != wanted) continue;
    if (SameShare(1.0 / m.steps_per_minibatch, share)) return &m;
    *note = fmt::format(
        "{} was measured stepping every {:.4g} of the global batch; this "
        "configuration steps every {:.4g}",
        m.label, 1.0 / m.steps_per_minibatch, share);
    return nullptr;
  }
  if (!Asynchronous(config.method)) {
    for (const ir::ConvergenceMethod& m : profile.methods) {
      if (!m.asynchronous && SameShare(1.0 / m.steps_per_minibatch, share)) {
        *borrowed = true;
        return &m;
      }
    }
  }
  if (note->empty()) {
    *note = same_method ? fmt::format("{} has no entry with these parameters", profile.source)
                        : fmt::format("{} has no entry for {}", profile.source, config.method);
  }
  return nullptr;
}

}  // namespace

std::optional<double> StepsToLoss(const ir::ConvergenceMethod& method, double target,
                                  std::string* note) {
  double sum = 0;
  for (const ir::ConvergenceSeed& seed : method.seeds) {
    std::optional<double> steps;
    double best = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < seed.points.size() && !steps; ++i) {
      const ir::ConvergencePoint& p = seed.points[i];
      best = std::min(best, p.test_loss);
      if (p.test_loss > target) continue;
      if (i == 0) {
        steps = p.steps;
        continue;
      }
      const ir::ConvergencePoint& q = seed.points[i - 1];
      const double t = (q.test_loss - target) / (q.test_loss - p.test_loss);
      steps = q.steps + t * (p.steps - q.steps);
    }
    if (!steps) {
      *note = fmt::format("{} seed {} did not reach test loss {} (best {:.4f} in {} steps)",
                          method.label, seed.seed, target, best, seed.points.back().steps);
      return std::nullopt;
    }
    sum += *steps;
  }
  return sum / static_cast<double>(method.seeds.size());
}

Status CheckProfile(const ir::ConvergenceProfile& profile, const ir::Scenario& scenario,
                    const ir::PlanSpace& space) {
  if (scenario.model && scenario.model->type != profile.model_type) {
    return InvalidArgument(fmt::format(
        "{}: plan.convergence {} was measured on a {} model ({}, job {}), but the scenario's "
        "model is a {}; measure convergence on a {} job (pipecast run JOB --convergence-out FILE)",
        ir::WherePlanKey(scenario, space, "convergence"), profile.source, profile.model_type,
        profile.model, profile.job_source, scenario.model->type, scenario.model->type));
  }
  if (!space.dataset.empty() && space.dataset != profile.dataset) {
    return InvalidArgument(fmt::format(
        "{}: plan.convergence {} was measured on the {} data set (job {}), not on {} as "
        "plan.dataset asks; measure it on {} or change plan.dataset",
        ir::WherePlanKey(scenario, space, "dataset"), profile.source, profile.dataset,
        profile.job_source, space.dataset, space.dataset));
  }
  return Status::Ok();
}

TimeToLoss PredictTimeToLoss(const ir::ConvergenceProfile& profile, const ir::PlanConfig& config,
                             const PlanMetrics& metrics, int64_t global_batch, double target) {
  TimeToLoss t;
  const double share = metrics.samples_per_step / static_cast<double>(global_batch);
  bool borrowed = false;
  const ir::ConvergenceMethod* m = Match(profile, config, share, &borrowed, &t.note);
  if (m == nullptr) return t;
  t.convergence_from = m->label;
  const std::optional<double> steps = StepsToLoss(*m, target, &t.note);
  if (!steps) return t;
  t.steps_to_loss = *steps;
  t.seconds = *steps * metrics.time_per_step_s;
  if (borrowed) {
    t.note = fmt::format("steps of {} (synchronous methods compute the same updates)", m->label);
  } else if (m->asynchronous && profile.stages != config.stages) {
    t.note = fmt::format("measured at D={}, predicted at D={}: the staleness differs",
                         profile.stages, config.stages);
  }
  return t;
}

std::optional<size_t> CompareWithBaseline(std::vector<PlanEntry>* entries) {
  std::optional<size_t> base;
  for (size_t i = 0; i < entries->size() && !base; ++i) {
    const PlanEntry& e = (*entries)[i];
    if (e.feasible && e.time_to_loss.seconds && !Asynchronous(e.config.method)) base = i;
  }
  if (!base) return base;
  const PlanEntry& b = (*entries)[*base];
  const double base_samples = b.time_to_loss.steps_to_loss * b.metrics.samples_per_step;
  for (PlanEntry& e : *entries) {
    TimeToLoss& t = e.time_to_loss;
    if (!t.seconds) continue;
    t.speedup = *b.time_to_loss.seconds / *t.seconds;
    t.throughput_factor = b.metrics.time_per_sample_s / e.metrics.time_per_sample_s;
    t.convergence_factor = base_samples / (t.steps_to_loss * e.metrics.samples_per_step);
  }
  return base;
}

}  // namespace pipecast::sim
