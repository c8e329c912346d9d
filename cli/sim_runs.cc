#include "cli/sim_runs.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "cli/io.h"
#include "common/compact_program.h"
#include "sim/bubble_fill.h"
#include "common/generators.h"
#include "common/limits.h"
#include "common/lower.h"
#include "sim/cost_builder.h"
#include "sim/engine.h"

namespace pipecast::cli {
namespace {

bool LooksLikeFile(const std::string& s) {
  std::error_code ec;
  return s == "-" || s.find('/') != std::string::npos || std::filesystem::is_regular_file(s, ec) ||
         s.ends_with(".txt") || s.ends_with(".json") || s.ends_with(".csv");
}

// "scenarios/x.yaml:12: " for a method the scenario lists, "" for one from the command line.
std::string Where(const ir::Scenario& s, const ir::MethodSpec& m) {
  if (m.line > 0) return s.source + ":" + std::to_string(m.line) + ": ";
  return "";
}

std::string Plural(int64_t n, const std::string& word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "es");
}

// The flags of `pipecast schedule` that generate a schedule of the scenario's shape.
std::string ScheduleFlags(const ir::PipelineSpec& p) {
  return "--stages " + std::to_string(p.stages) + " --microbatches " +
         std::to_string(p.microbatches) + " --minibatches " + std::to_string(p.minibatches) +
         " --microbatch-size " + std::to_string(p.microbatch_size) +
         (p.data_parallel > 1 ? " --data-parallel " + std::to_string(p.data_parallel) : "");
}

// A schedule file simulates the scenario's pipeline: the same devices, microbatches and
// minibatches; the microbatch size is the scenario's (the costs are per microbatch of that many
// samples), which a file may state only if it agrees.
Status CheckShape(const ir::Scenario& scenario, const LoadedSchedule& s) {
  const ir::PipelineSpec& want = scenario.pipeline;
  const ir::Program& p = s.program;
  const std::string fix =
      "; generate one of the scenario's shape with pipecast schedule --method "
      "NAME " +
      ScheduleFlags(want);
  // Copies of the pipeline on devices of their own (data parallelism, AvgPipe's pipelines) each
  // bring pipeline.stages devices and pipeline.microbatches microbatches; Chimera's share them.
  const int32_t copies = p.num_devices / std::max(want.stages, 1);
  const bool own_copies = want.data_parallel == 1 && p.replicas > 1;
  if (p.num_devices != copies * want.stages || copies < 1 ||
      (copies != want.data_parallel && !own_copies)) {
    return InvalidArgument(s.source.WhereKey("devices") + ": the schedule has " +
                           std::to_string(p.num_devices) + " devices but the scenario has " +
                           std::to_string(want.stages * want.data_parallel) + " (pipeline.stages " +
                           std::to_string(want.stages) + " x data_parallel " +
                           std::to_string(want.data_parallel) + ")" + fix);
  }
  if (p.microbatches != want.microbatches * copies) {
    return InvalidArgument(s.source.WhereKey("microbatches") + ": the schedule has " +
                           Plural(p.microbatches, "microbatch") + " per minibatch but the " +
                           "scenario's pipeline.microbatches is " +
                           std::to_string(want.microbatches) +
                           (copies > 1 ? " for each of " + std::to_string(copies) + " copies" : "") +
                           fix);
  }
  if (p.minibatches != want.minibatches) {
    return InvalidArgument(s.source.WhereKey("minibatches") + ": the schedule has " +
                           std::to_string(p.minibatches) + " minibatch" +
                           (p.minibatches == 1 ? "" : "es") + " but the scenario's " +
                           "pipeline.minibatches is " + std::to_string(want.minibatches) + fix);
  }
  if (s.source.Has("microbatch_size") && p.microbatch_size != want.microbatch_size) {
    return InvalidArgument(
        s.source.WhereKey("microbatch_size") + ": the schedule's microbatch_size is " +
        std::to_string(p.microbatch_size) + " but the scenario's pipeline.microbatch_size is " +
        std::to_string(want.microbatch_size) + "; the costs are for microbatches of " +
        std::to_string(want.microbatch_size) +
        " samples: make them agree, or drop the line (a "
        "schedule without microbatch_size takes the scenario's)");
  }
  return Status::Ok();
}

Result<sim::MethodRun> LoadRun(const ir::Scenario& scenario, const Choice& choice, bool timeline) {
  Result<LoadedSchedule> loaded =
      LoadSchedule(choice.schedule_file, "auto", scenario.pipeline.minibatches);
  if (!loaded.ok()) return loaded.status();
  PIPECAST_RETURN_IF_ERROR(CheckShape(scenario, *loaded));
  sim::MethodRun run;
  run.method = std::filesystem::path(choice.schedule_file).filename().string();
  if (choice.schedule_file == "-") run.method = "stdin";
  run.program = std::move(loaded->program);
  run.program.microbatch_size = scenario.pipeline.microbatch_size;
  if (timeline) run.program = ir::InsertCommunication(run.program);
  return run;
}

// Refuses a run whose estimated memory exceeds the budget, before anything is generated.
Status CheckBudget(const ir::Scenario& scenario, const Choice& choice, const ir::ProgramSize& size,
                   const RunSettings& settings) {
  const int64_t need = sim::EstimateSimulationBytes(size, settings.outputs);
  if (need <= settings.memory_budget) return Status::Ok();
  const bool pictures = settings.outputs.trace || settings.outputs.svg;
  return InvalidArgument(
      Where(scenario, choice.spec) + choice.spec.name + " with " + std::to_string(size.devices) +
      " stages x " + std::to_string(size.microbatches) + " microbatches (" +
      std::to_string(size.compute_actions) + " compute actions) needs about " +
      sim::FormatBytes(need) + " to simulate" + (pictures ? " with its traces and pictures" : "") +
      ", more than the limit of " + sim::FormatBytes(settings.memory_budget) +
      "; raise it with --max-memory (e.g. --max-memory " + std::to_string((need >> 30) + 1) +
      "GiB) or simulate fewer microbatches");
}

// A run to simulate: its program, in the compact encoding when nothing needs the actions as
// ir::Actions (no trace or SVG), so a large run is never held in full form.
struct Made {
  sim::MethodRun run;
  std::optional<ir::CompactProgram> compact;
};

// A trace, an SVG or bubble work (filled into the timeline's idle time) needs the timeline.
bool NeedsTimeline(const ir::Scenario& scenario, const RunSettings& settings) {
  return settings.outputs.trace || settings.outputs.svg || !scenario.bubble_work.empty();
}

Result<Made> GenerateRun(const ir::Scenario& scenario, const Choice& choice,
                         const RunSettings& settings) {
  ir::GenerateOptions o;
  o.method = choice.spec.name;
  o.devices = scenario.pipeline.stages;
  o.microbatches = scenario.pipeline.microbatches;
  o.minibatches = scenario.pipeline.minibatches;
  o.microbatch_size = scenario.pipeline.microbatch_size;
  o.data_parallel = scenario.pipeline.data_parallel;
  o.params = choice.spec.params;
  Result<ir::ProgramSize> size = ir::SizeOf(o);
  if (!size.ok()) return InvalidArgument(Where(scenario, choice.spec) + size.status().message());
  PIPECAST_RETURN_IF_ERROR(CheckBudget(scenario, choice, *size, settings));
  Made made;
  made.run.method = choice.spec.name;
  made.run.params = choice.spec.params;
  const bool timeline = NeedsTimeline(scenario, settings);
  // The compact encoding serves the fast pass; a program whose weight copies are tracked runs
  // expanded anyway, so it is generated expanded.
  if (!timeline && !size->tracked_copies) {
    if (Result<ir::CompactProgram> compact = ir::GenerateCompact(o); compact.ok()) {
      made.run.program = compact->header;  // the metadata the reports print
      made.compact = std::move(*compact);
      return made;
    }
  }
  auto program = ir::Generate(o);
  if (!program.ok()) {
    return InvalidArgument(Where(scenario, choice.spec) + program.status().message());
  }
  // Without a timeline the engine derives the transfers: no send/receive is materialised.
  made.run.program = timeline ? ir::InsertCommunication(*program) : std::move(*program);
  return made;
}

}  // namespace

