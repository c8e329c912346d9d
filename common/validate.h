// Static validation of a Program: is it a well-formed schedule that can run to completion?
//
// ValidateProgram checks metadata, every action's fields, that each (stage, microbatch) is
// computed exactly once in a legal order, that gradients are applied and weight annotations make
// sense, that sends and receives pair up (when the program has them), and that the dependency
// graph has no cycle (a deadlock). It collects every problem it finds rather than stopping at the
// first; docs/schedule-formats.md lists each rule. Method-specific preconditions belong to the
// generators, not here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ir.h"
#include "common/limits.h"  // kMaxCount, kMaxCells: what the validator accepts
#include "common/status.h"

namespace pipecast::ir {

// One problem found in a program. `device` and `action_index` are -1 when the problem is not
// tied to a device or to one action; `token` is the action's ActionToken, with the stage prefix
// unless the action's stage is its device's only one ("" without an action).
struct Diagnostic {
  int32_t device = -1;
  int32_t action_index = -1;
  std::string token;
  std::string message;

  // "device 2, action 14 (B3@stash): <message>", "device 2: <message>" or "<message>".
  std::string ToString() const;
};

struct ValidateOptions {
  // How messages name the action at (device, index) they refer to; default
  // "device 2 action 14 (B3@stash)". The CLI passes the token and its file position.
  std::function<std::string(int32_t device, int32_t index)> describe;
  // For a program without sends and receives: also check that the transfers lowering would
  // insert keep their order on every link (rule 10, reported at the producing compute action).
  bool implicit_link_order = false;
};

// Every problem in `p`, in a deterministic order; empty when the program is valid.
std::vector<Diagnostic> ValidateProgram(const Program& p, const ValidateOptions& options = {});

// Ok when `diagnostics` is empty; else kInvalidSchedule whose message starts with `what` and
// lists every diagnostic, one per line.
Status ValidationStatus(const std::vector<Diagnostic>& diagnostics, std::string_view what);

}  // namespace pipecast::ir
