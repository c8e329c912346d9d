#include "common/validate.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "common/format_text.h"
#include "common/lower.h"
#include "common/validate_internal.h"
#include "common/version_plan.h"

namespace pipecast::ir {
namespace {

using internal::Cell;
using internal::CommCell;
using internal::Loc;

// "1 microbatch", "2 microbatches": `word` plus "s", or "es" after "ch".
std::string Plural(int64_t n, const std::string& word) {
  const bool es = word.size() >= 2 && word.compare(word.size() - 2, 2, "ch") == 0;
  return std::to_string(n) + " " + word + (n == 1 ? "" : es ? "es" : "s");
}

// "0-3, 7, 9-10"; lists at most kMaxRanges ranges, then "... (N more)".
std::string FormatRanges(const std::vector<int32_t>& sorted) {
  constexpr size_t kMaxRanges = 10;
  std::string out;
  size_t ranges = 0;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (ranges == kMaxRanges) {
      return out + ", ... (" + std::to_string(sorted.size() - i) + " more)";
    }
    if (ranges++ > 0) out += ", ";
    out += std::to_string(sorted[i]);
    if (j > i) out += "-" + std::to_string(sorted[j]);
    i = j + 1;
  }
  return out;
}

class Validator {
 public:
  Validator(const Program& p, const ValidateOptions& options) : p_(p), options_(options) {}

  std::vector<Diagnostic> Run() {
    if (!CheckMetadata()) return std::move(out_);
    implicit_stage_ = ImplicitStages(p_);
    total_ = p_.total_microbatches();
    index_.num_stages = p_.num_stages;
    index_.total = total_;
    index_.cells.assign(static_cast<size_t>(p_.num_stages) * total_, Cell{});
    has_communication_ = HasCommunication(p_);
    if (has_communication_) index_.comm.assign(index_.cells.size(), CommCell{});
    CheckActions();
    CheckAllReduceGroups();
    CheckCompleteness();
    CheckOrder();
    CheckGradientsApplied();
    if (!structural_errors_) CheckReducedGradientsApplied();
    if (live_limits_ok_ && !structural_errors_ && !weight_errors_) CheckLiveVersions();
    if (has_communication_) {
      CheckCommunication();
      CheckLinkOrder();
    } else if (options_.implicit_link_order && !structural_errors_) {
      CheckImplicitLinkOrder();
    }
    if (!structural_errors_ && !missing_actions_) CheckCycles();
    return std::move(out_);
  }

 private:
  const Action& At(Loc l) const { return p_.devices[l.device][l.index]; }
  Cell& CellOf(int32_t stage, int32_t mb) {
    return index_.cells[static_cast<size_t>(stage) * total_ + mb];
  }
  CommCell& CommOf(int32_t stage, int32_t mb) {
    return index_.comm[static_cast<size_t>(stage) * total_ + mb];
  }

  std::string Token(int32_t d, int32_t i) const {
    const Action& a = p_.devices[d][i];
    return ActionToken(a, a.stage != implicit_stage_[d]);
  }
  std::string Where(Loc l) const {
    if (options_.describe) return options_.describe(l.device, l.index);
    return "device " + std::to_string(l.device) + " action " + std::to_string(l.index) + " (" +
           Token(l.device, l.index) + ")";
  }
  // "F3" / "2B3" style name of an action kind for a (stage, microbatch), with stage.
  static std::string Name(ActionKind kind, int32_t stage, int32_t mb) {
    return ActionToken({kind, stage, mb, {}}, true);
  }

  void Add(int32_t d, int32_t i, std::string message) {
    out_.push_back({d, i, Token(d, i), std::move(message)});
  }
  void Add(Loc l, std::string message) { Add(l.device, l.index, std::move(message)); }
  void AddDevice(int32_t d, std::string message) {
    out_.push_back({d, -1, "", std::move(message)});
  }
  void AddGlobal(std::string message) { out_.push_back({-1, -1, "", std::move(message)}); }