Result<ir::MethodSpec> ParseMethodArg(const std::string& arg) {
  ir::MethodSpec spec;
  size_t pos = arg.find(':');
  spec.name = arg.substr(0, pos);
  if (spec.name.empty()) {
    return InvalidArgument("--methods: '" + arg +
                           "' has no method name (example: "
                           "paci:accumulation=4; pipecast methods lists the methods)");
  }
  while (pos != std::string::npos) {
    const size_t next = arg.find(':', pos + 1);
    const std::string kv = arg.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--methods: '" + arg + "': parameter '" + kv +
                             "' is not key=value (example: paci:accumulation=4)");
    }
    if (!spec.params.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second) {
      return InvalidArgument("--methods: '" + arg + "' gives parameter '" + kv.substr(0, eq) +
                             "' twice; give each parameter once");
    }
    pos = next;
  }
  return spec;
}

Result<std::vector<Choice>> ChooseMethods(const ir::Scenario& scenario,
                                          const std::vector<std::string>& args) {
  std::vector<Choice> out;
  if (args.empty()) {
    if (scenario.methods.empty()) {
      for (const ir::MethodInfo& m : ir::Methods()) out.push_back({{m.name, {}, 0, 0}, ""});
    } else {
      for (const ir::MethodSpec& m : scenario.methods) out.push_back({m, ""});
    }
    return out;
  }
  std::vector<std::string> entries;
  for (const std::string& value : args) {
    for (size_t begin = 0;;) {
      const size_t comma = value.find(',', begin);
      entries.push_back(value.substr(begin, comma == std::string::npos ? comma : comma - begin));
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  }
  for (const std::string& arg : entries) {
    if (arg.empty()) {
      return InvalidArgument(
          "--methods: an empty entry; give method names or schedule files "
          "separated by commas, e.g. --methods 1f1b,zb-h1 (pipecast methods "
          "lists the methods)");
    }
    if (!ir::FindMethod(arg.substr(0, arg.find(':'))) && LooksLikeFile(arg)) {
      out.push_back({{arg, {}, 0, 0}, arg});
      continue;
    }
    auto spec = ParseMethodArg(arg);
    if (!spec.ok()) return spec.status();
    // A bare name that the scenario lists selects the scenario's entries (with their params).
    bool from_scenario = false;
    if (spec->params.empty() && arg.find(':') == std::string::npos) {
      for (const ir::MethodSpec& m : scenario.methods) {
        if (m.name == spec->name) {
          out.push_back({m, ""});
          from_scenario = true;
        }
      }
    }
    if (!from_scenario) out.push_back({*spec, ""});
  }
  return out;
}

Result<sim::MethodRun> RunOne(const ir::Scenario& scenario, const Choice& choice,
                              const RunSettings& settings) {
  const bool timeline = NeedsTimeline(scenario, settings);
  Result<Made> made = Made{};
  if (choice.schedule_file.empty()) {
    made = GenerateRun(scenario, choice, settings);
  } else if (Result<sim::MethodRun> loaded = LoadRun(scenario, choice, timeline); loaded.ok()) {
    made->run = std::move(*loaded);
  } else {
    return loaded.status();
  }
  if (!made.ok()) return made.status();
  sim::MethodRun& run = made->run;
  auto cost = sim::BuildCostModel(scenario, run.program.stage_placement());
  if (!cost.ok()) {
    return InvalidArgument(scenario.source + ": " + run.method + ": " + cost.status().message());
  }
  auto result = made->compact ? sim::Simulate(*made->compact, *cost)
                              : sim::Simulate(run.program, *cost, {.record_timeline = timeline});
  if (!result.ok()) {
    return Status(result.status().code(), run.method + ": " + result.status().message());
  }
  if (result->makespan == 0) {
    return InvalidArgument(
        scenario.source + ": " + run.method +
        ": every action takes 0 ns (the scenario's costs "
        "are all zero), so there is no time to simulate and no throughput to report; give "
        "costs.forward and costs.backward, or a model and a cluster");
  }
  if (!scenario.bubble_work.empty()) {
    auto fill = sim::FillBubbles(run.program, *result, scenario.bubble_work);
    if (!fill.ok()) return InvalidArgument(scenario.source + ": " + fill.status().message());
    run.bubble_fill = std::move(*fill);
  }
  run.result = std::move(*result);
  run.partition = sim::DeviceLayers(scenario, run.program.stage_placement());
  return std::move(run);
}

int64_t DefaultMemoryBudget() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return ir::kDefaultMemoryBudget;
  return std::min(ir::kDefaultMemoryBudget, static_cast<int64_t>(pages) * page / 2);
}

}  // namespace pipecast::cli
