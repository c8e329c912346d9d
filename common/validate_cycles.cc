// Dependency-cycle search for the validator (validate_internal.h): a dry run in dependency order.
#include <algorithm>
#include <map>
#include <tuple>
#include <vector>

#include "common/validate_internal.h"

namespace pipecast::ir::internal {
namespace {

class DryRun {
 public:
  DryRun(const Program& p, const CellIndex& index)
      : p_(p),
        x_(index),
        last_(p.num_stages - 1),
        cursor_(p.devices.size(), 0),
        waiting_(p.devices.size()),
        arrived_at_(p.devices.size(), -1) {}

  std::vector<Loc> Run() {
    std::vector<int32_t> ready;
    for (int32_t d = static_cast<int32_t>(p_.devices.size()) - 1; d >= 0; --d) ready.push_back(d);
    while (!ready.empty()) {
      const int32_t d = ready.back();
      ready.pop_back();
      Advance(d, ready);
    }
    return Cycle();
  }

 private:
  bool Done(Loc l) const { return cursor_[l.device] > l.index; }
  bool HasComm() const { return !x_.comm.empty(); }

  // The dependencies of action (d, i) besides program order, at most two.
  void Dependencies(const Action& a, Loc deps[2]) const {
    const int32_t s = a.stage, j = a.microbatch;
    switch (a.kind) {
      case ActionKind::kForward:
        if (s > 0) deps[0] = x_.At(s - 1, j).forward;
        if (s > 0 && HasComm()) deps[1] = x_.CommAt(s, j).recv_activation;
        break;
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput:
        deps[0] = s < last_ ? x_.At(s + 1, j).backward : x_.At(s, j).forward;
        if (s < last_ && HasComm()) deps[1] = x_.CommAt(s, j).recv_gradient;
        break;
      case ActionKind::kWeightGrad:
        deps[0] = x_.At(s, j).backward;
        break;
      case ActionKind::kSendActivation:
        deps[0] = x_.At(s, j).forward;
        break;
      case ActionKind::kSendGradient:
        deps[0] = x_.At(s, j).backward;
        break;
      case ActionKind::kRecvActivation:
        deps[0] = x_.CommAt(s - 1, j).send_activation;
        break;
      case ActionKind::kRecvGradient:
        deps[0] = x_.CommAt(s + 1, j).send_gradient;
        break;
      case ActionKind::kStep:
      case ActionKind::kAllReduce:  // rendezvous: Advance handles them
      case ActionKind::kAverage:
        break;
    }
  }

  // The all-reduce of a participant of the same round that has not reached its all-reduce yet,
  // or absent when all have (then the all-reduce runs).
  // A collective round's rendezvous: how many copies have reached it, where the search for one
  // that has not resumes (participants only ever arrive), and the devices waiting in it.
  struct Group {
    int32_t expected = -1;  // copies taking part (counted when the group is first reached)
    int32_t arrived = 0;
    size_t next_absent = 0;
    std::vector<int32_t> waiters;
  };

  // Device d at collective `a` (action `i`): counts it once, and true when every copy has come,
  // waking the others; else false with d waiting on a participant that has not (for Cycle()).
  // Linear over the round's participants in all: each arrival counts once, the search for an
  // absent one only moves forward.
  bool Rendezvous(int32_t d, int32_t i, const Action& a, std::vector<int32_t>& ready) {
    const auto key = std::make_tuple(a.kind, a.stage, a.microbatch);
    const auto locs = x_.all_reduce.find(key);
    if (locs == x_.all_reduce.end()) return true;
    Group& g = groups_[key];
    if (arrived_at_[d] != i) {
      arrived_at_[d] = i;
      ++g.arrived;
    }
    const std::vector<Loc>& all = locs->second;
    if (g.expected < 0) {
      g.expected = 0;
      for (const Loc& l : all) g.expected += l.present() ? 1 : 0;
    }
    if (g.arrived >= g.expected) {
      for (int32_t w : g.waiters) {
        waiting_[w] = Loc{};
        ready.push_back(w);
      }
      g.waiters.clear();
      return true;
    }
    while (g.next_absent < all.size() &&
           (!all[g.next_absent].present() ||
            cursor_[all[g.next_absent].device] >= all[g.next_absent].index))
      ++g.next_absent;
    waiting_[d] = g.next_absent < all.size() ? all[g.next_absent] : Loc{};
    g.waiters.push_back(d);
    return false;
  }

