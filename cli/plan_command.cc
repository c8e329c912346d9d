// `pipecast plan`: search a scenario's configurations (method and parameters, depth, microbatch
// count and size for a fixed global batch, recomputation, partition) for the best under a
// memory cap and staleness limits; print the best, the Pareto front and the ranking, or write the
// scenario of a chosen configuration. `--sweep stages` tabulates every method against D.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/io.h"
#include "cli/plan_report.h"
#include "cli/sim_runs.h"
#include "common/convergence.h"
#include "common/input_file.h"
#include "common/job_writer.h"
#include "common/plan_space.h"
#include "common/scenario_writer.h"
#include "common/units.h"
#include "sim/planner.h"

namespace pipecast::cli {
namespace {

int Fail(const Status& s) {
  std::cerr << "pipecast plan: " << s.message() << "\n";
  return kExitError;
}

// The scenario and its plan section, read from one text.
struct Planned {
  ir::Scenario scenario;
  ir::PlanSpace space;
};

Result<Planned> LoadPlanned(const std::string& path) {
  std::string text, name;
  if (path.empty()) {
    text = std::string(ir::DefaultScenarioYaml());
    name = "<built-in default.yaml>";
  } else {
    Result<std::string> read = ir::ReadInputFile(path, "scenario file");
    if (!read.ok()) return read.status();
    text = std::move(*read);
    name = ir::InputName(path);
  }
  Result<ir::Scenario> scenario = ir::ParseScenario(text, name);
  if (!scenario.ok()) return scenario.status();
  Result<std::optional<ir::PlanSpace>> space = ir::ParsePlanSection(text, name);
  if (!space.ok()) return space.status();
  return Planned{std::move(*scenario), space->value_or(ir::PlanSpace{})};
}

// The flags override the plan section, key by key.
Status ApplyFlags(const PlanOptions& o, ir::PlanSpace* space) {
  if (!o.objective.empty()) {
    space->objective = o.objective == "time_to_loss" ? ir::PlanObjective::kTimeToLoss
                                                     : ir::PlanObjective::kTimePerSample;
    space->positions.erase("objective");
  }
  if (o.target_loss > 0) space->target_loss = o.target_loss;
  if (!o.convergence.empty()) {
    space->convergence = o.convergence;
    space->positions.erase("convergence");
  }
  if (!o.memory_cap.empty()) {
    Result<int64_t> cap = ir::ParseBytes(o.memory_cap);
    if (o.memory_cap != "none" && (!cap.ok() || *cap <= 0)) {
      return InvalidArgument("--memory-cap: expected a size such as 40GiB, or none, got '" +
                             o.memory_cap + "'");
    }
    space->memory_cap_bytes = o.memory_cap == "none" ? 0 : *cap;
    space->positions.erase("memory_cap");
  }
  if (o.max_gradient_delay >= 0) space->max_gradient_delay = o.max_gradient_delay;
  if (o.max_version_gap >= 0) space->max_version_gap = o.max_version_gap;
  if (!o.stages.empty()) space->stages = o.stages;
  if (!o.microbatch_sizes.empty()) space->microbatch_sizes = o.microbatch_sizes;
  if (!o.data_parallel.empty()) space->data_parallel = o.data_parallel;
  if (o.global_batch > 0) space->global_batch = o.global_batch;
  if (!o.recompute.empty()) {
    space->recompute = o.recompute == "both" ? std::vector<bool>{false, true}
                       : o.recompute == "on" ? std::vector<bool>{true}
                                             : std::vector<bool>{false};
  }
  if (!o.methods.empty()) {
    space->methods.clear();
    for (const std::string& m : o.methods) {
      Result<ir::MethodSpec> spec = ParseMethodArg(m);
      if (!spec.ok()) return spec.status();
      ir::MethodGrid grid{spec->name, {}, true, 0};
      for (const auto& [k, v] : spec->params) grid.params[k] = {v};
      space->methods.push_back(std::move(grid));
    }
  }
  return Status::Ok();
}

// `--sweep stages`: every method at its default parameters, the scenario's M and b, against D.
Status ApplySweep(const ir::Scenario& s, const std::string& sweep, ir::PlanSpace* space) {
  if (sweep != "stages") return InvalidArgument("--sweep: only 'stages' is supported");
  if (!s.model) {
    return InvalidArgument(s.source +
                           ": --sweep stages needs a model (model: and cluster:); "
                           "explicit per-stage costs describe one pipeline depth");
  }
  if (space->stages.empty()) {
    // With per-device hardware, D stages run on the first D devices: at most that many.
    const int32_t most =
        s.devices.empty() ? s.model->layers + 2 : std::min(s.model->layers + 2, s.pipeline.stages);
    for (int32_t d = 1; d <= most; d *= 2) space->stages.push_back(d);
  }
  space->microbatch_sizes = {s.pipeline.microbatch_size};
  space->global_batch = static_cast<int64_t>(s.pipeline.microbatches) * s.pipeline.microbatch_size;
  space->recompute = {s.model->recompute};
  space->partitions = {s.model->partition};
  if (space->methods.empty()) {
    for (const ir::MethodInfo& m : ir::Methods()) space->methods.push_back({m.name, {}, false, 0});
  }
  for (ir::MethodGrid& g : space->methods) g.default_grids = false;
  return Status::Ok();
}

// A terminal progress line, rewritten in place; nothing when piped or quiet.
std::function<void(int64_t, int64_t)> Progress(bool on) {
  if (!on) return nullptr;
  return [](int64_t done, int64_t total) {
    std::cerr << "\rpipecast plan: " << done << "/" << total << " configurations simulated"
              << (done == total ? "\x1b[K\r\x1b[K" : "") << std::flush;
  };
}

// The convergence profile, relative to the scenario file when named in its plan section.
Result<std::optional<ir::ConvergenceProfile>> LoadProfile(const std::string& scenario_path,
                                                          const PlanOptions& o,
                                                          const ir::PlanSpace& space) {
  if (space.convergence.empty()) return std::optional<ir::ConvergenceProfile>();
  std::string path = space.convergence;
  if (o.convergence.empty() && !scenario_path.empty() && scenario_path != "-" &&
      std::filesystem::path(path).is_relative()) {
    path = (std::filesystem::path(scenario_path).parent_path() / path).string();
  }
  Result<ir::ConvergenceProfile> p = ir::LoadConvergenceFile(path);
  if (!p.ok()) return p.status();
  return std::optional<ir::ConvergenceProfile>(std::move(*p));
}

// The entry of a rank the user gave ("3"), or an error naming the flag.
Result<const sim::PlanEntry*> EntryOfRank(const sim::PlanResult& r, const std::string& flag,
                                          const std::string& text) {
  int64_t rank = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, rank);
  if (ec != std::errc() || ptr != end || rank < 1 ||
      rank > static_cast<int64_t>(r.entries.size())) {
    return InvalidArgument(flag + " " + text + ": the rank must be from 1 to " +
                           std::to_string(r.entries.size()) + " (the table's rank column)");
  }
  return &r.entries[static_cast<size_t>(rank - 1)];
}

std::string EmitComment(const ir::Scenario& s, const sim::PlanEntry& e, const std::string& use) {
  return "Configuration " + std::to_string(e.rank) + " of `pipecast plan " + s.source +
         "`: " + sim::ConfigLabel(e.config) + ", D=" + std::to_string(e.config.stages) +
         ", M=" + std::to_string(e.config.microbatches) +
         ", b=" + std::to_string(e.config.microbatch_size) + ".\n" + use;
}

Status EmitScenario(const ir::Scenario& s, const sim::PlanResult& r, const std::string& rank,
                    const std::string& file, bool tell) {
  Result<const sim::PlanEntry*> e = EntryOfRank(r, "--emit-scenario", rank);
  if (!e.ok()) return e.status();
  ir::Scenario out = ir::ConfiguredScenario(s, (*e)->config);
  out.name = s.name + "-plan-" + rank;
  const std::string comment =
      EmitComment(s, **e, "`pipecast sim` on this file simulates exactly what the planner did.");
  PIPECAST_RETURN_IF_ERROR(WriteFileAtomically(file, ir::FormatScenarioYaml(out, comment)));
  if (tell) std::cerr << "wrote " << file << " (configuration " << rank << ")\n";
  return Status::Ok();
}

// The job to train a configuration with: --job, else the convergence profile's job.
Status EmitJob(const ir::Scenario& s, const sim::PlanResult& r, const PlanOptions& o,
               const ir::ConvergenceProfile* profile, bool tell) {
  Result<const sim::PlanEntry*> e = EntryOfRank(r, "--emit-job", o.emit_job[0]);
  if (!e.ok()) return e.status();
  const std::string job = !o.job.empty() ? o.job : profile ? profile->job_source : "";
  if (job.empty()) {
    return InvalidArgument(
        "--emit-job needs a job file to train: give --job JOB (or a "
        "convergence profile, whose job is used)");
  }
  Result<std::string> text = ir::ReadInputFile(job, "job file");
  if (!text.ok()) return text.status();
  const std::string comment =
      EmitComment(s, **e,
                  "The job " + job +
                      " (its model, data and optimizer) on that schedule, for "
                      "`pipecast run`.");
  Result<std::string> out = ir::ConfiguredJobYaml(*text, job, (*e)->config, comment);
  if (!out.ok()) return out.status();
  PIPECAST_RETURN_IF_ERROR(WriteFileAtomically(o.emit_job[1], *out));
  if (tell) std::cerr << "wrote " << o.emit_job[1] << " (configuration " << o.emit_job[0] << ")\n";
  return Status::Ok();
}

std::string Report(const ir::Scenario& s, const sim::PlanResult& r, const PlanOptions& o,
                   const ir::PlanSpace& space) {
  PlanReportOptions ro;
  ro.top = o.top;
  ro.sweep = o.sweep;
  ro.convergence = space.convergence;
  if (o.format == "json") return PlanJson(s, r, ro);
  if (o.format == "csv") return PlanCsv(s, r);
  return o.sweep.empty() ? PlanTable(s, r, ro) : SweepTable(s, r);
}

}  // namespace

