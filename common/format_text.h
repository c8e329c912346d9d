// The pipecast text schedule format (docs/schedule-formats.md), and the action-token layer the
// text and JSON formats share.
//
//   # pipecast schedule v1
//   method 1f1b
//   devices 2
//   stages 2
//   microbatches 2
//   device 0: F0 F1 B0 B1 S
//   device 1: F0 B0 F1 B1 S
//
// Parsing never crashes or throws on any input; errors are kParseError statuses naming
// file:line:column, the offending token and what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ir.h"
#include "common/status.h"

namespace pipecast::ir {

// Prints `p` in the text format. Every program parses back to itself except invalid ones whose
// fields the format cannot express (weights on W/S/sends, a full B alongside a W for the same
// stage and microbatch on one device, param keys or values with whitespace at their ends).
std::string ProgramToText(const Program& p);

struct ScheduleSource;  // schedule_source.h

// Parses the text format; `filename` only labels error messages. When `source` is given, it
// receives the file's text and where every key, device line and token was written.
Result<Program> ParseProgramText(std::string_view text, std::string_view filename,
                                 ScheduleSource* source = nullptr);

// ---- Token layer shared by the text and JSON formats ----

// Tokens of one device's program as the formats print them. kBackwardInput prints as "B" when
// the program also has the W of the same (stage, microbatch) and as "I" otherwise. The stage
// prefix is written when `always_stage`, or when the action's stage is not `implicit_stage`
// (the device's only virtual stage, see ImplicitStages).
std::vector<std::string> DeviceTokens(const std::vector<Action>& program, int32_t implicit_stage,
                                      bool always_stage);

// What ParseActionToken needs to know about the device whose token it parses.
struct TokenContext {
  int32_t num_stages = 1;
  int32_t total_microbatches = 1;
  // Stage of a token without a stage prefix: the device's only virtual stage, kNoStage when the
  // device holds none, kSeveralStages when it holds several (then the prefix is required).
  int32_t implicit_stage = 0;
  static constexpr int32_t kNoStage = -1;
  static constexpr int32_t kSeveralStages = -2;
};

// Parses one token such as "F3", "5B3@stash", "F7@pred:3" or "S". A "B" token parses as
// kBackward; ResolveSplitBackwards turns it into kBackwardInput when the device has the
// matching W. Errors (kParseError) say what is wrong without location; callers add it.
Result<Action> ParseActionToken(std::string_view token, const TokenContext& context);

// Turns every kBackward of `program` (one device) whose (stage, microbatch) also has a W in it
// into kBackwardInput.
void ResolveSplitBackwards(std::vector<Action>& program);

// Per device of `p` (num_devices entries): its only virtual stage, or TokenContext::kNoStage /
// kSeveralStages. Placement entries out of range are ignored.
std::vector<int32_t> ImplicitStages(const Program& p);

// " (did you mean 'x'?)" for the candidate closest to `word` (edit distance, ignoring case), or
// "" when none is close.
std::string DidYouMeanSuffix(std::string_view word,
                             const std::vector<std::string_view>& candidates);

}  // namespace pipecast::ir
