#include "common/version_plan.h"

#include <algorithm>
#include <utility>

#include "common/check.h"
#include "common/copy_set.h"

namespace pipecast::ir {
namespace {

// Records what an F (or a B/I) used: steps taken, version, horizon.
void Note(VersionRecord& r, ActionKind kind, int32_t counter, int32_t version, int32_t horizon) {
  if (kind == ActionKind::kForward) {
    r.f_counter = counter;
    r.f_version = version;
    r.f_horizon = horizon;
  } else {
    r.b_counter = counter;
    r.b_version = version;
    r.b_horizon = horizon;
  }
}

CopyKey KeyOf(WeightSource src, int32_t version, int32_t value) {
  switch (src) {
    case WeightSource::kPredicted:
      return {version, value > 0 ? value : 0};
    case WeightSource::kCorrected:
      return {version, value > 0 ? -value : 0};
    default:
      return {version, 0};
  }
}

// Groups the last stage's microbatches by the step that applies their gradients. The copies'
// steps of a program with all-reduces apply every copy's gradients; without one (AvgPipe's
// pipelines step on their own gradients) a step applies its own copy's only.
void LossDivisors(const Program& p, VersionPlan& t) {
  const int32_t total = t.total_microbatches;
  t.loss_divisor.assign(total, 1);
  if (p.num_stages < 1) return;
  const int32_t last = p.num_stages - 1;
  bool reduces = false;
  for (const auto& dev : p.devices)
    for (const Action& a : dev) reduces = reduces || a.kind == ActionKind::kAllReduce;
  const int32_t copies = reduces ? 1 : std::max(1, p.replicas);
  auto group_of = [&](int32_t j) {
    const int32_t step = std::max(0, t.At(last, j).applied_step);
    return static_cast<size_t>(step) * copies + (reduces ? 0 : p.replica_of(j));
  };
  std::vector<int32_t> group;  // per (applied step, copy) (step 0: never applied)
  for (int32_t j = 0; j < total; ++j) {
    if (group_of(j) >= group.size()) group.resize(group_of(j) + 1, 0);
    ++group[group_of(j)];
  }
  for (int32_t j = 0; j < total; ++j) t.loss_divisor[j] = std::max(1, group[group_of(j)]);
}

}  // namespace

VersionPlan BuildVersionPlan(const Program& p, PlanDetail detail) {
  const bool per_action_live = detail != PlanDetail::kRecords;
  VersionPlan t;
  t.num_stages = p.num_stages;
  t.total_microbatches = p.total_microbatches();
  t.records.assign(static_cast<size_t>(t.num_stages) * t.total_microbatches, VersionRecord{});
  const int32_t num_devices = static_cast<int32_t>(p.devices.size());
  t.live_versions_max.assign(num_devices, 0);
  t.live_versions_argmax.assign(num_devices, -1);
  t.steps.assign(num_devices, 0);
  t.uses_correction.assign(num_devices, 0);
  if (per_action_live) t.live_during.resize(num_devices);

  // Per (stage, mb): the key of the copy the F used, needed when the B uses the stash.
  // Both are allocated only if some B uses a stash.
  std::vector<CopyKey> f_key;
  std::vector<uint8_t> b_stashes;

  for (int32_t d = 0; d < num_devices; ++d) {
    const std::vector<Action>& prog = p.devices[d];
    const int32_t len = static_cast<int32_t>(prog.size());
    bool uses_stash = false, uses_2bw = false, uses_explicit = false;
    // Pre-pass: which microbatches' F must be kept for their B; last use of explicit versions.
    std::vector<int32_t> explicit_last_use;
    std::vector<uint8_t> older_used;  // per version: read later as 2BW's older buffer
    int32_t version = 0;              // the device's steps before action i
    for (int32_t i = 0; i < len; ++i) {
      const Action& a = prog[i];
      if (a.kind == ActionKind::kStep) ++version;
      // Current-weight actions need nothing here; keep that test cheap.
      if (a.weights.source == WeightSource::kCurrent || !UsesWeights(a.kind)) continue;
      const WeightSource src = a.weights.source;
      if (src == WeightSource::kStashed && IsBackward(a.kind)) {
        if (b_stashes.empty()) {
          b_stashes.assign(t.records.size(), 0);
          f_key.assign(t.records.size(), CopyKey{-1, 0});
        }
        b_stashes[static_cast<size_t>(a.stage) * t.total_microbatches + a.microbatch] = 1;
        uses_stash = true;
      } else if (src == WeightSource::kBufferOlder || src == WeightSource::kBufferNewer) {
        uses_2bw = true;
        if (src == WeightSource::kBufferOlder && version >= 1) {
          if (older_used.size() < static_cast<size_t>(version)) older_used.resize(version, 0);
          older_used[version - 1] = 1;
        }
      } else if (src == WeightSource::kCorrected) {
        t.uses_correction[d] = 1;
      } else if (src == WeightSource::kVersion && a.weights.value >= 0 &&
                 a.weights.value <= len) {  // beyond any step count: invalid, never held
        uses_explicit = true;
        const auto v = static_cast<size_t>(a.weights.value);
        if (explicit_last_use.size() <= v) explicit_last_use.resize(v + 1, -1);
        explicit_last_use[v] = i;
      }
    }

    CopySet held;
    int32_t n = 0;
    held.Add({0, 0});  // the current weights
    // A device that never holds more than its current weights has 1 copy, plus 1 during an
    // action that uses a scratch copy (prediction or correction); that needs no per-action list.
    const bool simple = !uses_stash && !uses_2bw && !uses_explicit;
    const bool fill = per_action_live && !simple;
    if (fill) t.live_during[d].resize(len);
    for (int32_t i = 0; i < len; ++i) {
      const Action& a = prog[i];
      int32_t live = held.distinct();
      if (a.kind == ActionKind::kStep) {
        // The old current version stays alive if a stash, 2BW's older buffer or a later
        // explicit reference still needs it.
        held.Add({n + 1, 0});
        if (uses_2bw) {
          // Version n becomes the older buffer if a later action reads it as such (the
          // executor keeps no copy nothing reads); version n - 1 stops being it.
          auto read_later = [&](int32_t v) {
            return v >= 0 && static_cast<size_t>(v) < older_used.size() && older_used[v] != 0;
          };
          if (read_later(n)) held.Add({n, 0});
          if (n >= 1 && read_later(n - 1)) held.Remove({n - 1, 0});
        }
        if (uses_explicit && static_cast<size_t>(n) < explicit_last_use.size() &&
            explicit_last_use[n] > i) {
          held.Add({n, 0});  // retained for a later explicit reference
        }
        held.Remove({n, 0});
        ++n;
        ++t.steps[d];
        live = std::max(live, held.distinct());
      } else if (simple && UsesWeights(a.kind) &&
                 (a.weights.source == WeightSource::kCurrent ||
                  a.weights.source == WeightSource::kPredicted)) {
        // Fast path: only the current weights exist on this device (plus, while a predicting
        // action runs, its scratch copy); nothing else to track.
        VersionRecord& r =
            t.records[static_cast<size_t>(a.stage) * t.total_microbatches + a.microbatch];
        const int32_t horizon = a.weights.source == WeightSource::kPredicted ? a.weights.value : 0;
        Note(r, a.kind, n, n, horizon);
        if (horizon > 0) live = 2;
      } else if (UsesWeights(a.kind)) {
        const size_t idx = static_cast<size_t>(a.stage) * t.total_microbatches + a.microbatch;
        VersionRecord& r = t.records[idx];
        int32_t version = n;
        int32_t horizon = 0;
        const WeightSource src = a.weights.source;
        switch (src) {
          case WeightSource::kCurrent:
          case WeightSource::kBufferNewer:
            version = n;
            break;
          case WeightSource::kBufferOlder:
            version = std::max(0, n - 1);
            break;
          case WeightSource::kPredicted:
          case WeightSource::kCorrected:
            version = n;
            horizon = a.weights.value;
            break;
          case WeightSource::kVersion:
            version = a.weights.value;
            break;
          case WeightSource::kStashed:
            version = IsBackward(a.kind) ? r.f_version : n;
            horizon = IsBackward(a.kind) ? r.f_horizon : 0;
            break;
        }
        CopyKey key = KeyOf(src, version, horizon);
        if (src == WeightSource::kStashed && IsBackward(a.kind) && uses_stash) key = f_key[idx];
        if (version >= 0 && !held.Contains(key)) live = held.distinct() + 1;  // scratch copy
        const bool forward = a.kind == ActionKind::kForward;
        Note(r, a.kind, n, version, forward && src == WeightSource::kCorrected ? 0 : horizon);
        if (forward) {
          if (uses_stash) {
            f_key[idx] = key;
            if (b_stashes[idx] && version >= 0) held.Add(key);
          }
        } else {
          if (src == WeightSource::kStashed && uses_stash && r.f_version >= 0 &&
              f_key[idx].version >= 0) {
            held.Remove(f_key[idx]);
          }
        }
        // The last explicit reference to an old version releases it.
        if (src == WeightSource::kVersion && version >= 0 && version < n &&
            static_cast<size_t>(version) < explicit_last_use.size() &&
            explicit_last_use[version] == i) {
          held.Remove({version, 0});
        }
        live = std::max(live, held.distinct());
      }
      if (ProducesWeightGrad(a.kind)) {
        // Applied by the next Step on this device, if any; fixed up below.
        t.records[static_cast<size_t>(a.stage) * t.total_microbatches + a.microbatch].applied_step =
            -(n + 1) - 1;  // provisional marker: "pending after n steps"
      }
      if (fill) t.live_during[d][i] = live;
      if (live > t.live_versions_max[d]) {
        t.live_versions_max[d] = live;
        t.live_versions_argmax[d] = i;
      }
    }
    // A gradient produced after n Steps is applied by Step n + 1 if the device takes it.
    for (int32_t s = 0; s < p.num_stages; ++s) {
      if (!p.holds(d, s)) continue;
      for (int32_t j = 0; j < t.total_microbatches; ++j) {
        if (p.device_of(s, j) != d) continue;  // another replica's microbatch
        VersionRecord& r = t.At(s, j);
        if (r.applied_step <= -2) {
          const int32_t step = -(r.applied_step + 1);
          r.applied_step = step <= t.steps[d] ? step : -1;
        }
      }
    }
  }
  LossDivisors(p, t);
  if (detail == PlanDetail::kExecution) internal::PlanExecution(p, t);
  return t;
}

}  // namespace pipecast::ir
