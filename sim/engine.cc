// The event pass (engine.h): devices run in program order until their next action waits for
// data; the producer's completion wakes them. Flat arrays indexed by stage * microbatches +
// microbatch, no allocation per action, one visit per action.
#include "sim/engine.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <tuple>
#include <string>
#include <utility>
#include <type_traits>
#include <vector>

#include "common/check.h"
#include "common/compact_program.h"
#include "common/lower.h"
#include "common/version_plan.h"
#include "sim/engine_costs.h"
#include "sim/engine_state.h"
#include "sim/engine_versions.h"

namespace pipecast::sim {
namespace {

using internal::DeviceCopies;
using internal::DeviceCosts;
using internal::DeviceRun;
using internal::EngineCosts;
using internal::ForwardVersion;
using internal::StageTimes;
using internal::StashRecord;
using internal::VersionTally;
using ir::Action;
using ir::ActionKind;
using ir::WeightSource;

// Weight sources the fast level handles (the device holds only its current weights); any other
// source sends the run to the full level.
constexpr uint32_t kFastSources = (1u << static_cast<uint32_t>(WeightSource::kCurrent)) |
                                  (1u << static_cast<uint32_t>(WeightSource::kPredicted));

// A large array obtained with calloc: its pages come zeroed from the OS and are touched only when
// used, so "unknown" is encoded as all-zero bytes and needs no initialising pass.
template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  bool Allocate(size_t n) {
    data_.reset(static_cast<T*>(std::calloc(std::max<size_t>(n, 1), sizeof(T))));
    return data_ != nullptr;
  }
  T& operator[](size_t i) { return data_[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T[], Free> data_;
};

// Where each stage's data goes: the devices of its neighbours and the links to them.
struct StageLinks {
  int32_t next_device = -1;  // device of stage + 1 (-1 for the last stage)
  int32_t prev_device = -1;  // device of stage - 1 (-1 for stage 0)
  int32_t next_link = -1;    // index of the link to next_device, -1 when on the same device
  int32_t prev_link = -1;
};

enum class Flow { kNext, kBlocked, kAbort };

// One round of one stage's all-reduce: it starts when the last replica issued it and every
// participant's collective channel is free, and lasts the ring all-reduce time.
struct Collective {
  int32_t arrived = 0;
  TimeNs issued = 0;  // latest issue among the participants
  TimeNs start = 0;
  TimeNs end = -1;    // -1 until every participant issued it
  std::vector<int32_t> waiters;                   // devices whose Step waits for it
  std::vector<std::pair<int32_t, size_t>> calls;  // (device, action) of each participant
};

// A device that waits for a collective (waiting_ otherwise holds a slot).
constexpr int64_t kWaitsForCollective = -2;

class Engine {
 public:
  // `full`: the full version level. `lowered`: the program has sends and receives; when false,
  // the engine derives the transfers and stops at the first send or receive it meets. `packed`:
  // the actions in the compact encoding (ir::CompactProgram; `p` then has no actions), for the
  // fast level with derived transfers and no timeline.
  Engine(const ir::Program& p, const CostModel& cost, bool record, bool full, bool lowered,
         const std::vector<std::vector<uint64_t>>* packed = nullptr)
      : p_(p), cost_(cost), record_(record), full_(full), implicit_(!lowered), packed_(packed) {}

  Status Prepare();
  // False when the pass stopped early: an overflow (status()), a weight source that needs the
  // full level (needs_full_level()) or, deriving transfers, a send or receive in the program
  // (needs_lowered()).
  bool Run();
  bool needs_full_level() const { return needs_full_; }
  bool needs_lowered() const { return needs_lowered_; }
  // True when every device ran its whole program (no deadlock).
  bool Finished() const {
    for (size_t d = 0; d < runs_.size(); ++d)
      if (runs_[d].cursor < DeviceSize(static_cast<int32_t>(d))) return false;
    return true;
  }
  const Status& status() const { return status_; }
  Result<SimResult> Finish();

 private:
  template <bool kImplicit, bool kRecord, bool kFull, bool kPacked = false>
  bool RunAll();
  template <bool kImplicit, bool kRecord, bool kFull, bool kPacked>
  bool RunDevice(int32_t d);
  size_t DeviceSize(int32_t d) const {
    return packed_ != nullptr ? (*packed_)[static_cast<size_t>(d)].size()
                              : p_.devices[static_cast<size_t>(d)].size();
  }
  template <bool kImplicit, bool kRecord, bool kFull>
  Flow Forward(int32_t d, size_t i, const Action& a, DeviceRun& st);
  template <bool kImplicit, bool kRecord, bool kFull>
  Flow Backward(int32_t d, size_t i, const Action& a, DeviceRun& st);
  template <bool kRecord, bool kFull>
  Flow WeightGrad(int32_t d, size_t i, const Action& a, DeviceRun& st);
  template <bool kRecord, bool kFull>
  Flow OptimizerStep(int32_t d, size_t i, DeviceRun& st);
  template <bool kImplicit, bool kRecord>
  Flow Communication(int32_t d, size_t i, const Action& a, DeviceRun& st);
  template <bool kRecord>
  Flow AllReduce(int32_t d, size_t i, const Action& a, DeviceRun& st);
  // A collective the device waits for (an average, or an all-reduce with blocking collectives):
  // until every copy has joined and the exchange of `duration` ends.
  template <bool kRecord>
  Flow Blocking(int32_t d, size_t i, const Action& a, DeviceRun& st, TimeNs duration);
  // Completes the collective once every replica has issued it, waking the Steps that wait.
  template <bool kRecord>
  bool CompleteCollective(int32_t d, size_t i, int32_t stage, TimeNs duration,
                          struct Collective& c);
  // The Step of device d waits for the all-reduces it issued since its last Step; `*ready` is
  // when the last of them ends (kNext), or the device parks on one that has not (kBlocked).
  Flow AwaitCollectives(int32_t d, TimeNs* ready);
  // The copy that runs the action's microbatch, as replica × stages + stage: what its links
  // and its costs are indexed by.
  size_t CopyOf(const Action& a) const {
    return p_.replicas == 1
               ? static_cast<size_t>(a.stage)
               : static_cast<size_t>(p_.replica_of(a.microbatch)) * p_.num_stages + a.stage;
  }
  const StageLinks& LinksOf(const Action& a) const { return links_of_[CopyOf(a)]; }
  template <bool kRecord>
  Flow Send(int32_t d, size_t i, const Action& a, DeviceRun& st);
  template <bool kRecord>
  Flow Receive(int32_t d, size_t i, const Action& a, DeviceRun& st);

  // Waits for slot's data, or parks device d on it (kBlocked); `*start` is when the consumer
  // may start. `link`: the link the data arrives on (-1 from the same device).
  template <bool kImplicit>
  Flow Await(int32_t d, size_t i, size_t slot, int32_t link, DeviceRun& st, TimeNs* start);
  // The data of a cross-device dependency leaves device d after `produced` on link `link`.
  template <bool kRecord>
  // `copy`: the sending stage's copy (CopyOf), whose message it is.
  bool Transfer(int32_t d, size_t i, DeviceRun& st, TimeNs produced, size_t copy, int32_t link,
                int32_t dst, size_t to_slot);
  // The device spends `overhead` from `start` on a send or receive.
  bool Overhead(DeviceRun& st, TimeNs start, TimeNs overhead);
  // Device time [start, start + dur) of a compute action or step holding `live` weight copies;
  // `*total` is the device's memory while it runs.
  template <bool kRecord>
  bool Account(int32_t d, size_t i, DeviceRun& st, TimeNs start, TimeNs dur, int32_t live,
               TimeNs* end, int64_t* total);
  // Records that the simulated `what` (time, memory, ...) of action i of device d overflows.
  bool Overflow(int32_t d, size_t i, const char* what);
  Flow Abort(int32_t d, size_t i, const char* what) {
    Overflow(d, i, what);
    return Flow::kAbort;
  }
  void Deliver(size_t slot, TimeNs t, int32_t consumer);
  size_t Slot(const Action& a) const {
    return static_cast<size_t>(a.stage) * total_ + static_cast<size_t>(a.microbatch);
  }

  const ir::Program& p_;
  const CostModel& cost_;
  const bool record_;
  const bool full_;
  const bool implicit_;  // no sends/receives in the program: the engine derives the transfers
  const std::vector<std::vector<uint64_t>>* packed_;
  bool needs_full_ = false;
  bool needs_lowered_ = false;
  Status status_;
  size_t total_ = 0;  // microbatches of all minibatches
  int32_t last_stage_ = 0;
  EngineCosts costs_;
  std::vector<StageLinks> links_of_;
  std::vector<TimeNs> link_free_;
  // ready_[slot] - 1: when the data the slot's next consumer needs is there (the activation for
  // the F, then the gradient for the B/I); 0 = not yet.
  ZeroedArray<uint64_t> ready_;
  ZeroedArray<ForwardVersion> forward_;
  std::vector<TimeNs> produced_;      // lowered programs: end of each slot's producer, for sends
  std::vector<StashRecord> stash_;    // full level, when some backward reads a stash
  std::vector<DeviceCopies> copies_;  // full level
  std::vector<DeviceRun> runs_;
  std::vector<MemoryBreakdown> peak_breakdown_;
  std::vector<VersionTally> tallies_;
  std::vector<int64_t> waiting_;  // the slot a parked device waits for, -1 if none
  std::vector<int32_t> ready_devices_;
  std::vector<TimeNs> minibatch_done_;
  // Backwards of stages below this one do not mark their minibatch's completion (WPipe: the
  // first group's, which end a window later; MethodOptions::completion_by_second_group).
  int32_t done_from_stage_ = 0;
  // Timeline (kRecord only).
  SimResult timeline_;
  std::vector<int32_t> recv_activation_, recv_gradient_;
  // All-reduces, by (stage, round); each device's collective channel and the all-reduces it
  // issued since its last Step.
  std::map<std::tuple<ActionKind, int32_t, int32_t>, Collective> collectives_;
  std::vector<TimeNs> collective_free_;
  std::vector<std::vector<Collective*>> pending_;
};

Status Engine::Prepare() {
  const int32_t num_devices = static_cast<int32_t>(p_.devices.size());
  total_ = static_cast<size_t>(p_.total_microbatches());
  last_stage_ = p_.num_stages - 1;
  const size_t slots = static_cast<size_t>(p_.num_stages) * total_;
  std::vector<uint8_t> uses_correction(static_cast<size_t>(num_devices), 0);
  if (full_) {
    copies_.resize(static_cast<size_t>(num_devices));
    bool stash = false;
    for (const auto& prog : p_.devices) {
      for (const Action& a : prog) {
        stash = stash || (a.weights.source == WeightSource::kStashed && ir::IsBackward(a.kind));
      }
    }
    if (stash) stash_.assign(slots, StashRecord{});
    for (int32_t d = 0; d < num_devices; ++d) {
      copies_[d].Prepare(p_.devices[d], p_.total_microbatches(), stash ? &stash_ : nullptr);
      uses_correction[d] = copies_[d].uses_correction() ? 1 : 0;
    }
  }
  Result<EngineCosts> costs = internal::ResolveCosts(p_, cost_, uses_correction);
  if (!costs.ok()) return costs.status();
  costs_ = std::move(*costs);

  // One link per directed device pair that exchanges data; links_of_ per (replica, stage).
  links_of_.resize(static_cast<size_t>(p_.num_stages) * p_.replicas);
  std::vector<std::vector<std::pair<int32_t, int32_t>>> link_index(num_devices);
  auto link = [&](int32_t from, int32_t to) {
    for (const auto& [dst, index] : link_index[from])
      if (dst == to) return index;
    link_index[from].push_back({to, static_cast<int32_t>(link_free_.size())});
    link_free_.push_back(0);
    return link_index[from].back().second;
  };
  for (int32_t r = 0; r < p_.replicas; ++r) {
    for (int32_t s = 0; s < p_.num_stages; ++s) {
      StageLinks& l = links_of_[static_cast<size_t>(r) * p_.num_stages + s];
      const int32_t d = p_.device_of_replica(s, r);
      if (s < last_stage_) l.next_device = p_.device_of_replica(s + 1, r);
      if (s > 0) l.prev_device = p_.device_of_replica(s - 1, r);
      if (l.next_device >= 0 && l.next_device != d) l.next_link = link(d, l.next_device);
      if (l.prev_device >= 0 && l.prev_device != d) l.prev_link = link(d, l.prev_device);
    }
  }
  collective_free_.assign(static_cast<size_t>(num_devices), 0);
  pending_.assign(static_cast<size_t>(num_devices), {});

  if (!ready_.Allocate(slots) || !forward_.Allocate(slots)) {
    return InvalidArgument("not enough memory for the simulation's " + std::to_string(slots) +
                           " stage-microbatch pairs");
  }
  if (!implicit_) produced_.assign(slots, -1);
  runs_.resize(static_cast<size_t>(num_devices));
  peak_breakdown_.resize(static_cast<size_t>(num_devices));
  tallies_.resize(static_cast<size_t>(num_devices));
  waiting_.assign(static_cast<size_t>(num_devices), -1);
  for (int32_t d = 0; d < num_devices; ++d) {
    runs_[d].live_max = DeviceSize(d) == 0 ? 0 : 1;
  }
  for (int32_t d = num_devices - 1; d >= 0; --d) ready_devices_.push_back(d);
  minibatch_done_.assign(static_cast<size_t>(p_.minibatches), 0);
  done_from_stage_ = p_.options.completion_by_second_group ? p_.num_stages / 2 : 0;
  if (record_) {
    PIPECAST_CHECK(!implicit_ || std::none_of(links_of_.begin(), links_of_.end(),
                                              [](const StageLinks& l) { return l.next_link >= 0; }))
        << "recording a timeline needs a lowered program (ir::InsertCommunication)";
    timeline_.timing.resize(static_cast<size_t>(num_devices));
    timeline_.memory.resize(static_cast<size_t>(num_devices));
    size_t sends = 0;
    for (int32_t d = 0; d < num_devices; ++d) {
      timeline_.timing[d].resize(p_.devices[d].size());
      timeline_.memory[d].reserve(p_.devices[d].size());
      for (const Action& a : p_.devices[d]) {
        sends += a.kind == ActionKind::kSendActivation || a.kind == ActionKind::kSendGradient;
      }
    }
    timeline_.transfers.reserve(sends);
  }
  return Status::Ok();
}

bool Engine::Overflow(int32_t d, size_t i, const char* what) {
  const ir::Action a =
      packed_ != nullptr ? ir::CompactProgram::Unpack((*packed_)[d][i]) : p_.devices[d][i];
  status_ = InvalidArgument(
      "the simulated " + std::string(what) + " at device " + std::to_string(d) + ", action " +
      std::to_string(i) + " (" + ir::ActionToken(a, true) +
      ") does not fit the simulator's int64 (about 292 years of nanoseconds, or 8 EiB): the "
      "costs are too large for this many microbatches");
  return false;
}

[[gnu::always_inline]] inline void Engine::Deliver(size_t slot, TimeNs t, int32_t consumer) {
  ready_[slot] = static_cast<uint64_t>(t) + 1;
  if (waiting_[consumer] == static_cast<int64_t>(slot)) {
    waiting_[consumer] = -1;
    ready_devices_.push_back(consumer);
  }
}

[[gnu::always_inline]] inline bool Engine::Overhead(DeviceRun& st, TimeNs start, TimeNs overhead) {
  if (__builtin_add_overflow(start, overhead, &st.free) ||
      __builtin_add_overflow(st.busy, overhead, &st.busy)) {
    return false;
  }
  if (st.first_start < 0) st.first_start = start;
  return true;
}

template <bool kRecord>
[[gnu::always_inline]] inline bool Engine::Transfer(int32_t d, size_t i, DeviceRun& st,
                                                    TimeNs produced, size_t copy, int32_t link,
                                                    int32_t dst, size_t to_slot) {
  TimeNs leaves = produced;
  if (cost_.link.send_overhead > 0) {  // the sender's device hands the message over
    if (!Overhead(st, std::max(st.free, produced), cost_.link.send_overhead)) {
      return Overflow(d, i, "send");
    }
    leaves = st.free;
  }
  TimeNs& link_free = link_free_[static_cast<size_t>(link)];
  const TimeNs t0 = std::max(leaves, link_free);
  TimeNs link_end = 0, arrival = 0;
  if (__builtin_add_overflow(t0, costs_.stages[copy].message, &link_end) ||
      __builtin_add_overflow(link_end, cost_.link.latency, &arrival)) {
    return Overflow(d, i, "transfer");
  }
  link_free = link_end;
  Deliver(to_slot, arrival, dst);
  if constexpr (kRecord) {
    timeline_.timing[d][i] = {t0, link_end};
    timeline_.transfers.push_back({d, dst, static_cast<int32_t>(i), -1, t0, link_end, arrival,
                                   costs_.stages[copy].message_bytes});
  }
  return true;
}

template <bool kRecord>
[[gnu::always_inline]] inline bool Engine::Account(int32_t d, size_t i, DeviceRun& st, TimeNs start,
                                                   TimeNs dur, int32_t live, TimeNs* end,
                                                   int64_t* total) {
  if (__builtin_add_overflow(start, dur, end) || __builtin_add_overflow(st.busy, dur, &st.busy)) {
    return Overflow(d, i, "time");
  }
  st.free = *end;
  if (st.first_start < 0) st.first_start = start;
  st.live_max = std::max(st.live_max, live);
  // Memory while the action runs: activations include this F's; weights as held now.
  const DeviceCosts& k = costs_.devices[d];
  int64_t weights = 0;
  if (__builtin_mul_overflow(k.weight_bytes, static_cast<int64_t>(live), &weights) ||
      __builtin_add_overflow(weights, k.fixed_bytes, total) ||
      __builtin_add_overflow(*total, st.activation_bytes, total)) {
    return Overflow(d, i, "memory");
  }
  if (*total > st.peak_memory) {
    st.peak_memory = *total;
    peak_breakdown_[d] = {weights, k.optimizer_bytes, k.gradient_bytes, st.activation_bytes,
                          k.extra_bytes};
  }
  if constexpr (kRecord) timeline_.timing[d][i] = {start, *end};
  return true;
}

template <bool kImplicit>
[[gnu::always_inline]] inline Flow Engine::Await(int32_t d, size_t i, size_t slot, int32_t link,
                                                 DeviceRun& st, TimeNs* start) {
  const uint64_t ready = ready_[slot];
  if (ready == 0) {
    waiting_[d] = static_cast<int64_t>(slot);
    return Flow::kBlocked;
  }
  const TimeNs t = static_cast<TimeNs>(ready - 1);
  // Deriving transfers, the receive right before the consumer is done here.
  if (kImplicit && link >= 0 && cost_.link.recv_overhead > 0 &&
      !Overhead(st, std::max(st.free, t), cost_.link.recv_overhead)) {
    return Abort(d, i, "receive");
  }
  *start = std::max(st.free, t);
  return Flow::kNext;
}

template <bool kImplicit, bool kRecord, bool kFull>
[[gnu::always_inline]] inline Flow Engine::Forward(int32_t d, size_t i, const Action& a,
                                                   DeviceRun& st) {
  const size_t slot = Slot(a);
  const StageTimes& s = costs_.stages[CopyOf(a)];
  const StageLinks& l = LinksOf(a);
  TimeNs start = st.free;
  if (a.stage > 0) {
    if (const Flow f = Await<kImplicit>(d, i, slot, l.prev_link, st, &start); f != Flow::kNext) {
      return f;
    }
    ready_[slot] = 0;  // consumed: the slot next holds the gradient for this stage's backward
  }
  int32_t live = 1;
  if constexpr (kFull) {
    StashRecord* stash = stash_.empty() ? nullptr : &stash_[slot];
    const DeviceCopies::Use use = copies_[d].Weights(a, i, st.steps, stash);
    if (stash != nullptr) {
      stash->version = use.version;
      stash->horizon = use.horizon;
    }
    forward_[slot] = {st.steps + 1, use.version + use.horizon};
    tallies_[d].Forward(use.horizon);
    live = use.live;
  } else {
    if (((kFastSources >> static_cast<uint32_t>(a.weights.source)) & 1) == 0) {
      needs_full_ = true;
      return Flow::kAbort;
    }
    const int32_t h = a.weights.source == WeightSource::kPredicted ? a.weights.value : 0;
    forward_[slot] = {st.steps + 1, st.steps + h};
    tallies_[d].Forward(h);
    live = h > 0 ? 2 : 1;
  }
  TimeNs dur = s.forward;
  if (a.weights.source == WeightSource::kPredicted &&
      __builtin_add_overflow(dur, s.predict, &dur)) {
    return Abort(d, i, "time");
  }
  if (__builtin_add_overflow(st.activation_bytes, s.activation_bytes, &st.activation_bytes)) {
    return Abort(d, i, "memory");
  }
  st.max_in_flight = std::max(st.max_in_flight, ++st.in_flight);
  TimeNs end = 0;
  int64_t total = 0;
  if (!Account<kRecord>(d, i, st, start, dur, live, &end, &total)) return Flow::kAbort;
  if constexpr (kRecord) timeline_.memory[d].push_back({start, total});
  if (a.stage < last_stage_) {
    if (l.next_device == d) {
      ready_[slot + total_] = static_cast<uint64_t>(end) + 1;
    } else if (kImplicit && !Transfer<kRecord>(d, i, st, end, CopyOf(a), l.next_link, l.next_device,
                                               slot + total_)) {
      return Flow::kAbort;
    }
  }
  if (!kImplicit) produced_[slot] = end;
  return Flow::kNext;
}

template <bool kImplicit, bool kRecord, bool kFull>
[[gnu::always_inline]] inline Flow Engine::Backward(int32_t d, size_t i, const Action& a,
                                                    DeviceRun& st) {
  const size_t slot = Slot(a);
  const StageTimes& s = costs_.stages[CopyOf(a)];
  const StageLinks& l = LinksOf(a);
  const bool full_backward = a.kind == ActionKind::kBackward;
  TimeNs start = st.free;
  if (a.stage < last_stage_) {
    if (const Flow f = Await<kImplicit>(d, i, slot, l.next_link, st, &start); f != Flow::kNext) {
      return f;
    }
  }
  const ForwardVersion f = forward_[slot];
  int32_t live = 1;
  if constexpr (kFull) {
    StashRecord* stash = stash_.empty() ? nullptr : &stash_[slot];
    const DeviceCopies::Use use = copies_[d].Weights(a, i, st.steps, stash);
    tallies_[d].Backward(f, st.steps, use.horizon);
    live = use.live;
  } else {
    if (((kFastSources >> static_cast<uint32_t>(a.weights.source)) & 1) == 0) {
      needs_full_ = true;
      return Flow::kAbort;
    }
    const int32_t h = a.weights.source == WeightSource::kPredicted ? a.weights.value : 0;
    tallies_[d].Backward(f, st.steps, h);
    live = h > 0 ? 2 : 1;
  }
  if (full_backward) tallies_[d].Gradient(f, st.steps);
  TimeNs dur = full_backward ? s.backward : s.backward_input;
  const TimeNs extra = a.weights.source == WeightSource::kPredicted   ? s.predict
                       : a.weights.source == WeightSource::kCorrected ? s.correct
                                                                      : 0;
  TimeNs end = 0;
  int64_t total = 0;
  if (__builtin_add_overflow(dur, extra, &dur)) {
    return Abort(d, i, "time");
  }
  if (!Account<kRecord>(d, i, st, start, dur, live, &end, &total)) return Flow::kAbort;
  const int64_t kept = full_backward ? 0 : s.activation_bytes_after_input_grad;
  if constexpr (kRecord) timeline_.memory[d].push_back({end, total - s.activation_bytes + kept});
  if (__builtin_add_overflow(st.activation_bytes, kept - s.activation_bytes,
                             &st.activation_bytes)) {
    return Abort(d, i, "memory");
  }
  if (full_backward) {
    --st.in_flight;
    if (a.stage >= done_from_stage_) {
      TimeNs& done = minibatch_done_[static_cast<size_t>(a.microbatch / p_.microbatches)];
      done = std::max(done, end);
    }
  }
  if (a.stage > 0) {
    if (l.prev_device == d) {
      ready_[slot - total_] = static_cast<uint64_t>(end) + 1;
    } else if (kImplicit && !Transfer<kRecord>(d, i, st, end, CopyOf(a), l.prev_link, l.prev_device,
                                               slot - total_)) {
      return Flow::kAbort;
    }
  }
  if (!kImplicit) produced_[slot] = end;
  return Flow::kNext;
}

template <bool kRecord, bool kFull>
[[gnu::always_inline]] inline Flow Engine::WeightGrad(int32_t d, size_t i, const Action& a,
                                                      DeviceRun& st) {
  const size_t slot = Slot(a);
  const StageTimes& s = costs_.stages[CopyOf(a)];
  tallies_[d].Gradient(forward_[slot], st.steps);
  int32_t live = 1;
  if constexpr (kFull) live = copies_[d].held();
  TimeNs end = 0;
  int64_t total = 0;
  if (!Account<kRecord>(d, i, st, st.free, s.backward_weight, live, &end, &total)) {
    return Flow::kAbort;
  }
  if constexpr (kRecord) {
    timeline_.memory[d].push_back({end, total - s.activation_bytes_after_input_grad});
  }
  st.activation_bytes -= s.activation_bytes_after_input_grad;
  --st.in_flight;
  if (a.stage >= done_from_stage_) {
    TimeNs& done = minibatch_done_[static_cast<size_t>(a.microbatch / p_.microbatches)];
    done = std::max(done, end);
  }
  return Flow::kNext;
}

Flow Engine::AwaitCollectives(int32_t d, TimeNs* ready) {
  *ready = 0;
  for (Collective* c : pending_[d]) {
    if (c->end < 0) {
      c->waiters.push_back(d);
      waiting_[d] = kWaitsForCollective;
      return Flow::kBlocked;
    }
    *ready = std::max(*ready, c->end);
  }
  pending_[d].clear();
  return Flow::kNext;
}

template <bool kRecord>
bool Engine::CompleteCollective(int32_t d, size_t i, int32_t stage, TimeNs duration,
                                Collective& c) {
  c.start = c.issued;
  for (int32_t r = 0; r < p_.replicas; ++r)
    c.start = std::max(c.start, collective_free_[p_.device_of_replica(stage, r)]);
  if (__builtin_add_overflow(c.start, duration, &c.end)) {
    c.end = -1;
    return Overflow(d, i, "all-reduce");
  }
  for (int32_t r = 0; r < p_.replicas; ++r)
    collective_free_[p_.device_of_replica(stage, r)] = c.end;
  for (int32_t w : c.waiters) {
    if (waiting_[w] == kWaitsForCollective) {
      waiting_[w] = -1;
      ready_devices_.push_back(w);
    }
  }
  if constexpr (kRecord) {
    for (const auto& [dev, index] : c.calls) timeline_.timing[dev][index] = {c.start, c.end};
  }
  return true;
}

template <bool kRecord>
Flow Engine::AllReduce(int32_t d, size_t i, const Action& a, DeviceRun& st) {
  if (cost_.blocking_collectives)
    return Blocking<kRecord>(d, i, a, st, costs_.stages[a.stage].all_reduce);
  // Issued on the device's collective channel: the device goes on computing meanwhile.
  Collective& c = collectives_[{a.kind, a.stage, a.microbatch}];
  c.issued = std::max(c.issued, std::max(st.free, collective_free_[d]));
  if constexpr (kRecord) c.calls.push_back({d, i});
  pending_[d].push_back(&c);
  if (++c.arrived == p_.replicas &&
      !CompleteCollective<kRecord>(d, i, a.stage, costs_.stages[a.stage].all_reduce, c))
    return Flow::kAbort;
  return Flow::kNext;
}

template <bool kRecord>
Flow Engine::Blocking(int32_t d, size_t i, const Action& a, DeviceRun& st, TimeNs duration) {
  Collective& c = collectives_[{a.kind, a.stage, a.microbatch}];
  // The device joins once; woken when the exchange completes, it runs this action again.
  if (std::find(c.waiters.begin(), c.waiters.end(), d) == c.waiters.end()) {
    c.waiters.push_back(d);
    c.issued = std::max(c.issued, std::max(st.free, collective_free_[d]));
    if constexpr (kRecord) c.calls.push_back({d, i});
    if (++c.arrived == p_.replicas && !CompleteCollective<kRecord>(d, i, a.stage, duration, c))
      return Flow::kAbort;
  }
  if (c.end < 0) {
    waiting_[d] = kWaitsForCollective;
    return Flow::kBlocked;
  }
  st.free = std::max(st.free, c.end);  // waiting, not busy: it counts as a bubble
  return Flow::kNext;
}

template <bool kRecord, bool kFull>
[[gnu::always_inline]] inline Flow Engine::OptimizerStep(int32_t d, size_t i, DeviceRun& st) {
  if (!pending_[d].empty()) {
    TimeNs reduced = 0;
    if (const Flow f = AwaitCollectives(d, &reduced); f != Flow::kNext) return f;
    st.free = std::max(st.free, reduced);
  }
  int32_t live = 1;
  bool saved = false;
  if constexpr (kFull) live = copies_[d].Step(static_cast<int32_t>(i), st.steps, &saved);
  tallies_[d].Step();
  ++st.steps;
  TimeNs end = 0;
  int64_t total = 0;
  const internal::DeviceCosts& k = costs_.devices[d];
  TimeNs duration = k.step;  // plus the copy-on-step save, checked like every other time
  if (saved && __builtin_add_overflow(k.step, k.save, &duration)) {
    Overflow(d, i, "time");
    return Flow::kAbort;
  }
  if (!Account<kRecord>(d, i, st, st.free, duration, live, &end, &total)) {
    return Flow::kAbort;
  }
  return Flow::kNext;
}

template <bool kRecord>
Flow Engine::Send(int32_t d, size_t i, const Action& a, DeviceRun& st) {
  const bool grad = a.kind == ActionKind::kSendGradient;
  const StageLinks& l = LinksOf(a);
  const size_t slot = Slot(a);
  const TimeNs produced = produced_[slot];
  PIPECAST_CHECK(produced >= 0) << "device " << d << " action " << i
                                << ": send before its producer";
  const bool ok = grad ? Transfer<kRecord>(d, i, st, produced, CopyOf(a), l.prev_link, l.prev_device,
                                           slot - total_)
                       : Transfer<kRecord>(d, i, st, produced, CopyOf(a), l.next_link, l.next_device,
                                           slot + total_);
  return ok ? Flow::kNext : Flow::kAbort;
}

template <bool kRecord>
Flow Engine::Receive(int32_t d, size_t i, const Action& a, DeviceRun& st) {
  const size_t slot = Slot(a);
  if (cost_.link.recv_overhead > 0) {  // the receiver's device picks the message up
    const uint64_t ready = ready_[slot];
    if (ready == 0) {
      waiting_[d] = static_cast<int64_t>(slot);
      return Flow::kBlocked;
    }
    const TimeNs r0 = std::max(st.free, static_cast<TimeNs>(ready - 1));
    if (!Overhead(st, r0, cost_.link.recv_overhead)) {
      return Abort(d, i, "receive");
    }
    if constexpr (kRecord) timeline_.timing[d][i] = {r0, st.free};
  }
  if constexpr (kRecord) {
    auto& index = a.kind == ActionKind::kRecvGradient ? recv_gradient_ : recv_activation_;
    if (index.empty()) index.assign(static_cast<size_t>(p_.num_stages) * total_, -1);
    index[slot] = static_cast<int32_t>(i);
  }
  return Flow::kNext;  // the consuming F/B waits for the data
}

template <bool kImplicit, bool kRecord>
Flow Engine::Communication(int32_t d, size_t i, const Action& a, DeviceRun& st) {
  if constexpr (kImplicit) {  // the program is lowered after all
    needs_lowered_ = true;
    return Flow::kAbort;
  } else {
    const bool send = a.kind == ActionKind::kSendActivation || a.kind == ActionKind::kSendGradient;
    return send ? Send<kRecord>(d, i, a, st) : Receive<kRecord>(d, i, a, st);
  }
}

template <bool kImplicit, bool kRecord, bool kFull, bool kPacked>
bool Engine::RunDevice(int32_t d) {
  const Action* prog = kPacked ? nullptr : p_.devices[d].data();
  const uint64_t* packed = kPacked ? (*packed_)[static_cast<size_t>(d)].data() : nullptr;
  const size_t len = DeviceSize(d);
  DeviceRun st = runs_[d];
  size_t i = st.cursor;
  Flow flow = Flow::kNext;
  for (; i < len && flow == Flow::kNext; ++i) {
    Action decoded;
    if constexpr (kPacked) decoded = ir::CompactProgram::Unpack(packed[i]);
    const Action& a = kPacked ? decoded : prog[i];
    switch (a.kind) {
      case ActionKind::kForward:
        flow = Forward<kImplicit, kRecord, kFull>(d, i, a, st);
        break;
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput:
        flow = Backward<kImplicit, kRecord, kFull>(d, i, a, st);
        break;
      case ActionKind::kWeightGrad:
        flow = WeightGrad<kRecord, kFull>(d, i, a, st);
        break;
      case ActionKind::kStep:
        flow = OptimizerStep<kRecord, kFull>(d, i, st);
        break;
      case ActionKind::kAllReduce:
        flow = AllReduce<kRecord>(d, i, a, st);
        break;
      case ActionKind::kAverage:
        flow = Blocking<kRecord>(d, i, a, st, costs_.stages[a.stage].average);
        break;
      case ActionKind::kSendActivation:
      case ActionKind::kSendGradient:
      case ActionKind::kRecvActivation:
      case ActionKind::kRecvGradient:
        flow = Communication<kImplicit, kRecord>(d, i, a, st);
        break;
    }
  }
  st.cursor = flow == Flow::kNext ? i : i - 1;
  runs_[d] = st;
  return flow != Flow::kAbort;
}

template <bool kImplicit, bool kRecord, bool kFull, bool kPacked>
bool Engine::RunAll() {
  while (!ready_devices_.empty()) {
    const int32_t d = ready_devices_.back();
    ready_devices_.pop_back();
    if (!RunDevice<kImplicit, kRecord, kFull, kPacked>(d)) return false;
  }
  return true;
}

bool Engine::Run() {
  if (packed_ != nullptr) {
    PIPECAST_CHECK(implicit_ && !record_ && !full_) << "packed programs run the fast pass only";
    return RunAll<true, false, false, true>();
  }
  if (implicit_) {
    return full_ ? RunAll<true, false, true>() : RunAll<true, false, false>();
  }
  if (record_) return full_ ? RunAll<false, true, true>() : RunAll<false, true, false>();
  return full_ ? RunAll<false, false, true>() : RunAll<false, false, false>();
}

Result<SimResult> Engine::Finish() {
  if (std::string deadlock = internal::DescribeDeadlock(p_, runs_); !deadlock.empty()) {
    return Status(StatusCode::kDeadlock, std::move(deadlock));
  }
  Result<SimResult> r = internal::AssembleResult(p_, cost_, costs_, runs_, peak_breakdown_,
                                                 tallies_, minibatch_done_);
  if (!r.ok() || !record_) return r;
  r->timing = std::move(timeline_.timing);
  r->transfers = std::move(timeline_.transfers);
  r->memory = std::move(timeline_.memory);
  internal::PairTransfers(p_, cost_.link.recv_overhead > 0, recv_activation_, recv_gradient_, *r);
  r->plan = ir::BuildVersionPlan(p_, ir::PlanDetail::kRecords);
  return r;
}

}  // namespace

Result<SimResult> Simulate(const ir::CompactProgram& program, const CostModel& cost) {
  PIPECAST_CHECK(static_cast<int32_t>(cost.stages.size()) == program.header.num_stages)
      << "cost model has " << cost.stages.size() << " stages, program "
      << program.header.num_stages;
  {
    Engine engine(program.header, cost, false, false, false, &program.devices);
    PIPECAST_RETURN_IF_ERROR(engine.Prepare());
    if (engine.Run() && engine.Finished()) return engine.Finish();
  }
  // The full version level, a deadlock or an overflow to describe: the expanded program says it.
  return Simulate(program.Expand(), cost, {.record_timeline = false});
}

Result<SimResult> Simulate(const ir::Program& p, const CostModel& cost, const SimOptions& options) {
  PIPECAST_CHECK(static_cast<int32_t>(cost.stages.size()) == p.num_stages)
      << "cost model has " << cost.stages.size() << " stages, program " << p.num_stages;
  // The fast level first, deriving transfers unless a timeline is asked for (which needs the
  // lowered program). A program with stashes, 2BW buffers, explicit versions or corrections is
  // found at its first such action and run again at the full level; a lowered one at its first
  // send or receive (a lowered program's second action or so) and run with its own transfers.
  bool full = false;
  bool lowered = options.record_timeline && ir::HasCommunication(p);
  while (true) {
    Engine engine(p, cost, options.record_timeline, full, lowered);
    PIPECAST_RETURN_IF_ERROR(engine.Prepare());
    if (engine.Run()) {
      Result<SimResult> r = engine.Finish();
      // Deriving transfers, a deadlocked lowered program may stop before any send: run it again
      // with its own sends and receives so the report names what it really waits for.
      if (!r.ok() && r.status().code() == StatusCode::kDeadlock && !lowered &&
          ir::HasCommunication(p)) {
        lowered = true;
        continue;
      }
      return r;
    }
    if (!engine.needs_full_level() && !engine.needs_lowered()) return engine.status();
    full = full || engine.needs_full_level();
    lowered = lowered || engine.needs_lowered();
  }
}

}  // namespace pipecast::sim