  // Counts, placement and per-device vectors. False when later checks cannot index safely; bad
  // max_live_versions only disable the live-version check.
  bool CheckMetadata() {
    bool ok = true;
    auto count = [&](const char* name, int64_t value, int64_t hi) {
      if (value < 1 || value > hi) {
        AddGlobal(std::string(name) + " must be in [1, " + std::to_string(hi) + "], got " +
                  std::to_string(value));
        ok = false;
      }
    };
    count("num_devices", p_.num_devices, kMaxCount);
    count("num_stages", p_.num_stages, kMaxCount);
    count("microbatches", p_.microbatches, kMaxCount);
    count("minibatches", p_.minibatches, kMaxCount);
    count("microbatch_size", p_.microbatch_size, kMaxMicrobatchSize);
    if (!ok) return false;
    const int64_t total = static_cast<int64_t>(p_.microbatches) * p_.minibatches;
    if (total > kMaxCount || total * p_.num_stages > kMaxCells) {
      AddGlobal("program too large: " + std::to_string(p_.num_stages) + " stages x " +
                std::to_string(total) + " microbatches exceeds the limits");
      return false;
    }
    count("replicas", p_.replicas, kMaxCount);
    if (!ok) return false;
    ok = CheckPlacement() && ok;
    if (p_.devices.size() != static_cast<size_t>(p_.num_devices)) {
      AddGlobal("program has " + std::to_string(p_.devices.size()) +
                " device programs but num_devices is " + std::to_string(p_.num_devices));
      ok = false;
    }
    if (!p_.max_live_versions.empty()) {
      if (p_.max_live_versions.size() != static_cast<size_t>(p_.num_devices)) {
        AddGlobal("max_live_versions has " + std::to_string(p_.max_live_versions.size()) +
                  " entries but there are " + Plural(p_.num_devices, "device"));
        live_limits_ok_ = false;
      } else {
        for (size_t d = 0; d < p_.max_live_versions.size(); ++d) {
          if (p_.max_live_versions[d] < 1) {
            AddDevice(static_cast<int32_t>(d), "max_live_versions must be >= 1, got " +
                                                   std::to_string(p_.max_live_versions[d]));
            live_limits_ok_ = false;
          }
        }
      }
    }
    return ok;
  }

  // placement covers every replica's stages with devices in range, a device holds at most one
  // copy of a stage, and microbatch_replica names replicas.
  bool CheckPlacement() {
    const size_t expected = static_cast<size_t>(p_.num_stages) * p_.replicas;
    if (p_.placement.size() != expected) {
      AddGlobal("placement has " + std::to_string(p_.placement.size()) + " entries but there are " +
                Plural(p_.num_stages, "stage") +
                (p_.replicas > 1 ? " x " + std::to_string(p_.replicas) + " replicas" : ""));
      return false;
    }
    bool ok = true;
    for (size_t i = 0; i < expected; ++i) {
      if (p_.placement[i] < 0 || p_.placement[i] >= p_.num_devices) {
        AddGlobal("placement[" + std::to_string(i) + "] = " + std::to_string(p_.placement[i]) +
                  " is not a device in [0, " + std::to_string(p_.num_devices) + ")");
        ok = false;
      }
    }
    if (!ok) return false;
    for (int32_t s = 0; s < p_.num_stages && p_.replicas > 1; ++s) {
      for (int32_t r = 1; r < p_.replicas; ++r) {
        const int32_t d = p_.device_of_replica(s, r);
        if (p_.replica_on(s, d) != r) {
          AddGlobal("device " + std::to_string(d) + " holds two copies of stage " +
                    std::to_string(s) + " (replicas " + std::to_string(p_.replica_on(s, d)) +
                    " and " + std::to_string(r) + "); place each replica's copy elsewhere");
          ok = false;
        }
      }
    }
    if (!p_.microbatch_replica.empty()) {
      if (p_.microbatch_replica.size() != static_cast<size_t>(p_.microbatches)) {
        AddGlobal("microbatch_replica has " + std::to_string(p_.microbatch_replica.size()) +
                  " entries but there are " + Plural(p_.microbatches, "microbatch") +
                  " per minibatch");
        return false;
      }
      for (size_t j = 0; j < p_.microbatch_replica.size(); ++j) {
        if (p_.microbatch_replica[j] < 0 || p_.microbatch_replica[j] >= p_.replicas) {
          AddGlobal("microbatch_replica[" + std::to_string(j) + "] = " +
                    std::to_string(p_.microbatch_replica[j]) + " is not a replica in [0, " +
                    std::to_string(p_.replicas) + ")");
          ok = false;
        }
      }
    }
    return ok;
  }

