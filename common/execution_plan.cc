// The executor's part of the version plan (PlanDetail::kExecution): which buffer serves every
// action's weights, where weight copies are made and released, and which activation record
// each microbatch occupies. version_plan.h states the rules; this file applies them device by
// device in program order.
#include <algorithm>
#include <vector>

#include "common/check.h"
#include "common/version_plan.h"

namespace pipecast::ir::internal {
namespace {

// Lowest-free-first slots. A new slot is created only when every existing one is in use, so
// the number created is the most ever in use at once.
class SlotPool {
 public:
  int32_t Take() {
    for (size_t i = 0; i < in_use_.size(); ++i) {
      if (!in_use_[i]) {
        in_use_[i] = 1;
        return static_cast<int32_t>(i);
      }
    }
    in_use_.push_back(1);
    return static_cast<int32_t>(in_use_.size() - 1);
  }
  void Give(int32_t slot) {
    PIPECAST_CHECK(slot >= 0 && slot < static_cast<int32_t>(in_use_.size()) && in_use_[slot])
        << "slot " << slot << " released twice";
    in_use_[slot] = 0;
  }
  int32_t peak() const { return static_cast<int32_t>(in_use_.size()); }

 private:
  std::vector<uint8_t> in_use_;
};

// A version of a stage saved into a copy slot, with the references that still need it.
struct SavedVersion {
  int32_t version;
  int32_t slot;
  int32_t refs;
};

// What a microbatch's forward used, for the backward that reuses it (@stash).
struct StashRef {
  enum class Kind : uint8_t { kNone, kVersion, kScratch } kind = Kind::kNone;
  WeightKey key;  // kVersion: a plain version (current then, maybe saved since); kScratch: slot
};

struct StageState {
  int32_t current_version = 0;
  int32_t current_refs = 0;  // stashes of the current version
  std::vector<SavedVersion> saved;
  SlotPool copies, records;
  std::vector<int32_t> record_of;  // per microbatch: record slot, or -1
  // Per version v: index of the last action that names v as 2BW's older buffer / explicitly.
  std::vector<int32_t> old_last, explicit_last;
  bool corrects = false;
};

// Everything about one device's program that the walk needs to know ahead.
struct Lookahead {
  std::vector<int32_t> counter;     // per action: Steps before it
  std::vector<int32_t> last_touch;  // per (stage, microbatch): last action using its record
  std::vector<uint8_t> stash_b;     // per (stage, microbatch): its B/I uses @stash
};

// Per (stage, microbatch, activation 0 / gradient 1): the Steps the receiving device has taken
// when it posts the receive of that message into the stage, or -1.
std::vector<int32_t> ReceiveSteps(const Program& p) {
  std::vector<int32_t> out(static_cast<size_t>(p.num_stages) * p.total_microbatches() * 2, -1);
  for (const std::vector<Action>& prog : p.devices) {
    int32_t n = 0;
    for (const Action& a : prog) {
      n += a.kind == ActionKind::kStep ? 1 : 0;
      if (a.kind != ActionKind::kRecvActivation && a.kind != ActionKind::kRecvGradient) continue;
      const size_t cell = static_cast<size_t>(a.stage) * p.total_microbatches() + a.microbatch;
      out[cell * 2 + (a.kind == ActionKind::kRecvGradient ? 1 : 0)] = n;
    }
  }
  return out;
}

// With MethodOptions::records_until_step (WPipe), a record whose last action sends to another
// device goes back to the pool only once the sender has taken `release_after` Steps: its next
// Step, or the Step after the receiver's count at the receive if that is later (the second
// group's first stage sends its gradients to the first group's last stage, which takes them one
// window later). Sends hand over the record itself, so a microbatch opening it earlier would
// wait (Reuse) for a receive that the receiver posts only after work waiting on that
// microbatch's own data. Every input of a WPipe window comes from the same or an earlier window,
// so a receive of window w is always posted before its sender needs the record in window w + 1.
struct DeferredRecord {
  int32_t stage;
  int32_t slot;
  int32_t release_after;
};

class DevicePlanner {
 public:
  DevicePlanner(const Program& p, int32_t device, VersionPlan& plan,
                const std::vector<int32_t>& receive_steps)
      : p_(p),
        d_(device),
        prog_(p.devices[device]),
        out_(plan.devices[device]),
        total_(p.total_microbatches()),
        receive_steps_(receive_steps),
        stages_(p.num_stages),
        stash_(Cells()) {}

  void Run();
  const std::vector<StageState>& stages() const { return stages_; }