  // The actions that depend on `a` besides program order, at most three.
  void Dependents(const Action& a, Loc out[3]) const {
    const int32_t s = a.stage, j = a.microbatch;
    switch (a.kind) {
      case ActionKind::kForward:
        out[0] = s < last_ ? x_.At(s + 1, j).forward : x_.At(s, j).backward;
        if (s < last_ && HasComm()) out[1] = x_.CommAt(s, j).send_activation;
        break;
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput:
        if (s > 0) out[0] = x_.At(s - 1, j).backward;
        out[1] = x_.At(s, j).weight_grad;
        if (s > 0 && HasComm()) out[2] = x_.CommAt(s, j).send_gradient;
        break;
      case ActionKind::kSendActivation:
        out[0] = x_.CommAt(s + 1, j).recv_activation;
        break;
      case ActionKind::kSendGradient:
        out[0] = x_.CommAt(s - 1, j).recv_gradient;
        break;
      case ActionKind::kRecvActivation:
        out[0] = x_.At(s, j).forward;
        break;
      case ActionKind::kRecvGradient:
        out[0] = x_.At(s, j).backward;
        break;
      case ActionKind::kWeightGrad:
      case ActionKind::kStep:
      case ActionKind::kAllReduce:
      case ActionKind::kAverage:
        break;
    }
  }

  // Runs device d until an action waits for one that has not run, waking the devices that wait
  // for what it runs.
  void Advance(int32_t d, std::vector<int32_t>& ready) {
    const std::vector<Action>& prog = p_.devices[d];
    while (cursor_[d] < static_cast<int32_t>(prog.size())) {
      const Action& a = prog[cursor_[d]];
      if (IsCollective(a.kind)) {
        if (!Rendezvous(d, cursor_[d], a, ready)) return;
        ++cursor_[d];
        continue;
      }
      Loc deps[2];
      Dependencies(a, deps);
      for (const Loc& dep : deps) {
        if (dep.present() && !Done(dep)) {
          waiting_[d] = dep;
          return;
        }
      }
      const Loc self{d, cursor_[d]++};
      Loc dependents[3];
      Dependents(a, dependents);
      for (const Loc& z : dependents) {
        if (z.present() && waiting_[z.device] == self) {
          waiting_[z.device] = Loc{};
          ready.push_back(z.device);
        }
      }
    }
  }

  // Following the waits from the lowest stuck device closes a cycle x0 -> x1 -> ... -> x0, where
  // x_{m+1} holds the action x_m waits for. In dependency order the cycle runs on x0 from its
  // stuck action to the one x_{k-1} waits for, then on x_{k-1}, ..., then on x1 to the one x0
  // waits for.
  std::vector<Loc> Cycle() const {
    const int32_t devices = static_cast<int32_t>(p_.devices.size());
    int32_t start = -1;
    for (int32_t d = 0; d < devices && start < 0; ++d)
      if (cursor_[d] < static_cast<int32_t>(p_.devices[d].size())) start = d;
    if (start < 0) return {};
    std::vector<int32_t> position(static_cast<size_t>(devices), -1);
    std::vector<int32_t> order;
    for (int32_t d = start; position[d] < 0; d = waiting_[d].device) {
      position[d] = static_cast<int32_t>(order.size());
      order.push_back(d);
    }
    const std::vector<int32_t> x(order.begin() + position[waiting_[order.back()].device],
                                 order.end());
    const size_t k = x.size();
    std::vector<Loc> cycle;
    for (size_t m = 0; m < k; ++m) {
      const int32_t device = x[(k - m) % k];
      const Loc until = waiting_[x[(2 * k - m - 1) % k]];  // what the previous device waits for
      for (int32_t i = cursor_[device]; i <= until.index; ++i) cycle.push_back({device, i});
    }
    return cycle;
  }

  const Program& p_;
  const CellIndex& x_;
  const int32_t last_;
  std::vector<int32_t> cursor_;  // next action of each device
  std::vector<Loc> waiting_;     // what a stuck device waits for
  std::vector<int32_t> arrived_at_;  // per device: the collective it was last counted at
  std::map<std::tuple<ActionKind, int32_t, int32_t>, Group> groups_;
};

}  // namespace

std::vector<Loc> FindCycle(const Program& p, const CellIndex& index) {
  return DryRun(p, index).Run();
}

}  // namespace pipecast::ir::internal