  // An all-reduce: a stage this device holds a copy of, a round >= 0, once per (stage, round)
  // and device.
  void CheckAllReduce(Loc at, const Action& a) {
    const std::string what = a.kind == ActionKind::kAverage ? "average" : "all-reduce";
    if (a.weights != WeightRef{}) Add(at, "an " + what + " takes no weight annotation");
    if (p_.replicas < 2) {
      Add(at, what + " in a program with one replica (nothing to reduce with)");
      structural_errors_ = true;
      return;
    }
    const int32_t r = p_.replica_on(a.stage, at.device);
    if (r < 0) {
      Add(at, what + " of stage " + std::to_string(a.stage) + " on device " +
                  std::to_string(at.device) + ", which holds no copy of it");
      structural_errors_ = true;
      return;
    }
    if (a.microbatch < 0 || a.microbatch >= total_) {
      Add(at, what + " round " + std::to_string(a.microbatch) + " out of range [0, " +
                  std::to_string(total_) + ")");
      structural_errors_ = true;
      return;
    }
    std::vector<Loc>& group = index_.all_reduce[{a.kind, a.stage, a.microbatch}];
    group.resize(static_cast<size_t>(p_.replicas));
    Record(group[r], at,
           what + " of stage " + std::to_string(a.stage) + " round " + std::to_string(a.microbatch));
  }

  // Every round of a stage's all-reduce has all its replicas, and each stage's rounds run in
  // order on every device.
  void CheckAllReduceGroups() {
    std::map<std::pair<ActionKind, int32_t>, int32_t> rounds;  // (kind, stage) -> rounds seen
    for (const auto& [key, group] : index_.all_reduce) {
      const auto [kind, stage, round] = key;
      const std::string what = kind == ActionKind::kAverage ? "average" : "all-reduce";
      int32_t& seen = rounds[{kind, stage}];
      if (round != seen) {
        for (const Loc& l : group)
          if (l.present()) {
            Add(l, what + " round " + std::to_string(round) + " of stage " +
                       std::to_string(stage) + " without round " + std::to_string(seen) +
                       " (rounds count 0, 1, 2, ... per stage)");
            break;
          }
        structural_errors_ = true;
      }
      seen = round + 1;
      for (int32_t r = 0; r < p_.replicas; ++r) {
        if (group[r].present()) continue;
        const Loc some = *std::find_if(group.begin(), group.end(),
                                       [](const Loc& l) { return l.present(); });
        Add(some, what + " of stage " + std::to_string(stage) + " round " +
                      std::to_string(round) + " has no participant on device " +
                      std::to_string(p_.device_of_replica(stage, r)) + " (replica " +
                      std::to_string(r) + "): every copy must take part");
        structural_errors_ = true;
      }
      for (const Loc& l : group) {
        if (!l.present()) continue;
        const auto prev = index_.all_reduce.find({kind, stage, round - 1});
        if (round == 0 || prev == index_.all_reduce.end()) continue;
        const Loc before = prev->second[static_cast<size_t>(&l - group.data())];
        if (before.present() && before.index > l.index)
          Add(l, what + " rounds of stage " + std::to_string(stage) + " out of order");
      }
    }
  }

  // Records `at` in `slot`; a second occurrence is a duplicate.
  void Record(Loc& slot, Loc at, const std::string& what) {
    if (slot.present()) {
      Add(at, "duplicate " + what + " (first at " + Where(slot) + ")");
      structural_errors_ = true;
      return;
    }
    slot = at;
  }

