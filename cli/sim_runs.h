// The runs of `pipecast sim`: which methods and schedule files to simulate, and simulating one of
// them against the scenario, with every check a user can act on made before memory is spent
// (sizes against the memory budget, schedule files against the scenario's shape).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/scenario.h"
#include "common/status.h"
#include "sim/memory_estimate.h"
#include "sim/report.h"

namespace pipecast::cli {

// What to run: a generated method (name + parameters) or a schedule file.
struct Choice {
  ir::MethodSpec spec;
  std::string schedule_file;  // non-empty for a schedule file
};

// "name" or "name:key=value:key=value". Errors: an empty name, a parameter that is not
// key=value, or one given twice.
Result<ir::MethodSpec> ParseMethodArg(const std::string& arg);

// The runs --methods asks for (comma-separated names, specs or schedule files, in one or more
// values), else the scenario's list, else every method. A bare name the scenario lists selects the
// scenario's entries (with their parameters). Errors: an empty entry ("--methods ''",
// "1f1b,,zb-h1") and bad specs.
Result<std::vector<Choice>> ChooseMethods(const ir::Scenario& scenario,
                                          const std::vector<std::string>& args);

struct RunSettings {
  sim::RunOutputs outputs;    // a trace or SVG needs the timeline
  int64_t memory_budget = 0;  // bytes a generated run may plan to use
};

// Generates (or loads), checks and simulates one run. Errors name the scenario line of the
// method, or the schedule file's line, and say what to change.
Result<sim::MethodRun> RunOne(const ir::Scenario& scenario, const Choice& choice,
                              const RunSettings& settings);

// What `--max-memory` allows when not given: kDefaultMemoryBudget, or half of the machine's
// memory if that is less.
int64_t DefaultMemoryBudget();

}  // namespace pipecast::cli
