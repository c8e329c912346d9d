// The version plan of a Program: which weights every action computes with, and which buffers a
// device needs to serve them.
//
// Devices run their actions in program order, so the number of optimizer Steps a device has
// taken before any action is fixed by the program alone, independent of timing. The plan
// resolves every F/B/I's WeightRef to a version number, records when each microbatch's gradient
// is applied, and counts the weight copies a device holds at each point of its program. Both
// engines use it: the simulator for version metrics and memory, the executor (with
// PlanDetail::kExecution) to know, for every action, the buffer holding its weights, where each
// weight copy is made and released, and which activation record each microbatch occupies, so a
// device sizes every buffer before the run and allocates nothing while it runs.
//
// Resolution rules (n = Steps the device has taken before the action):
//   kCurrent     -> n              kBufferNewer -> n
//   kStashed     -> what this microbatch's F resolved to (the F's weights are kept)
//   kPredicted   -> n, extrapolated `value` steps ahead (effective version n + value)
//   kBufferOlder -> max(0, n - 1)  kCorrected   -> n (weights corrected by `value` steps)
//   kVersion     -> value
//
// Buffers (kExecution). Each stage has its current weights and `weight_copies` copy slots. A
// copy is made only when needed: a Step saves the current weights into a slot when a stash,
// 2BW's older buffer or a later explicit reference still needs the version it replaces
// (copy-on-step), and a prediction or correction is computed into a slot just before the action
// that uses it. A slot is released after its last use. Slots are assigned lowest-free-first, so
// the plan, like everything else here, is a pure function of the program.
#pragma once

#include <cstdint>
#include <vector>

#include "common/ir.h"

namespace pipecast::ir {

// Per (stage, microbatch) record; index with VersionPlan::At(stage, microbatch).
struct VersionRecord {
  int32_t f_counter = -1;     // Steps taken by the device before the F
  int32_t f_version = -1;     // version of the weights the F used (the base, for predictions)
  int32_t f_horizon = 0;      // prediction horizon of the F (0 when not predicted)
  int32_t b_counter = -1;     // Steps taken before the B (or I)
  int32_t b_version = -1;     // version of the weights the B used
  int32_t b_horizon = 0;      // prediction horizon (or correction gap) of the B
  int32_t applied_step = -1;  // the Step (1-based, = version it produces) applying the gradient

  // Updates crossed between F and B.
  int32_t version_gap() const { return b_counter - f_counter; }
  // Version the forward's weights stand for: the prediction target for predicted weights.
  int32_t f_effective() const { return f_version + f_horizon; }
  // Updates between the weights the forward used and the update applying the gradient.
  int32_t gradient_delay() const { return applied_step - 1 - f_effective(); }
};

// The current weights of a stage, as opposed to one of its copy slots.
inline constexpr int32_t kCurrentWeights = -1;

// How the weights an action uses are obtained. Do not renumber.
enum class WeightOrigin : uint8_t {
  kCurrent = 0,          // the stage's current weights
  kStash = 1,            // what this microbatch's forward used (PipeDream, SpecTrain v2)
  kOlderBuffer = 2,      // PipeDream-2BW's older buffer
  kPrediction = 3,       // W - lr·s·ΔW, computed just before the action
  kCorrection = 4,       // PipeMare: W - g·δ, computed just before the action
  kExplicitVersion = 5,  // a version kept for a later explicit reference (vertical sync)
};

// The weights one F, B or I computes with.
struct WeightKey {
  int32_t version = 0;  // the version (the base of a prediction or correction)
  int32_t horizon = 0;  // prediction horizon s or correction gap g; 0 for plain versions
  WeightOrigin origin = WeightOrigin::kCurrent;
  int32_t slot = kCurrentWeights;  // the stage's buffer that holds them when the action runs
  friend bool operator==(const WeightKey&, const WeightKey&) = default;
};

enum class WeightOpKind : uint8_t {
  kSaveCurrent = 0,  // copy the stage's current weights into `slot` (before a Step)
  kPredict = 1,      // slot = current - lr·value·ΔW (from the optimizer state as it is)
  kCorrect = 2,      // slot = current - value·δ (PipeMare's velocity)
  kRelease = 3,      // slot is free again
};

struct WeightOp {
  WeightOpKind kind = WeightOpKind::kRelease;
  int32_t stage = 0;
  int32_t slot = 0;
  int32_t value = 0;  // kPredict: horizon; kCorrect: gap
  friend bool operator==(const WeightOp&, const WeightOp&) = default;
};

// What the executor does around one action of a device's program.
struct PlannedAction {
  WeightKey weights;    // F, B, I: the weights to compute with
  int32_t record = -1;  // activation record slot of (stage, microbatch); -1 for S
  // F: the record of (stage + 1, microbatch) when that stage is on this device (the output is
  // handed over into it); B/I: the record of (stage - 1, microbatch) likewise; else -1.
  int32_t handoff_record = -1;
  bool opens_record = false;   // the action is the first to use `record` for this microbatch
  bool opens_handoff = false;  // ... likewise for `handoff_record`
  bool closes_record = false;  // `record` is free after the action (once its sends complete)
  uint32_t before_begin = 0, before_end = 0;  // DevicePlan::ops to run before the action
  uint32_t after_begin = 0, after_end = 0;    // DevicePlan::ops to run after it (releases)
};

struct DevicePlan {
  std::vector<PlannedAction> actions;  // one per action of the device's program
  std::vector<WeightOp> ops;
};

// What a stage needs, sized before the run.
struct StageBuffers {
  int32_t weight_copies = 0;  // copy slots besides the current weights (most held at once)
  int32_t records = 0;        // activation records (most microbatches in flight on the stage)
  bool velocity = false;      // PipeMare's velocity δ (the program corrects some weights)
};

struct VersionPlan {
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
  // Per device, per action: weight copies held while that action runs. Filled from
  // PlanDetail::kLivePerAction on, and left empty for a device that only ever holds its current
  // weights: there the count is 1, or 2 while an action runs on a scratch copy (ScratchCopy).
  std::vector<std::vector<int32_t>> live_during;
  // Per global microbatch: how many microbatch gradients the step that applies its gradient
  // on the last stage applies (all of the last stage's pending ones when none does). The
  // executor scales each microbatch's loss by 1 / this, so that a step applies the mean.
  std::vector<int32_t> loss_divisor;
  // PlanDetail::kExecution only: per device, and per virtual stage.
  std::vector<DevicePlan> devices;
  std::vector<StageBuffers> buffers;

  // Weight copies held while action `i` of device `d` runs. REQUIRES: kLivePerAction or more.
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

enum class PlanDetail {
  kRecords,        // records, live-version maxima, steps
  kLivePerAction,  // + live_during (memory accounting in the simulator)
  kExecution,      // + live_during, the per-action buffer plan and the per-stage sizes
};

// REQUIRES: every stage/microbatch in the program is in range (the validator checks this
// first). Actions that refer to something missing (a stash whose F never ran on the device)
// resolve to version -1. kExecution further REQUIRES a valid program (validate.h): it aborts on
// a reference the validator rejects.
VersionPlan BuildVersionPlan(const Program& program, PlanDetail detail = PlanDetail::kRecords);

namespace internal {
// The kExecution part of BuildVersionPlan (execution_plan.cc).
void PlanExecution(const Program& program, VersionPlan& plan);
}  // namespace internal

}  // namespace pipecast::ir
