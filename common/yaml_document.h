// Internal to common/ (included only by the parsers' .cc files, never by a public header):
// loading the one YAML document of a scenario or job file, the same way for both, with
// positions in every message.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace pipecast::ir::internal {

// "file:line:column", or the file alone for a mark without a position.
std::string WhereIs(std::string_view file, const YAML::Mark& mark);

// The single document of `text`. Errors: kParseError for invalid YAML (with the position and,
// for input on which yaml-cpp 0.7 would loop forever, the offending character), or for nesting
// deeper than yaml-cpp allows; kInvalidArgument when the file has more than one document
// (`what` names it: "a scenario", "a job file").
Result<YAML::Node> LoadOneDocument(std::string_view text, std::string_view file,
                                   std::string_view what);

}  // namespace pipecast::ir::internal
