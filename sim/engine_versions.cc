#include "sim/engine_versions.h"

#include <algorithm>

namespace pipecast::sim::internal {

using ir::Action;
using ir::ActionKind;
using ir::WeightSource;

ir::DeviceVersionStats VersionTally::Finish(int32_t live_max, int32_t steps) const {
  ir::DeviceVersionStats m;
  m.gap_max = gap_max_;
  m.delay_max = delay_max_;
  m.horizon_forward_max = horizon_forward_max_;
  m.horizon_backward_max = horizon_backward_max_;
  m.microbatches = microbatches_;
  m.delayed = delayed_;
  if (microbatches_ > 0) {
    m.gap_mean = static_cast<double>(gap_sum_) / static_cast<double>(microbatches_);
    m.crossing_fraction = static_cast<double>(crossing_) / static_cast<double>(microbatches_);
  }
  if (delayed_ > 0) m.delay_mean = static_cast<double>(delay_sum_) / static_cast<double>(delayed_);
  m.live_versions_max = live_max;
  m.steps = steps;
  return m;
}

void DeviceCopies::Prepare(const std::vector<Action>& program, int32_t total,
                           std::vector<StashRecord>* stash) {
  const int32_t len = static_cast<int32_t>(program.size());
  int32_t version = 0;  // the device's current version at action i: its steps before i
  for (int32_t i = 0; i < len; ++i) {
    const Action& a = program[i];
    if (a.kind == ActionKind::kStep) ++version;
    if (a.weights.source == WeightSource::kCurrent || !ir::UsesWeights(a.kind)) continue;
    const WeightSource src = a.weights.source;
    if (src == WeightSource::kStashed && ir::IsBackward(a.kind)) {
      uses_stash_ = true;
      (*stash)[static_cast<size_t>(a.stage) * total + a.microbatch].needed = true;
    } else if (src == WeightSource::kBufferOlder || src == WeightSource::kBufferNewer) {
      uses_2bw_ = true;
      // Version - 1 is read as the older buffer: the step that replaced it had to keep it.
      if (src == WeightSource::kBufferOlder && version >= 1) {
        if (older_used_.size() < static_cast<size_t>(version)) older_used_.resize(version, 0);
        older_used_[version - 1] = 1;
      }
    } else if (src == WeightSource::kCorrected) {
      uses_correction_ = true;
    } else if (src == WeightSource::kVersion && a.weights.value >= 0 && a.weights.value <= len) {
      uses_explicit_ = true;  // beyond any step count the version is invalid and never held
      const auto v = static_cast<size_t>(a.weights.value);
      if (explicit_last_use_.size() <= v) explicit_last_use_.resize(v + 1, -1);
      explicit_last_use_[v] = i;
    }
  }
}

DeviceCopies::Use DeviceCopies::Weights(const Action& a, int32_t i, int32_t n, StashRecord* stash) {
  const bool backward = ir::IsBackward(a.kind);
  const WeightSource src = a.weights.source;
  Use use;
  use.version = n;
  switch (src) {
    case WeightSource::kCurrent:
    case WeightSource::kBufferNewer:
      break;
    case WeightSource::kBufferOlder:
      use.version = std::max(0, n - 1);
      break;
    case WeightSource::kPredicted:
    case WeightSource::kCorrected:
      use.horizon = a.weights.value;
      break;
    case WeightSource::kVersion:
      use.version = a.weights.value;
      break;
    case WeightSource::kStashed:
      if (backward && stash != nullptr) {
        use.version = stash->version;
        use.horizon = stash->horizon;
      }
      break;
  }
  ir::CopyKey key{use.version, 0};
  if (src == WeightSource::kPredicted) key.horizon = std::max(0, use.horizon);
  if (src == WeightSource::kCorrected) key.horizon = use.horizon > 0 ? -use.horizon : 0;
  const bool stashed_backward = src == WeightSource::kStashed && backward && uses_stash_;
  if (stashed_backward) key = stash->key;
  use.live = held_.distinct();
  if (use.version >= 0 && !held_.Contains(key)) use.live = held_.distinct() + 1;  // scratch
  if (a.kind == ActionKind::kForward) {
    if (src == WeightSource::kCorrected) use.horizon = 0;
    if (uses_stash_) {
      stash->key = key;
      if (stash->needed && use.version >= 0) held_.Add(key);
    }
  } else if (stashed_backward && stash->version >= 0 && stash->key.version >= 0) {
    held_.Remove(stash->key);
  }
  // The last explicit reference to an old version releases it.
  if (src == WeightSource::kVersion && use.version >= 0 && use.version < n &&
      static_cast<size_t>(use.version) < explicit_last_use_.size() &&
      explicit_last_use_[use.version] == i) {
    held_.Remove({use.version, 0});
  }
  use.live = std::max(use.live, held_.distinct());
  return use;
}

int32_t DeviceCopies::Step(int32_t i, int32_t n, bool* saved) {
  const int32_t before = held_.distinct();
  // The old current version stays alive if a stash, 2BW's older buffer or a later explicit
  // reference still needs it.
  held_.Add({n + 1, 0});
  if (uses_2bw_) {
    // Version n becomes the older buffer if a later action reads it as such (the executor does
    // not keep it after the last step that anything reads); version n - 1 stops being it.
    if (OlderUsed(n)) held_.Add({n, 0});
    if (n >= 1 && OlderUsed(n - 1)) held_.Remove({n - 1, 0});
  }
  if (uses_explicit_ && static_cast<size_t>(n) < explicit_last_use_.size() &&
      explicit_last_use_[n] > i) {
    held_.Add({n, 0});  // kept for a later explicit reference
  }
  held_.Remove({n, 0});
  *saved = held_.Contains({n, 0});
  return std::max(before, held_.distinct());
}

}  // namespace pipecast::sim::internal