  // Per-action fields: step shape, ranges, placement, weight annotations, endpoints of sends
  // and receives. Fills index_.
  void CheckActions() {
    const int32_t last = p_.num_stages - 1;
    for (int32_t d = 0; d < p_.num_devices; ++d) {
      int32_t steps = 0;  // Steps taken before the current action: the device's version
      const std::vector<Action>& program = p_.devices[d];
      for (int32_t i = 0; i < static_cast<int32_t>(program.size()); ++i) {
        const Action& a = program[i];
        const Loc at{d, i};
        if (a.kind == ActionKind::kStep) {
          if (a.stage != -1 || a.microbatch != -1) {
            Add(at, "a step must have stage -1 and microbatch -1, got stage " +
                        std::to_string(a.stage) + " and microbatch " +
                        std::to_string(a.microbatch));
          }
          if (a.weights != WeightRef{}) Add(at, "a step takes no weight annotation");
          ++steps;
          continue;
        }
        if (a.stage < 0 || a.stage > last) {
          Add(at, "stage " + std::to_string(a.stage) + " out of range [0, " +
                      std::to_string(p_.num_stages) + ")");
          structural_errors_ = true;
          continue;
        }
        if (IsCollective(a.kind)) {
          CheckAllReduce(at, a);
          continue;
        }
        if (a.microbatch < 0 || a.microbatch >= total_) {
          Add(at, "microbatch " + std::to_string(a.microbatch) + " out of range [0, " +
                      std::to_string(total_) + ")");
          structural_errors_ = true;
          continue;
        }
        if (p_.device_of(a.stage, a.microbatch) != d) {
          Add(at, "stage " + std::to_string(a.stage) + " is placed on device " +
                      std::to_string(p_.device_of(a.stage, a.microbatch)) +
                      (p_.replicas > 1 ? " for microbatch " + std::to_string(a.microbatch) +
                                             " (replica " +
                                             std::to_string(p_.replica_of(a.microbatch)) + ")"
                                       : std::string()) +
                      ", not on device " + std::to_string(d));
          structural_errors_ = true;
        }
        CheckWeights(at, a, steps);
        const std::string of =
            " of stage " + std::to_string(a.stage) + " microbatch " + std::to_string(a.microbatch);
        Cell& cell = CellOf(a.stage, a.microbatch);
        switch (a.kind) {
          case ActionKind::kForward:
            Record(cell.forward, at, "F" + of);
            break;
          case ActionKind::kBackward:
          case ActionKind::kBackwardInput:
            Record(cell.backward, at, "backward" + of);
            break;
          case ActionKind::kWeightGrad:
            Record(cell.weight_grad, at, "W" + of);
            break;
          default:
            CheckEndpoint(at, a);
            break;
        }
      }
    }
  }

  // Weight annotations: only on F/B/I, values in range, stash only on backwards, explicit
  // versions not ahead of the device (`steps` Steps taken so far).
  void WeightError(Loc at, std::string message) {
    Add(at, std::move(message));
    weight_errors_ = true;
  }

  void CheckWeights(Loc at, const Action& a, int32_t steps) {
    const WeightRef& w = a.weights;
    if (!UsesWeights(a.kind)) {
      if (w != WeightRef{}) {
        WeightError(at, "weight annotation on a " + std::string(KindName(a.kind)) +
                            " (only F, B and I use weights)");
      }
      return;
    }
    const std::string name = "@" + std::string(WeightSourceName(w.source));
    switch (w.source) {
      case WeightSource::kPredicted:
      case WeightSource::kCorrected:
      case WeightSource::kVersion:
        if (w.value < 0)
          WeightError(at, name + " value must be >= 0, got " + std::to_string(w.value));
        break;
      default:
        if (w.value != 0) WeightError(at, name + " takes no value, got " + std::to_string(w.value));
        break;
    }
    if (w.source == WeightSource::kStashed) {
      if (a.kind == ActionKind::kForward) {
        WeightError(at,
                    "@stash applies to B and I only (a forward's weights are what gets stashed)");
      } else {
        stash_users_.push_back(at);
      }
    }
    if (w.source == WeightSource::kVersion && w.value > steps) {
      WeightError(at, "@v:" + std::to_string(w.value) + " is newer than device " +
                          std::to_string(at.device) + "'s current version " +
                          std::to_string(steps));
    }
  }

