#include "cli/report_timelines.h"

#include <string>
#include <vector>

#include "cli/sim_runs.h"
#include "common/generators.h"
#include "common/scenario.h"
#include "sim/report.h"

namespace pipecast::cli::report {
namespace {

constexpr const char* kBuiltIn = "<built-in default.yaml>";

Result<ir::Scenario> LoadScenario(const SimInput& s) {
  if (s.scenario_source == kBuiltIn) return ir::DefaultScenario();
  if (s.scenario_source.empty() || s.scenario_source == "standard input") {
    return NotFound("the scenario came from " +
                    (s.scenario_source.empty() ? std::string("nowhere named") : s.scenario_source) +
                    ", so it cannot be simulated again; draw it with pipecast sim --svg-dir");
  }
  Result<ir::Scenario> scenario = ir::LoadScenarioFile(s.scenario_source);
  if (!scenario.ok()) {
    return Status(scenario.status().code(),
                  scenario.status().message() +
                      " (run the report where pipecast sim ran, or give --no-timelines)");
  }
  if (scenario->name != s.scenario_name) {
    return InvalidArgument(s.scenario_source + " is now scenario '" + scenario->name + "', not '" +
                           s.scenario_name + "' as in " + s.file);
  }
  return scenario;
}

Timeline Draw(const ir::Scenario& scenario, const SimInput& s, const SimMethod& m,
              const TimelineOptions& o) {
  Timeline t{m.label, "", ""};
  if (ir::FindMethod(m.method) == nullptr) {
    t.note = "a schedule file, not a method; draw it with pipecast sim " + s.scenario_source +
             " --methods FILE --svg-dir DIR";
    return t;
  }
  RunSettings settings;
  settings.outputs = {false, true, o.svg.window.kind != sim::SvgWindow::Kind::kAll};
  settings.memory_budget = o.memory_budget;
  Result<sim::MethodRun> run = RunOne(scenario, Choice{{m.method, m.params, 0, 0}, ""}, settings);
  if (!run.ok()) {
    t.note = run.status().message();
    return t;
  }
  if (run->result.makespan != m.makespan_ns) {
    t.note = s.scenario_source + " now simulates " + m.label + " in " +
             std::to_string(run->result.makespan) + " ns, but " + s.file + " says " +
             std::to_string(m.makespan_ns) +
             " ns: the scenario (or pipecast) changed since; re-run pipecast sim";
    return t;
  }
  t.svg = sim::FormatSvg(*run, o.svg);
  return t;
}

}  // namespace

std::vector<Timeline> DrawTimelines(const Inputs& inputs, const TimelineOptions& options) {
  std::vector<Timeline> out;
  for (const SimInput& s : inputs.sims) {
    Result<ir::Scenario> scenario = LoadScenario(s);
    for (const SimMethod& m : s.results) {
      if (!scenario.ok()) {
        out.push_back({m.label, "", scenario.status().message()});
      } else {
        out.push_back(Draw(*scenario, s, m, options));
      }
    }
  }
  return out;
}

}  // namespace pipecast::cli::report
