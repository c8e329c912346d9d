// Writing a Scenario back as a scenario file: `pipecast plan --emit-scenario` writes the scenario
// of one configuration, which `pipecast sim` reads back to the same values (the tests hold
// ParseScenario(FormatScenarioYaml(s)) equal to s for every shipped scenario). Times are written
// in whole nanoseconds, sizes in bytes and rates as plain numbers in their base units, so
// nothing is rounded.
#pragma once

#include <string>

#include "common/scenario.h"

namespace pipecast::ir {

// The YAML text of `scenario`, opening with `comment` (one "# " line per line of it; may be
// empty). The `plan:` section is not written.
std::string FormatScenarioYaml(const Scenario& scenario, const std::string& comment);

// `comment` as YAML comment lines: "# " before each of its lines ("" for an empty comment).
std::string YamlComment(const std::string& comment);

}  // namespace pipecast::ir
