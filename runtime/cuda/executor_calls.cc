// ExecutorCalls (transport_order.h): the transport calls of runtime/executor.cc, replayed.
#include <map>
#include <utility>

#include "common/check.h"
#include "runtime/cuda/transport_order.h"

namespace pipecast::runtime::cuda {
namespace {

using ir::Action;
using ir::ActionKind;
using Kind = MessageKey::Kind;
using Op = TransportCall::Op;

// One device's calls, built in the executor's order (DeviceWorker in runtime/executor.cc).
class CallReplay {
 public:
  CallReplay(const ir::Program& p, const ir::VersionPlan& plan, int32_t d)
      : p_(p), plan_(plan.devices[d]), d_(d) {}

  std::vector<TransportCall> Run() {
    const std::vector<Action>& prog = p_.devices[d_];
    for (size_t i = 0; i < prog.size(); ++i) {
      action_ = static_cast<int32_t>(i);
      WaitInputs(prog[i], plan_.actions[i]);
      RunAction(prog[i], plan_.actions[i]);
    }
    action_ = -1;
    for (auto& [record, keys] : sends_) {  // FlushSends: by stage, then record
      for (const MessageKey& k : keys) Add(Op::kWaitSent, -1, k);
      keys.clear();
    }
    return std::move(calls_);
  }

 private:
  void Add(Op op, int32_t peer, const MessageKey& key) {
    calls_.push_back({op, peer, key, action_});
  }
  bool Local(int32_t stage, int32_t microbatch) const {
    return p_.device_of(stage, microbatch) == d_;
  }
  void Reuse(int32_t stage, int32_t record) {
    auto it = sends_.find({stage, record});
    if (it == sends_.end()) return;
    for (const MessageKey& k : it->second) Add(Op::kWaitSent, -1, k);
    it->second.clear();
  }

  void WaitInputs(const Action& a, const ir::PlannedAction& pa) {
    if (pa.opens_record) Reuse(a.stage, pa.record);
    if (pa.opens_handoff)
      Reuse(a.kind == ActionKind::kForward ? a.stage + 1 : a.stage - 1, pa.handoff_record);
    const int32_t s = a.stage, j = a.microbatch;
    if (a.kind == ActionKind::kForward && s > 0 && !Local(s - 1, j))
      Add(Op::kWaitReceived, -1, {Kind::kActivation, s, j});
    if (ir::IsBackward(a.kind) && s < p_.num_stages - 1 && !Local(s + 1, j))
      Add(Op::kWaitReceived, -1, {Kind::kGradient, s, j});
  }

  void RunAction(const Action& a, const ir::PlannedAction& pa) {
    const int32_t s = a.stage, j = a.microbatch;
    switch (a.kind) {
      case ActionKind::kSendActivation:
      case ActionKind::kSendGradient: {
        const bool grad = a.kind == ActionKind::kSendGradient;
        const int32_t to = grad ? s - 1 : s + 1;
        const MessageKey key{grad ? Kind::kGradient : Kind::kActivation, to, j};
        Add(Op::kSend, p_.device_of(to, j), key);
        sends_[{s, pa.record}].push_back(key);
        return;
      }
      case ActionKind::kRecvActivation:
      case ActionKind::kRecvGradient: {
        const bool grad = a.kind == ActionKind::kRecvGradient;
        Add(Op::kRecv, p_.device_of(grad ? s + 1 : s - 1, j),
            {grad ? Kind::kGradient : Kind::kActivation, s, j});
        return;
      }
      case ActionKind::kAllReduce:
        return Gather(a, Kind::kGradientSum, Kind::kReducedGradient);
      case ActionKind::kAverage:
        return Gather(a, Kind::kAverageWeights, Kind::kAverageReference);
      default:
        return;
    }
  }

  // DeviceWorker::Gather: a copy sends up, waits, receives down; the replica-0 copy receives
  // from every copy, waits for all, sends down to all, waits for all.
  void Gather(const Action& a, Kind up, Kind down) {
    const int32_t s = a.stage, round = a.microbatch;
    const int32_t me = p_.replica_on(s, d_);
    PIPECAST_CHECK(me >= 0) << "device " << d_ << " holds no copy of stage " << s;
    if (me > 0) {
      const int32_t root = p_.device_of_replica(s, 0);
      Add(Op::kSend, root, {up, s, round, me});
      Add(Op::kWaitSent, -1, {up, s, round, me});
      Add(Op::kRecv, root, {down, s, round, me});
      Add(Op::kWaitReceived, -1, {down, s, round, me});
      return;
    }
    for (int32_t r = 1; r < p_.replicas; ++r)
      Add(Op::kRecv, p_.device_of_replica(s, r), {up, s, round, r});
    for (int32_t r = 1; r < p_.replicas; ++r) Add(Op::kWaitReceived, -1, {up, s, round, r});
    for (int32_t r = 1; r < p_.replicas; ++r)
      Add(Op::kSend, p_.device_of_replica(s, r), {down, s, round, r});
    for (int32_t r = 1; r < p_.replicas; ++r) Add(Op::kWaitSent, -1, {down, s, round, r});
  }

  const ir::Program& p_;
  const ir::DevicePlan& plan_;
  const int32_t d_;
  int32_t action_ = -1;
  std::vector<TransportCall> calls_;
  std::map<std::pair<int32_t, int32_t>, std::vector<MessageKey>> sends_;  // (stage, record)
};

}  // namespace

std::vector<std::vector<TransportCall>> ExecutorCalls(const ir::Program& program,
                                                      const ir::VersionPlan& plan) {
  PIPECAST_CHECK(plan.devices.size() == program.devices.size())
      << "the plan is not an execution plan of this program";
  std::vector<std::vector<TransportCall>> calls(program.devices.size());
  for (size_t d = 0; d < calls.size(); ++d)
    calls[d] = CallReplay(program, plan, static_cast<int32_t>(d)).Run();
  return calls;
}

}  // namespace pipecast::runtime::cuda