 private:
  size_t Cells() const { return static_cast<size_t>(p_.num_stages) * total_; }
  size_t Cell(int32_t stage, int32_t mb) const { return static_cast<size_t>(stage) * total_ + mb; }
  bool OnDevice(int32_t stage) const {
    return stage >= 0 && stage < p_.num_stages && p_.holds(d_, stage);
  }
  void Scan();
  void Emit(WeightOpKind kind, int32_t stage, int32_t slot, int32_t value) {
    out_.ops.push_back({kind, stage, slot, value});
  }
  SavedVersion* FindSaved(int32_t stage, int32_t version);
  void Unref(int32_t stage, int32_t version);
  int32_t OpenRecord(int32_t stage, int32_t mb, bool* opened);
  void PlanStep(int32_t i);
  // For an action that closes its record after `steps` Steps: the Steps after which the record
  // may be reused (DeferredRecord), or -1 for at once.
  int32_t HoldUntil(const Action& a, int32_t steps) const;
  // Gives back the deferred records whose release comes after `steps` Steps.
  void ReleaseDeferred(int32_t steps);
  WeightKey Resolve(int32_t i, const Action& a, bool* scratch);
  void PlanCompute(int32_t i, const Action& a, PlannedAction& pa);

  const Program& p_;
  const int32_t d_;
  const std::vector<Action>& prog_;
  DevicePlan& out_;
  const int32_t total_;
  const std::vector<int32_t>& receive_steps_;
  std::vector<DeferredRecord> deferred_;
  std::vector<StageState> stages_;
  std::vector<StashRef> stash_;
  Lookahead ahead_;
};

void DevicePlanner::Scan() {
  const size_t len = prog_.size();
  ahead_.counter.assign(len, 0);
  ahead_.last_touch.assign(Cells(), -1);
  ahead_.stash_b.assign(Cells(), 0);
  int32_t steps = 0;
  for (const Action& a : prog_) steps += a.kind == ActionKind::kStep;
  for (int32_t s = 0; s < p_.num_stages; ++s) {
    if (!OnDevice(s)) continue;
    stages_[s].record_of.assign(total_, -1);
    stages_[s].old_last.assign(steps + 1, -1);
    stages_[s].explicit_last.assign(steps + 1, -1);
  }
  int32_t n = 0;
  for (size_t i = 0; i < len; ++i) {
    const Action& a = prog_[i];
    ahead_.counter[i] = n;
    if (a.kind == ActionKind::kStep) {
      ++n;
      continue;
    }
    if (IsCollective(a.kind)) continue;  // gradients or weights, no record
    const auto idx = static_cast<int32_t>(i);
    ahead_.last_touch[Cell(a.stage, a.microbatch)] = idx;
    if (!UsesWeights(a.kind)) continue;
    StageState& st = stages_[a.stage];
    const WeightRef& w = a.weights;
    if (w.source == WeightSource::kStashed && IsBackward(a.kind))
      ahead_.stash_b[Cell(a.stage, a.microbatch)] = 1;
    if (w.source == WeightSource::kBufferOlder && n >= 1) st.old_last[n - 1] = idx;
    if (w.source == WeightSource::kVersion && w.value >= 0 && w.value < n)
      st.explicit_last[w.value] = idx;
    if (w.source == WeightSource::kCorrected && w.value > 0) st.corrects = true;
  }
}

SavedVersion* DevicePlanner::FindSaved(int32_t stage, int32_t version) {
  for (SavedVersion& v : stages_[stage].saved)
    if (v.version == version) return &v;
  return nullptr;
}

// Drops one reference to `version` of `stage`; a saved copy nobody needs any more is released
// after the action being planned.
void DevicePlanner::Unref(int32_t stage, int32_t version) {
  StageState& st = stages_[stage];
  if (version == st.current_version) {
    PIPECAST_CHECK(st.current_refs > 0) << "stage " << stage << ": unbalanced stash";
    --st.current_refs;
    return;
  }
  SavedVersion* v = FindSaved(stage, version);
  PIPECAST_CHECK(v != nullptr) << "stage " << stage << ": version " << version << " not saved";
  if (--v->refs > 0) return;
  Emit(WeightOpKind::kRelease, stage, v->slot, 0);
  st.copies.Give(v->slot);
  *v = st.saved.back();
  st.saved.pop_back();
}

int32_t DevicePlanner::OpenRecord(int32_t stage, int32_t mb, bool* opened) {
  int32_t& slot = stages_[stage].record_of[mb];
  *opened = slot < 0;
  if (slot < 0) slot = stages_[stage].records.Take();
  return slot;
}

// Copy-on-step: before the device steps, every stage saves the version it is about to replace
// if a stash, 2BW's older buffer or a later explicit reference still needs it.
void DevicePlanner::PlanStep(int32_t i) {
  for (int32_t s = 0; s < p_.num_stages; ++s) {
    if (!OnDevice(s)) continue;
    StageState& st = stages_[s];
    const int32_t n = st.current_version;
    const bool old = st.old_last[n] >= 0;
    const bool kept = st.explicit_last[n] > i;
    const int32_t refs = st.current_refs + (old ? 1 : 0) + (kept ? 1 : 0);
    if (refs > 0) {
      const int32_t slot = st.copies.Take();
      Emit(WeightOpKind::kSaveCurrent, s, slot, 0);
      st.saved.push_back({n, slot, refs});
    }
    st.current_refs = 0;
    ++st.current_version;
  }
}

// The weights action `i` uses; emits the op that computes a scratch copy. *scratch is set when
// the key is such a copy (released after its last use).
WeightKey DevicePlanner::Resolve(int32_t i, const Action& a, bool* scratch) {
  StageState& st = stages_[a.stage];
  const int32_t n = st.current_version;
  const int32_t value = a.weights.value;
  *scratch = false;
  auto saved = [&](int32_t version, WeightOrigin origin) {
    const SavedVersion* v = FindSaved(a.stage, version);
    PIPECAST_CHECK(v != nullptr) << "device " << d_ << " action " << i << " ("
                                 << ActionToken(a, true) << "): version " << version
                                 << " was not kept";
    return WeightKey{version, 0, origin, v->slot};
  };
  auto computed = [&](WeightOpKind kind, WeightOrigin origin) {
    const int32_t slot = st.copies.Take();
    Emit(kind, a.stage, slot, value);
    *scratch = true;
    return WeightKey{n, value, origin, slot};
  };
  switch (a.weights.source) {
    case WeightSource::kCurrent:
    case WeightSource::kBufferNewer:
      return {n, 0, WeightOrigin::kCurrent, kCurrentWeights};
    case WeightSource::kBufferOlder:
      if (n == 0) return {0, 0, WeightOrigin::kOlderBuffer, kCurrentWeights};
      return saved(n - 1, WeightOrigin::kOlderBuffer);
    case WeightSource::kPredicted:
      if (value <= 0) return {n, 0, WeightOrigin::kCurrent, kCurrentWeights};
      return computed(WeightOpKind::kPredict, WeightOrigin::kPrediction);
    case WeightSource::kCorrected:
      if (value <= 0) return {n, 0, WeightOrigin::kCurrent, kCurrentWeights};
      return computed(WeightOpKind::kCorrect, WeightOrigin::kCorrection);
    case WeightSource::kVersion:
      PIPECAST_CHECK(value >= 0 && value <= n)
          << "device " << d_ << " action " << i << ": version " << value << " is in the future";
      if (value == n) return {n, 0, WeightOrigin::kExplicitVersion, kCurrentWeights};
      return saved(value, WeightOrigin::kExplicitVersion);
    case WeightSource::kStashed: {
      if (a.kind == ActionKind::kForward) return {n, 0, WeightOrigin::kCurrent, kCurrentWeights};
      const StashRef& ref = stash_[Cell(a.stage, a.microbatch)];
      PIPECAST_CHECK(ref.kind != StashRef::Kind::kNone)
          << "device " << d_ << " action " << i << ": stash before its forward";
      WeightKey key = ref.key;
      key.origin = WeightOrigin::kStash;
      if (ref.kind == StashRef::Kind::kVersion)
        key.slot = key.version == n ? kCurrentWeights : saved(key.version, key.origin).slot;
      return key;
    }
  }
  return {n, 0, WeightOrigin::kCurrent, kCurrentWeights};
}

void DevicePlanner::PlanCompute(int32_t i, const Action& a, PlannedAction& pa) {
  const size_t cell = Cell(a.stage, a.microbatch);
  pa.record = OpenRecord(a.stage, a.microbatch, &pa.opens_record);
  const int32_t next = a.kind == ActionKind::kForward ? a.stage + 1 : a.stage - 1;
  // The hand-over goes to the copy of `next` that runs this microbatch (its replica's).
  if ((a.kind == ActionKind::kForward || IsBackward(a.kind)) && OnDevice(next) &&
      p_.device_of(next, a.microbatch) == d_)
    pa.handoff_record = OpenRecord(next, a.microbatch, &pa.opens_handoff);
  if (!UsesWeights(a.kind)) return;
  bool scratch = false;
  pa.weights = Resolve(i, a, &scratch);
  StageState& st = stages_[a.stage];
  pa.before_end = static_cast<uint32_t>(out_.ops.size());
  pa.after_begin = pa.before_end;
  bool keep_scratch = false;
  if (a.kind == ActionKind::kForward && ahead_.stash_b[cell]) {
    StashRef& ref = stash_[cell];
    ref.key = pa.weights;
    if (scratch) {
      ref.kind = StashRef::Kind::kScratch;
      keep_scratch = true;
    } else {
      ref.kind = StashRef::Kind::kVersion;
      if (pa.weights.version == st.current_version) {
        ++st.current_refs;
      } else {
        ++FindSaved(a.stage, pa.weights.version)->refs;
      }
    }
  }
  if (scratch && !keep_scratch) {
    Emit(WeightOpKind::kRelease, a.stage, pa.weights.slot, 0);
    st.copies.Give(pa.weights.slot);
  }
  const int32_t n = ahead_.counter[i];
  const WeightSource src = a.weights.source;
  if (src == WeightSource::kStashed && IsBackward(a.kind)) {
    StashRef& ref = stash_[cell];
    if (ref.kind == StashRef::Kind::kScratch) {
      Emit(WeightOpKind::kRelease, a.stage, ref.key.slot, 0);
      st.copies.Give(ref.key.slot);
    } else {
      Unref(a.stage, ref.key.version);
    }
    ref.kind = StashRef::Kind::kNone;
  }
  if (src == WeightSource::kBufferOlder && n >= 1 && st.old_last[n - 1] == i) Unref(a.stage, n - 1);
  if (src == WeightSource::kVersion && a.weights.value < n &&
      st.explicit_last[a.weights.value] == i)
    Unref(a.stage, a.weights.value);
}

int32_t DevicePlanner::HoldUntil(const Action& a, int32_t steps) const {
  if (!p_.options.records_until_step) return -1;
  if (a.kind != ActionKind::kSendActivation && a.kind != ActionKind::kSendGradient) return -1;
  const bool grad = a.kind == ActionKind::kSendGradient;
  const int32_t to = grad ? a.stage - 1 : a.stage + 1;
  if (OnDevice(to)) return -1;
  return std::max(steps, receive_steps_[Cell(to, a.microbatch) * 2 + (grad ? 1 : 0)]) + 1;
}

void DevicePlanner::ReleaseDeferred(int32_t steps) {
  for (size_t k = 0; k < deferred_.size();) {
    if (deferred_[k].release_after > steps) {
      ++k;
      continue;
    }
    stages_[deferred_[k].stage].records.Give(deferred_[k].slot);
    deferred_[k] = deferred_.back();
    deferred_.pop_back();
  }
}

void DevicePlanner::Run() {
  Scan();
  out_.actions.assign(prog_.size(), PlannedAction{});
  for (size_t i = 0; i < prog_.size(); ++i) {
    const Action& a = prog_[i];
    PlannedAction& pa = out_.actions[i];
    const auto idx = static_cast<int32_t>(i);
    pa.before_begin = static_cast<uint32_t>(out_.ops.size());
    if (a.kind == ActionKind::kStep) {
      PlanStep(idx);
      pa.before_end = pa.after_begin = pa.after_end = static_cast<uint32_t>(out_.ops.size());
      ReleaseDeferred(ahead_.counter[i] + 1);
      continue;
    }
    if (IsCollective(a.kind)) {  // no weight operations, no activation record
      pa.before_end = pa.after_begin = pa.after_end = pa.before_begin;
      continue;
    }
    if (IsCompute(a.kind)) {
      PlanCompute(idx, a, pa);
      if (!UsesWeights(a.kind)) pa.before_end = pa.after_begin = pa.before_begin;
    } else {
      pa.record = OpenRecord(a.stage, a.microbatch, &pa.opens_record);
      pa.before_end = pa.after_begin = pa.before_begin;
    }
    pa.after_end = static_cast<uint32_t>(out_.ops.size());
    if (ahead_.last_touch[Cell(a.stage, a.microbatch)] == idx) {
      pa.closes_record = true;
      StageState& st = stages_[a.stage];
      const int32_t hold = HoldUntil(a, ahead_.counter[i]);
      if (hold < 0) {
        st.records.Give(pa.record);
      } else {
        deferred_.push_back({a.stage, pa.record, hold});
      }
      st.record_of[a.microbatch] = -1;
    }
  }
}

}  // namespace

void PlanExecution(const Program& p, VersionPlan& plan) {
  plan.devices.assign(p.devices.size(), DevicePlan{});
  plan.buffers.assign(p.num_stages, StageBuffers{});
  const std::vector<int32_t> receive_steps =
      p.options.records_until_step ? ReceiveSteps(p) : std::vector<int32_t>{};
  for (int32_t d = 0; d < static_cast<int32_t>(p.devices.size()); ++d) {
    DevicePlanner planner(p, d, plan, receive_steps);
    planner.Run();
    for (int32_t s = 0; s < p.num_stages; ++s) {
      if (!p.holds(d, s)) continue;
      // With replicas, every copy of the stage is sized for the most any copy needs.
      const StageState& st = planner.stages()[s];
      StageBuffers& b = plan.buffers[s];
      b.weight_copies = std::max(b.weight_copies, st.copies.peak());
      b.records = std::max(b.records, st.records.peak());
      b.velocity = b.velocity || st.corrects;
    }
  }
}

}  // namespace pipecast::ir::internal
