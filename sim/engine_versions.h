// Weight-version accounting fused into the engine's pass: each device's actions are visited once,
// in program order, and the version metrics and weight copies are counted as they run, with the
// rules of common/version_plan.h and the statistics of common/version_stats.h (the engine's
// results equal ComputeVersionStats over BuildVersionPlan, which the tests check).
//
// Two levels, chosen per run:
//   - the fast level handles devices that hold only their current weights (every F/B/I computes
//     with the current or predicted weights): a device holds 1 copy, 2 while a prediction runs;
//   - the full level tracks every copy (stashes, 2BW's buffers, explicit versions, PipeMare's
//     corrections) with a reference-counted set, as BuildVersionPlan does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/copy_set.h"
#include "common/ir.h"
#include "common/version_stats.h"

namespace pipecast::sim::internal {

// Per (stage, microbatch): what its forward used, kept until its backward and weight gradient.
// All-zero bytes mean "the F has not run", so a calloc'ed array needs no initialising pass.
struct ForwardVersion {
  int32_t counter_plus_one = 0;  // Steps of the device before the F, plus one; 0 until it ran
  int32_t effective = 0;         // version the F's weights stand for (base + prediction horizon)
  bool ran() const { return counter_plus_one > 0; }
  int32_t counter() const { return counter_plus_one - 1; }
};

// Per (stage, microbatch), only for programs whose backwards use a stash: what the stash holds.
struct StashRecord {
  int32_t version = -1;  // the F's version and horizon, which a @stash backward reuses
  int32_t horizon = 0;
  ir::CopyKey key{-1, 0};  // the copy the F used
  bool needed = false;     // some backward of this microbatch reads the stash
};

// The version statistics of one device, accumulated action by action.
class VersionTally {
 public:
  void Forward(int32_t horizon) { horizon_forward_max_ = std::max(horizon_forward_max_, horizon); }
  // A B or I after `steps` Steps whose forward recorded `f`; `horizon` is its own.
  void Backward(const ForwardVersion& f, int32_t steps, int32_t horizon);
  // A B or W whose gradient the next Step of the device applies, if the device takes one.
  void Gradient(const ForwardVersion& f, int32_t steps);
  void Step();  // applies the pending gradients
  ir::DeviceVersionStats Finish(int32_t live_max, int32_t steps) const;

 private:
  int32_t gap_max_ = 0, delay_max_ = 0, horizon_forward_max_ = 0, horizon_backward_max_ = 0;
  int64_t gap_sum_ = 0, crossing_ = 0, microbatches_ = 0;
  int64_t delay_sum_ = 0, delayed_ = 0;
  // Gradients produced since the last Step: counted once a Step applies them.
  int32_t pending_max_ = 0;
  int64_t pending_sum_ = 0, pending_ = 0;
};

// The weight copies one device holds (full level): the current weights, stashes, 2BW's older
// buffer, versions kept for a later explicit reference, and the scratch copy of a prediction or
// correction while its action runs.
class DeviceCopies {
 public:
  // Scans the device's program once: which weight sources it uses, the last use of every explicit
  // version, and (in `stash`, indexed by stage * total + microbatch) which forwards a stash needs.
  void Prepare(const std::vector<ir::Action>& program, int32_t total_microbatches,
               std::vector<StashRecord>* stash);

  // What an F/B/I at index `i`, after `steps` Steps, computes with; updates the held copies.
  struct Use {
    int32_t version = 0;
    int32_t horizon = 0;  // recorded horizon (0 for a corrected forward)
    int32_t live = 1;     // copies held while the action runs
  };
  Use Weights(const ir::Action& a, int32_t i, int32_t steps, StashRecord* stash);
  // Copies held while the Step at index `i`, the device's `steps`+1-th, runs; *saved is set when
  // the version it replaces stays held (the executor copies it out before stepping).
  int32_t Step(int32_t i, int32_t steps, bool* saved);
  int32_t held() const { return held_.distinct(); }
  bool uses_correction() const { return uses_correction_; }

 private:
  static ir::CopySet Initial() {
    ir::CopySet held;
    held.Add({0, 0});  // the current weights
    return held;
  }
  bool OlderUsed(int32_t v) const {
    return v >= 0 && static_cast<size_t>(v) < older_used_.size() && older_used_[v] != 0;
  }
  ir::CopySet held_ = Initial();
  std::vector<int32_t> explicit_last_use_;
  std::vector<uint8_t> older_used_;  // per version: read later as 2BW's older buffer
  bool uses_stash_ = false, uses_2bw_ = false, uses_explicit_ = false, uses_correction_ = false;
};

// Called for every action: defined here so the engine's pass inlines them.

inline void VersionTally::Backward(const ForwardVersion& f, int32_t steps, int32_t horizon) {
  horizon_backward_max_ = std::max(horizon_backward_max_, horizon);
  if (!f.ran()) return;
  const int32_t gap = steps - f.counter();
  gap_max_ = std::max(gap_max_, gap);
  gap_sum_ += gap;
  crossing_ += gap > 0 ? 1 : 0;
  ++microbatches_;
}

inline void VersionTally::Gradient(const ForwardVersion& f, int32_t steps) {
  if (!f.ran()) return;
  // Applied by Step steps + 1, which produces version steps + 1: the delay counts the updates
  // between the version the forward stood for and the one the gradient is applied to.
  const int32_t delay = steps - f.effective;
  pending_max_ = pending_ == 0 ? delay : std::max(pending_max_, delay);
  pending_sum_ += delay;
  ++pending_;
}

inline void VersionTally::Step() {
  if (pending_ == 0) return;
  delay_max_ = std::max(delay_max_, pending_max_);
  delay_sum_ += pending_sum_;
  delayed_ += pending_;
  pending_sum_ = 0;
  pending_ = 0;
}

}  // namespace pipecast::sim::internal