  // A send or receive must connect its stage to a neighbour on another device.
  void CheckEndpoint(Loc at, const Action& a) {
    const int32_t last = p_.num_stages - 1;
    const bool activation =
        a.kind == ActionKind::kSendActivation || a.kind == ActionKind::kRecvActivation;
    const bool send = a.kind == ActionKind::kSendActivation || a.kind == ActionKind::kSendGradient;
    // Activations flow to stage + 1, gradients to stage - 1.
    const int32_t peer = (activation == send) ? a.stage + 1 : a.stage - 1;
    if (peer < 0 || peer > last) {
      Add(at, std::string(KindName(a.kind)) + " of stage " + std::to_string(a.stage) +
                  " has no peer stage " + std::to_string(peer));
      structural_errors_ = true;
      return;
    }
    if (a.microbatch < 0 || a.microbatch >= total_) return;  // reported by the caller
    const int32_t here = p_.device_of(a.stage, a.microbatch);
    if (p_.device_of(peer, a.microbatch) == here) {
      Add(at, std::string(KindName(a.kind)) + " between stages " + std::to_string(a.stage) +
                  " and " + std::to_string(peer) + ", which are both on device " +
                  std::to_string(here));
      structural_errors_ = true;
      return;
    }
    CommCell& c = CommOf(a.stage, a.microbatch);
    const std::string what = Name(a.kind, a.stage, a.microbatch);
    switch (a.kind) {
      case ActionKind::kSendActivation:
        Record(c.send_activation, at, what);
        break;
      case ActionKind::kRecvActivation:
        Record(c.recv_activation, at, what);
        break;
      case ActionKind::kSendGradient:
        Record(c.send_gradient, at, what);
        break;
      default:
        Record(c.recv_gradient, at, what);
        break;
    }
  }

  // Every (stage, microbatch) has an F and a backward; W exactly when the backward is split.
  void CheckCompleteness() {
    for (int32_t s = 0; s < p_.num_stages; ++s) {
      std::vector<int32_t> no_forward, no_backward;
      for (int32_t j = 0; j < total_; ++j) {
        const Cell& c = CellOf(s, j);
        if (!c.forward.present()) no_forward.push_back(j);
        if (!c.backward.present()) no_backward.push_back(j);
        if (c.backward.present()) {
          const bool split = At(c.backward).kind == ActionKind::kBackwardInput;
          if (split && !c.weight_grad.present()) {
            Add(c.backward, "split backward I has no W: the weight gradient is never computed");
          } else if (!split && c.weight_grad.present()) {
            Add(c.weight_grad, "W of a full backward B (a split backward is I followed by W)");
          }
        } else if (c.weight_grad.present()) {
          Add(c.weight_grad, "W without a backward-input I");
        }
      }
      const int32_t d = p_.placement[s];
      const std::string stage = "stage " + std::to_string(s) + ": ";
      if (!no_forward.empty()) {
        AddDevice(d, stage + "no F for " +
                         Plural(static_cast<int64_t>(no_forward.size()), "microbatch") + " (" +
                         FormatRanges(no_forward) + ")");
        missing_actions_ = true;
      }
      if (!no_backward.empty()) {
        AddDevice(d, stage + "no backward (B or I) for " +
                         Plural(static_cast<int64_t>(no_backward.size()), "microbatch") + " (" +
                         FormatRanges(no_backward) + ")");
        missing_actions_ = true;
      }
    }
  }

  // On a device: F before B/I before W for the same (stage, microbatch); a stash needs its F
  // earlier on the same device.
  void CheckOrder() {
    for (const Cell& c : index_.cells) {
      if (c.forward.present() && c.backward.present() && c.forward.device == c.backward.device &&
          c.backward.index < c.forward.index) {
        Add(c.backward, "backward runs before its forward (" + Where(c.forward) + ")");
      }
      if (c.backward.present() && c.weight_grad.present() &&
          c.backward.device == c.weight_grad.device && c.weight_grad.index < c.backward.index) {
        Add(c.weight_grad, "W runs before its backward (" + Where(c.backward) + ")");
      }
    }
    for (Loc at : stash_users_) {
      const Action& a = At(at);
      const Loc f = CellOf(a.stage, a.microbatch).forward;
      if (!f.present() || f.device != at.device) {
        Add(at, "backward uses a stash but this microbatch's forward never ran on device " +
                    std::to_string(at.device));
      } else if (f.index > at.index) {
        Add(at, "backward uses a stash but this microbatch's forward runs only later (" + Where(f) +
                    ")");
      }
    }
  }