int RunPlanCommand(const PlanOptions& o) {
  Result<Planned> planned = LoadPlanned(o.scenario);
  if (!planned.ok()) return Fail(planned.status());
  const ir::Scenario& scenario = planned->scenario;
  ir::PlanSpace& space = planned->space;
  if (Status s = ApplyFlags(o, &space); !s.ok()) return Fail(s);
  if (!o.sweep.empty()) {
    if (Status s = ApplySweep(scenario, o.sweep, &space); !s.ok()) return Fail(s);
  }
  auto profile = LoadProfile(o.scenario, o, space);
  if (!profile.ok()) return Fail(profile.status());
  const bool tell = !o.quiet && ::isatty(STDERR_FILENO);
  sim::PlanOptions options;
  options.memory_budget = DefaultMemoryBudget();
  if (!o.max_memory.empty()) {
    Result<int64_t> budget = ir::ParseBytes(o.max_memory);
    if (!budget.ok() || *budget <= 0) {
      return Fail(InvalidArgument("--max-memory: expected a size such as 8GiB, got '" +
                                  o.max_memory + "'"));
    }
    options.memory_budget = *budget;
  }
  options.convergence = *profile ? &**profile : nullptr;
  options.progress = Progress(tell);
  Result<sim::PlanResult> plan = sim::RunPlan(scenario, space, options);
  if (!plan.ok()) return Fail(plan.status());
  if (plan->feasible == 0 && o.sweep.empty()) {
    return Fail(InvalidArgument(sim::DescribeInfeasible(scenario, *plan)));
  }
  const std::string report = Report(scenario, *plan, o, space);
  if (o.output.empty()) {
    std::cout << report;
  } else if (Status s = WriteFileAtomically(o.output, report); !s.ok()) {
    return Fail(s);
  } else if (tell) {
    std::cerr << "wrote " << o.output << "\n";
  }
  if (!o.emit_scenario.empty()) {
    if (Status s = EmitScenario(scenario, *plan, o.emit_scenario[0], o.emit_scenario[1], tell);
        !s.ok()) {
      return Fail(s);
    }
  }
  if (!o.emit_job.empty()) {
    if (Status s = EmitJob(scenario, *plan, o, options.convergence, tell); !s.ok()) return Fail(s);
  }
  return kExitOk;
}

}  // namespace pipecast::cli
