// The pipecast JSON schedule format (docs/schedule-formats.md): the same content as the text
// format, for tools that prefer JSON.
//
//   {"format": "pipecast-schedule", "version": 1, "method": "1f1b", "params": {},
//    "devices": 2, "stages": 2, "placement": [0, 1], "microbatches": 2, "minibatches": 1,
//    "microbatch_size": 1, "max_live_versions": [],
//    "programs": [["0F0", "0F1", "0B0", "0B1", "S"], ["1F0", "1B0", "1F1", "1B1", "S"]]}
//
// Actions are text-format tokens (format_text.h), always written with their stage prefix.
// Parsing never crashes or throws; errors are kParseError statuses naming the JSON path.
#pragma once

#include <string>
#include <string_view>

#include "common/ir.h"
#include "common/status.h"

namespace pipecast::ir {

// Prints `p` as JSON (one device program per line). Round trips like ProgramToText.
std::string ProgramToJson(const Program& p);

struct ScheduleSource;  // schedule_source.h

// Parses the JSON format; `filename` only labels error messages. When `source` is given, it
// receives the keys the document gives (actions are then named by their JSON path).
Result<Program> ParseProgramJson(std::string_view json, std::string_view filename,
                                 ScheduleSource* source = nullptr);

}  // namespace pipecast::ir