  // An all-reduce sums what its copy holds then: no weight gradient of the stage may come
  // between it and the device's next Step (the sum would miss it), and a Step must follow it.
  void CheckReducedGradientsApplied() {
    for (int32_t d = 0; d < p_.num_devices; ++d) {
      const std::vector<Action>& program = p_.devices[d];
      std::map<int32_t, int32_t> reduced;  // stage -> its all-reduce since the last Step
      for (int32_t i = 0; i < static_cast<int32_t>(program.size()); ++i) {
        const Action& a = program[i];
        if (a.kind == ActionKind::kStep) {
          reduced.clear();
        } else if (a.kind == ActionKind::kAllReduce) {
          reduced[a.stage] = i;
        } else if (ProducesWeightGrad(a.kind)) {
          if (const auto it = reduced.find(a.stage); it != reduced.end()) {
            Add(d, i,
                "weight gradient of stage " + std::to_string(a.stage) +
                    " taken after this copy's all-reduce (" + Where({d, it->second}) +
                    ") and before the Step: the reduced gradient would miss it; move the "
                    "all-reduce after the stage's last backward");
          }
        }
      }
      for (const auto& [stage, at] : reduced) {
        Add(d, at,
            "all-reduce of stage " + std::to_string(stage) +
                " with no Step after it: the reduced gradient is never applied");
      }
    }
  }

  // Every B or W is followed by a Step on its device.
  void CheckGradientsApplied() {
    for (int32_t d = 0; d < p_.num_devices; ++d) {
      const std::vector<Action>& program = p_.devices[d];
      int32_t first = -1, count = 0;
      for (int32_t i = static_cast<int32_t>(program.size()) - 1; i >= 0; --i) {
        if (program[i].kind == ActionKind::kStep) break;
        if (ProducesWeightGrad(program[i].kind)) {
          first = i;
          ++count;
        }
      }
      if (first < 0) continue;
      std::string message =
          "gradient never applied: no optimizer step S follows it on device " + std::to_string(d);
      if (count > 1) message += " (nor the " + Plural(count - 1, "later gradient action") + ")";
      Add(d, first, std::move(message));
    }
  }

  // Declared weight-version limits hold (static accounting, versions.h).
  void CheckLiveVersions() {
    if (p_.max_live_versions.empty()) return;
    const VersionPlan table = BuildVersionPlan(p_);
    for (int32_t d = 0; d < p_.num_devices; ++d) {
      const int32_t live = table.live_versions_max[d];
      if (live > p_.max_live_versions[d]) {
        Add(d, table.live_versions_argmax[d],
            "device holds " + Plural(live, "weight version") + " at once here, more than its " +
                "max_live_versions " + std::to_string(p_.max_live_versions[d]));
      }
    }
  }

  // One cross-device dependency: `producer` (on device `from`) must be followed by exactly one
  // `send`, `consumer` (on device `to`) preceded by exactly one matching `receive`.
  void CheckTransfer(Loc producer, Loc consumer, Loc send, Loc receive,
                     const std::string& send_name, const std::string& receive_name, int32_t from,
                     int32_t to) {
    if (send.present() && receive.present()) {
      if (producer.present() && producer.device == send.device && send.index < producer.index)
        Add(send, "sends before its producer ran (" + Where(producer) + ")");
      if (consumer.present() && consumer.device == receive.device && receive.index > consumer.index)
        Add(consumer, "runs before its receive " + receive_name + " (" + Where(receive) + ")");
    } else if (send.present()) {
      Add(send, "unmatched send: no " + receive_name + " on device " + std::to_string(to));
    } else if (receive.present()) {
      Add(receive, "unmatched receive: no " + send_name + " on device " + std::to_string(from));
    } else if (consumer.present() || producer.present()) {
      Add(consumer.present() ? consumer : producer,
          "needs a transfer from device " + std::to_string(from) + " to device " +
              std::to_string(to) + " but there is no " + send_name + "/" + receive_name + " pair");
    }
  }

