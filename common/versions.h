// Static weight-version accounting for a Program.
//
// Devices run their actions in program order, so the number of optimizer Steps a device has
// taken before any action is fixed by the program alone, independent of timing. This file
// resolves every F/B/I's WeightRef to a version number, records when each microbatch's gradient
// is applied, and counts the weight copies a device must hold at each point of its program.
// Both the simulator and the executor use it, which is why their version traces agree.
//
// Resolution rules (n = Steps the device has taken before the action):
//   kCurrent     -> n              kBufferNewer -> n
//   kStashed     -> what this microbatch's F resolved to (the F's weights are kept)
//   kPredicted   -> n, extrapolated `value` steps ahead (effective version n + value)
//   kBufferOlder -> max(0, n - 1)  kCorrected   -> n (weights corrected by `value` steps)
//   kVersion     -> value
#pragma once

#include <cstdint>
#include <vector>

#include "common/ir.h"

namespace pipecast::ir {

// Per (stage, microbatch) record; index with VersionTable::At(stage, microbatch).
struct VersionRecord {
  int32_t f_counter = -1;   // Steps taken by the device before the F
  int32_t f_version = -1;   // version of the weights the F used (the base, for predictions)
  int32_t f_horizon = 0;    // prediction horizon of the F (0 when not predicted)
  int32_t b_counter = -1;   // Steps taken before the B (or I)
  int32_t b_version = -1;   // version of the weights the B used
  int32_t b_horizon = 0;    // prediction horizon (or correction gap) of the B
  int32_t applied_step = -1;  // the Step (1-based, = version it produces) applying the gradient

  // Updates crossed between F and B.
  int32_t version_gap() const { return b_counter - f_counter; }
  // Version the forward's weights stand for: the prediction target for predicted weights.
  int32_t f_effective() const { return f_version + f_horizon; }
  // Updates between the weights the forward used and the update applying the gradient.
  int32_t gradient_delay() const { return applied_step - 1 - f_effective(); }
};

struct VersionTable {
  int32_t num_stages = 0;
  int32_t total_microbatches = 0;
  std::vector<VersionRecord> records;  // [stage * total_microbatches + microbatch]
  // Per device: most weight copies held at once (current, stashes, 2BW's second buffer, copies
  // kept for explicit versions, the predicted or corrected scratch copy).
  std::vector<int32_t> live_versions_max;
  // Per device: index of the action at which live_versions_max is first reached.
  std::vector<int32_t> live_versions_argmax;
  // Per device: Steps in its program.
  std::vector<int32_t> steps;
  // Per device: 1 if some action computes with PipeMare-corrected weights.
  std::vector<uint8_t> uses_correction;
  // Per device, per action: weight copies held while that action runs. Filled only when
  // ComputeVersions is asked for it (memory accounting in the simulator), and left empty for a
  // device that only ever holds its current weights: there the count is 1, or 2 while an action
  // runs on a scratch copy (see ScratchCopy).
  std::vector<std::vector<int32_t>> live_during;

  // Weight copies held while action `i` of device `d` runs. REQUIRES: per_action_live.
  int32_t LiveDuring(int32_t d, size_t i, const Action& a) const {
    const auto& live = live_during[d];
    return live.empty() ? 1 + (ScratchCopy(a) ? 1 : 0) : live[i];
  }
  // True if the action computes with a temporary copy of the weights.
  static bool ScratchCopy(const Action& a) {
    return UsesWeights(a.kind) && a.weights.value > 0 &&
           (a.weights.source == WeightSource::kPredicted ||
            a.weights.source == WeightSource::kCorrected);
  }

  VersionRecord& At(int32_t stage, int32_t mb) {
    return records[static_cast<size_t>(stage) * total_microbatches + mb];
  }
  const VersionRecord& At(int32_t stage, int32_t mb) const {
    return records[static_cast<size_t>(stage) * total_microbatches + mb];
  }
};

// REQUIRES: every stage/microbatch in the program is in range (the validator checks this
// first). Actions that refer to something missing (a stash whose F never ran on the device)
// resolve to version -1. With `per_action_live`, fills live_during.
VersionTable ComputeVersions(const Program& program, bool per_action_live = false);

}  // namespace pipecast::ir
