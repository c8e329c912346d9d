// `pipecast sim`: simulate every chosen method on a scenario and compare them.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/io.h"
#include "common/generators.h"
#include "common/lower.h"
#include "common/scenario.h"
#include "sim/cost_builder.h"
#include "sim/engine.h"
#include "sim/report.h"
#include "sim/svg.h"
#include "sim/trace.h"

namespace pipecast::cli {
namespace {

// What to run: a generated method (name + parameters) or a schedule file.
struct Choice {
  ir::MethodSpec spec;
  std::string schedule_file;  // non-empty for a hand-written schedule
};

bool LooksLikeFile(const std::string& s) {
  std::error_code ec;
  return s.find('/') != std::string::npos || std::filesystem::is_regular_file(s, ec) ||
         s.ends_with(".txt") || s.ends_with(".json") || s.ends_with(".csv");
}

// "name" or "name:key=value:key=value".
Result<ir::MethodSpec> ParseMethodArg(const std::string& arg) {
  ir::MethodSpec spec;
  size_t pos = arg.find(':');
  spec.name = arg.substr(0, pos);
  while (pos != std::string::npos) {
    const size_t next = arg.find(':', pos + 1);
    const std::string kv = arg.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--methods: '" + arg + "': parameter '" + kv +
                             "' is not key=value (example: paci:accumulation=4)");
    }
    spec.params[kv.substr(0, eq)] = kv.substr(eq + 1);
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
  for (const std::string& arg : args) {
    if (arg.empty()) continue;
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

std::string Where(const ir::Scenario& s, const ir::MethodSpec& m) {
  if (m.line > 0) return s.source + ":" + std::to_string(m.line) + ": ";
  return "";
}

// `timeline`: record every action's timing (for traces and SVGs); needs the lowered program.
Result<sim::MethodRun> RunOne(const ir::Scenario& scenario, const Choice& choice, bool timeline) {
  sim::MethodRun run;
  run.method = choice.spec.name;
  run.params = choice.spec.params;
  if (!choice.schedule_file.empty()) {
    auto program = LoadSchedule(choice.schedule_file, "auto");
    if (!program.ok()) return program.status();
    run.program = std::move(*program);
    run.method = std::filesystem::path(choice.schedule_file).filename().string();
    if (run.program.num_devices != scenario.pipeline.stages) {
      return InvalidArgument(choice.schedule_file + ": the schedule has " +
                             std::to_string(run.program.num_devices) +
                             " devices but the scenario's pipeline.stages is " +
                             std::to_string(scenario.pipeline.stages));
    }
  } else {
    ir::GenerateOptions o;
    o.method = choice.spec.name;
    o.devices = scenario.pipeline.stages;
    o.microbatches = scenario.pipeline.microbatches;
    o.minibatches = scenario.pipeline.minibatches;
    o.microbatch_size = scenario.pipeline.microbatch_size;
    o.params = choice.spec.params;
    auto program = ir::Generate(o);
    if (!program.ok())
      return InvalidArgument(Where(scenario, choice.spec) + program.status().message());
    // Without a timeline the engine derives the transfers: no send/receive is materialised.
    run.program = timeline ? ir::InsertCommunication(*program) : std::move(*program);
  }
  auto cost = sim::BuildCostModel(scenario, run.program.num_stages);
  if (!cost.ok()) {
    return InvalidArgument(scenario.source + ": " + run.method + ": " + cost.status().message());
  }
  auto result = sim::Simulate(run.program, *cost, {.record_timeline = timeline});
  if (!result.ok())
    return Status(result.status().code(), run.method + ": " + result.status().message());
  run.result = std::move(*result);
  return run;
}

}  // namespace

int RunSim(const SimOptions& options) {
  Result<ir::Scenario> scenario =
      options.scenario.empty() ? ir::DefaultScenario() : ir::LoadScenarioFile(options.scenario);
  if (!scenario.ok()) {
    std::cerr << "pipecast sim: " << scenario.status().message() << "\n";
    return kExitError;
  }
  auto choices = ChooseMethods(*scenario, options.methods);
  if (!choices.ok()) {
    std::cerr << "pipecast sim: " << choices.status().message() << "\n";
    return kExitError;
  }
  std::vector<sim::MethodRun> runs;
  for (const Choice& c : *choices) {
    auto run = RunOne(*scenario, c, !options.trace_dir.empty() || !options.svg_dir.empty());
    if (!run.ok()) {
      std::cerr << "pipecast sim: " << run.status().message() << "\n";
      return kExitError;
    }
    runs.push_back(std::move(*run));
  }

  const sim::ReportContext context{scenario->name, scenario->source};
  std::string report;
  if (options.format == "json") {
    report = sim::FormatJson(context, runs);
  } else if (options.format == "csv") {
    report = sim::FormatCsv(context, runs);
  } else {
    sim::TableOptions t;
    t.per_stage = options.per_stage;
    t.colour = options.output.empty() && ::isatty(STDOUT_FILENO);
    report = sim::FormatTable(context, runs, t);
  }
  const bool tell = !options.quiet && ::isatty(STDERR_FILENO);
  if (options.output.empty()) {
    std::cout << report;
  } else if (Status s = WriteFileAtomically(options.output, report); !s.ok()) {
    std::cerr << "pipecast sim: " << s.message() << "\n";
    return kExitError;
  } else if (tell) {
    std::cerr << "wrote " << options.output << "\n";
  }

  for (const auto& [dir, svg] : {std::pair{options.trace_dir, false}, {options.svg_dir, true}}) {
    if (dir.empty()) continue;
    if (Status s = MakeDirectories(dir); !s.ok()) {
      std::cerr << "pipecast sim: " << s.message() << "\n";
      return kExitError;
    }
    for (const sim::MethodRun& run : runs) {
      const std::string base = dir + "/" + FileSafe(sim::MethodLabel(run));
      const std::string path = base + (svg ? ".svg" : ".trace.json");
      const std::string body = svg ? sim::FormatSvg(run) : sim::FormatPerfettoTrace(run);
      if (Status s = WriteFileAtomically(path, body); !s.ok()) {
        std::cerr << "pipecast sim: " << s.message() << "\n";
        return kExitError;
      }
      if (tell) std::cerr << "wrote " << path << "\n";
    }
  }
  return kExitOk;
}

}  // namespace pipecast::cli