  // Programs with sends/receives: every cross-device dependency has its pair.
  void CheckCommunication() {
    const int32_t last = p_.num_stages - 1;
    for (int32_t s = 0; s < p_.num_stages; ++s) {
      for (int32_t j = 0; j < total_; ++j) {
        const int32_t here = p_.device_of(s, j);
        const int32_t next = s < last ? p_.device_of(s + 1, j) : here;
        const int32_t prev = s > 0 ? p_.device_of(s - 1, j) : here;
        if (next != here) {
          CheckTransfer(CellOf(s, j).forward, CellOf(s + 1, j).forward,
                        CommOf(s, j).send_activation, CommOf(s + 1, j).recv_activation,
                        Name(ActionKind::kSendActivation, s, j),
                        Name(ActionKind::kRecvActivation, s + 1, j), here, next);
        }
        if (prev != here) {
          CheckTransfer(CellOf(s, j).backward, CellOf(s - 1, j).backward,
                        CommOf(s, j).send_gradient, CommOf(s - 1, j).recv_gradient,
                        Name(ActionKind::kSendGradient, s, j),
                        Name(ActionKind::kRecvGradient, s - 1, j), here, prev);
        }
      }
    }
  }

  // The receive matching a send, if any.
  Loc MatchingReceive(const Action& send) {
    if (send.kind == ActionKind::kSendActivation)
      return CommOf(send.stage + 1, send.microbatch).recv_activation;
    return CommOf(send.stage - 1, send.microbatch).recv_gradient;
  }

  // Sends on each directed link reach the receiver in the order it receives them (FIFO links).
  // Activations and gradients are separate channels of a link (the transports tag messages by
  // kind), so only messages of one kind keep their order; ZB-V's links carry both.
  void CheckLinkOrder() {
    // (from, to, gradient) -> (send index, receive index) in send order.
    std::map<std::tuple<int32_t, int32_t, bool>, std::vector<std::pair<int32_t, int32_t>>> links;
    for (int32_t d = 0; d < p_.num_devices; ++d) {
      const std::vector<Action>& program = p_.devices[d];
      for (int32_t i = 0; i < static_cast<int32_t>(program.size()); ++i) {
        const Action& a = program[i];
        if (a.kind != ActionKind::kSendActivation && a.kind != ActionKind::kSendGradient) continue;
        if (a.stage < 0 || a.stage >= p_.num_stages || a.microbatch < 0 || a.microbatch >= total_)
          continue;
        const Loc self = a.kind == ActionKind::kSendActivation
                             ? CommOf(a.stage, a.microbatch).send_activation
                             : CommOf(a.stage, a.microbatch).send_gradient;
        if (self.device != d || self.index != i) continue;  // invalid or duplicate: reported
        const Loc receive = MatchingReceive(a);
        if (receive.present()) {
          links[{d, receive.device, a.kind == ActionKind::kSendGradient}].push_back(
              {i, receive.index});
        }
      }
    }
    for (const auto& [link, pairs] : links) {
      const auto [from, to, gradient] = link;
      for (size_t k = 1; k < pairs.size(); ++k) {
        if (pairs[k].second < pairs[k - 1].second) {
          const Loc receive{to, pairs[k].second};
          const Loc earlier_send{from, pairs[k - 1].first};
          const Loc earlier_receive{to, pairs[k - 1].second};
          Add(from, pairs[k].first,
              "link " + std::to_string(from) + "->" + std::to_string(to) +
                  " out of order: received by " + Where(receive) + ", before the earlier send " +
                  Where(earlier_send) + " is received by " + Where(earlier_receive) +
                  "; a FIFO link deadlocks");
          break;
        }
      }
    }
  }

  // Reports one dependency cycle, if any (validate_cycles.cc).
  void CheckCycles() {
    const std::vector<Loc> cycle = internal::FindCycle(p_, index_);
    if (!cycle.empty()) Add(cycle.front(), "deadlock: dependency cycle " + DescribeCycle(cycle));
  }

  // Without sends and receives, the order of the transfers lowering would insert: on each
  // directed link, outputs leave in the sender's program order and must be needed in the same
  // order by the receiver, else the lowered program's FIFO link deadlocks.
  void CheckImplicitLinkOrder() {
    const int32_t last = p_.num_stages - 1;
    // (from, to, gradient) -> (producer index, consumer) in the sender's order.
    std::map<std::tuple<int32_t, int32_t, bool>, std::vector<std::pair<int32_t, Loc>>> links;
    for (int32_t d = 0; d < p_.num_devices; ++d) {
      const std::vector<Action>& program = p_.devices[d];
      for (int32_t i = 0; i < static_cast<int32_t>(program.size()); ++i) {
        const Action& a = program[i];
        Loc consumer;
        if (a.kind == ActionKind::kForward && a.stage < last) {
          consumer = CellOf(a.stage + 1, a.microbatch).forward;
        } else if (IsBackward(a.kind) && a.stage > 0) {
          consumer = CellOf(a.stage - 1, a.microbatch).backward;
        }
        if (consumer.present() && consumer.device != d) {
          links[{d, consumer.device, a.kind != ActionKind::kForward}].push_back({i, consumer});
        }
      }
    }
    for (const auto& [link, pairs] : links) {
      const auto [from, to, gradient] = link;
      for (size_t k = 1; k < pairs.size(); ++k) {
        if (pairs[k].second.index >= pairs[k - 1].second.index) continue;
        Add(from, pairs[k].first,
            "link " + std::to_string(from) + "->" + std::to_string(to) +
                " out of order: its output is needed by " + Where(pairs[k].second) +
                ", before the earlier output of " + Where({from, pairs[k - 1].first}) +
                " is needed by " + Where(pairs[k - 1].second) +
                "; with sends and receives inserted, a FIFO link deadlocks");
        break;
      }
    }
  }

  // "device 0 action 3 (B0) -> device 1 action 2 (F1) .. action 5 (B0) -> device 0 action 3
  // (B0)": runs of consecutive actions on one device are shortened to their ends.
  std::string DescribeCycle(const std::vector<Loc>& cycle) const {
    std::string out;
    for (size_t i = 0; i < cycle.size();) {
      size_t j = i;
      while (j + 1 < cycle.size() && cycle[j + 1].device == cycle[i].device &&
             cycle[j + 1].index == cycle[j].index + 1)
        ++j;
      out += Where(cycle[i]);
      if (j > i && options_.describe) {
        out += " .. " + options_.describe(cycle[j].device, cycle[j].index);
      } else if (j > i) {
        out += " .. action " + std::to_string(cycle[j].index) + " (" +
               Token(cycle[j].device, cycle[j].index) + ")";
      }
      out += " -> ";
      i = j + 1;
    }
    return out + Where(cycle.front());
  }

  const Program& p_;
  const ValidateOptions& options_;
  std::vector<Diagnostic> out_;
  std::vector<int32_t> implicit_stage_;
  int32_t total_ = 0;
  internal::CellIndex index_;     // the actions by stage and microbatch
  std::vector<Loc> stash_users_;  // B/I actions reading a stash
  bool has_communication_ = false;
  bool structural_errors_ = false;  // ranges, placement, duplicates, bad endpoints
  bool missing_actions_ = false;
  bool weight_errors_ = false;  // makes version accounting meaningless
  bool live_limits_ok_ = true;  // max_live_versions is empty or well-formed
};

}  // namespace

std::string Diagnostic::ToString() const {
  if (device < 0) return message;
  std::string out = "device " + std::to_string(device);
  if (action_index >= 0) out += ", action " + std::to_string(action_index) + " (" + token + ")";
  return out + ": " + message;
}

std::vector<Diagnostic> ValidateProgram(const Program& p, const ValidateOptions& options) {
  return Validator(p, options).Run();
}

Status ValidationStatus(const std::vector<Diagnostic>& diagnostics, std::string_view what) {
  if (diagnostics.empty()) return Status::Ok();
  std::string message = std::string(what) + " is not a valid schedule (" +
                        Plural(static_cast<int64_t>(diagnostics.size()), "problem") + "):";
  for (const Diagnostic& d : diagnostics) message += "\n  " + d.ToString();
  return Status(StatusCode::kInvalidSchedule, std::move(message));
}

}  // namespace pipecast::ir
