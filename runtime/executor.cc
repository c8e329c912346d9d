#include "runtime/executor.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common/check.h"

namespace pipecast::runtime {
namespace {

using ir::Action;
using ir::ActionKind;
using Kind = MessageKey::Kind;

// Shared by the device threads: the first error wins and stops everyone.
struct RunControl {
  std::mutex mu;
  Status first_error;
  std::vector<std::string> errors;             // per device, "" if it did not fail
  std::vector<std::atomic<int32_t>> position;  // per device: index of the action running
  // With replicas several devices read the data feed (stage 0 and the last stage of every
  // copy): their calls of each of its functions, and the copies into the device, take turns.
  std::mutex inputs, labels;
  explicit RunControl(size_t devices) : errors(devices), position(devices) {
    for (auto& p : position) p.store(-1);  // -1: not run by this process (yet)
  }
  void Fail(int32_t device, Status s, Transport& t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      errors[device] = s.message();
      // A cancellation is the echo of another failure: it only wins if nothing else failed.
      if (first_error.ok() ||
          (first_error.code() == StatusCode::kCancelled && s.code() != StatusCode::kCancelled)) {
        first_error = std::move(s);
      }
    }
    t.Abort();
  }
};

// The transfers in flight on one activation record of a stage.
struct RecordHandles {
  Handle recv_activation, recv_gradient;
  Handle sends[2];
  int32_t num_sends = 0;
};

// One device's interpreter of its program.
class DeviceWorker {
 public:
  DeviceWorker(int32_t device, const ir::Program& p, const ir::VersionPlan& plan, Device& dev,
               DataFeed& data, Transport& transport, const ExecutorConfig& config,
               RunControl& control, ExecutionResult& result, Clock::time_point t0)
      : d_(device),
        p_(p),
        plan_(plan.devices[device]),
        divisor_(plan.loss_divisor),
        dev_(dev),
        data_(data),
        transport_(transport),
        config_(config),
        control_(control),
        result_(result),
        t0_(t0),
        handles_(p.num_stages),
        reduce_(static_cast<size_t>(std::max(0, p.replicas - 1))),
        pending_(p.num_stages, 0) {
    for (int32_t s = 0; s < p.num_stages; ++s)
      if (p.holds(d_, s)) handles_[s].assign(plan.buffers[s].records, RecordHandles{});
  }

  Status Run();

 private:
  Status WaitInputs(const Action& a, const ir::PlannedAction& pa);
  Status RunAction(const Action& a, const ir::PlannedAction& pa, ActionTime& t);
  Status Forward(const Action& a, const ir::PlannedAction& pa, ActionTime& t);
  Status Backward(const Action& a, const ir::PlannedAction& pa, ActionTime& t);
  void Step();
  template <typename RootOp, typename CopyOp>
  Status Gather(const Action& a, Kind up, Kind down, BufferView mine, BufferView back,
                RootOp root_op, CopyOp copy_op);
  Status AllReduce(const Action& a);
  Status Average(const Action& a);
  // Waits for the sends that still read a record before a new microbatch takes it.
  Status Reuse(int32_t stage, int32_t record);
  Status FlushSends();
  void ApplyOps(uint32_t begin, uint32_t end) {
    for (uint32_t k = begin; k < end; ++k) dev_.Apply(plan_.ops[k], Lr(plan_.ops[k].stage));
  }
  // A stage's copies step (and predict) with the rate of its replica-0 copy's device, so that
  // they stay identical; with one replica that is this device.
  double Lr(int32_t stage) const { return config_.learning_rate(p_.device_of(stage), n_); }
  Clock::time_point Deadline() const { return Clock::now() + config_.deadline; }
  // True if this device runs `stage` for `microbatch` (the copy of the microbatch's replica).
  bool Local(int32_t stage, int32_t microbatch) const {
    return p_.device_of(stage, microbatch) == d_;
  }
  int64_t Now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0_).count();
  }

  const int32_t d_;
  const ir::Program& p_;
  const ir::DevicePlan& plan_;
  const std::vector<int32_t>& divisor_;
  Device& dev_;
  DataFeed& data_;
  Transport& transport_;
  const ExecutorConfig& config_;
  RunControl& control_;
  ExecutionResult& result_;
  const Clock::time_point t0_;
  int32_t n_ = 0;                                    // steps taken in this program
  std::vector<std::vector<RecordHandles>> handles_;  // [stage][record]
  std::vector<Handle> reduce_;                       // a collective's transfers, one per other copy
  std::vector<uint8_t> pending_;  // [stage]: a weight gradient was taken since the last Step
};

Status DeviceWorker::Reuse(int32_t stage, int32_t record) {
  RecordHandles& h = handles_[stage][record];
  for (int32_t k = 0; k < h.num_sends; ++k)
    PIPECAST_RETURN_IF_ERROR(transport_.WaitSent(h.sends[k], Deadline()));
  h = RecordHandles{};
  return Status::Ok();
}

Status DeviceWorker::FlushSends() {
  for (int32_t s = 0; s < p_.num_stages; ++s) {
    for (int32_t r = 0; r < static_cast<int32_t>(handles_[s].size()); ++r)
      PIPECAST_RETURN_IF_ERROR(Reuse(s, r));
  }
  return Status::Ok();
}

Status DeviceWorker::Forward(const Action& a, const ir::PlannedAction& pa, ActionTime& t) {
  const int32_t s = a.stage, j = a.microbatch;
  (void)t;
  if (s == 0) {
    std::lock_guard<std::mutex> lock(control_.inputs);
    dev_.LoadInput(s, pa.record, data_.Input(j));
  }
  dev_.Forward(a, pa.record, pa.weights.slot);
  if (s == p_.num_stages - 1) {
    // divisor_[j] counts every microbatch the step applying j's gradient applies, on every
    // copy: after the all-reduce's sum the step applies their mean.
    std::lock_guard<std::mutex> lock(control_.labels);
    dev_.Loss(s, pa.record, j, data_.Labels(j), 1.0f / static_cast<float>(divisor_[j]));
  } else if (Local(s + 1, j)) {
    dev_.HandOver(s, pa.record, s + 1, pa.handoff_record, /*gradient=*/false);
  }
  return Status::Ok();
}

Status DeviceWorker::Backward(const Action& a, const ir::PlannedAction& pa, ActionTime& t) {
  const int32_t s = a.stage;
  dev_.BackwardInput(a, pa.record, pa.weights.slot, /*need_dx=*/s > 0);
  if (a.kind == ActionKind::kBackward) {
    t.split_ns = Now();
    dev_.BackwardWeight(s, pa.record);
    pending_[s] = 1;
  }
  if (s > 0 && Local(s - 1, a.microbatch)) {
    dev_.HandOver(s, pa.record, s - 1, pa.handoff_record, /*gradient=*/true);
  }
  return Status::Ok();
}

void DeviceWorker::Step() {
  const int64_t before =
      d_ < static_cast<int32_t>(config_.steps_before.size()) ? config_.steps_before[d_] : 0;
  for (int32_t s = 0; s < p_.num_stages; ++s) {
    if (!p_.holds(d_, s)) continue;
    dev_.Step(s, {Lr(s), before + n_ + 1, pending_[s] != 0});
    pending_[s] = 0;
  }
  ++n_;
}

// One round of a collective of stage `a.stage` over its copies, run to completion before the
// next action (the validator's rendezvous): each copy r >= 1 sends `mine` to the replica-0 copy
// (message `up`), which receives them into its reduction buffers in slot r - 1, runs `root_op`
// and sends `back` to every copy (message `down`); a copy waits for its send, runs `copy_op`,
// then receives into `back`. The result depends only on the buffers, never on arrival order.
template <typename RootOp, typename CopyOp>
Status DeviceWorker::Gather(const Action& a, Kind up, Kind down, BufferView mine, BufferView back,
                            RootOp root_op, CopyOp copy_op) {
  const int32_t s = a.stage, round = a.microbatch, copies = p_.replicas;
  const int32_t me = p_.replica_on(s, d_);
  PIPECAST_CHECK(me >= 0) << "device " << d_ << " holds no copy of stage " << s;
  if (me > 0) {
    const int32_t root = p_.device_of_replica(s, 0);
    const Handle sent =
        transport_.Send(d_, root, {up, s, round, me}, mine, dev_, dev_.Record(Lane::kCompute));
    PIPECAST_RETURN_IF_ERROR(transport_.WaitSent(sent, Deadline()));
    copy_op();
    const Handle got = transport_.Recv(d_, root, {down, s, round, me}, back);
    return transport_.WaitReceived(got, dev_, Lane::kCompute, Deadline());
  }
  for (int32_t r = 1; r < copies; ++r) {
    reduce_[r - 1] = transport_.Recv(d_, p_.device_of_replica(s, r), {up, s, round, r},
                                     dev_.ReduceBuffer(s, r - 1));
  }
  for (int32_t r = 1; r < copies; ++r)
    PIPECAST_RETURN_IF_ERROR(
        transport_.WaitReceived(reduce_[r - 1], dev_, Lane::kCompute, Deadline()));
  root_op(copies - 1);
  const Event done = dev_.Record(Lane::kCompute);
  for (int32_t r = 1; r < copies; ++r)
    reduce_[r - 1] =
        transport_.Send(d_, p_.device_of_replica(s, r), {down, s, round, r}, back, dev_, done);
  for (int32_t r = 1; r < copies; ++r)
    PIPECAST_RETURN_IF_ERROR(transport_.WaitSent(reduce_[r - 1], Deadline()));
  return Status::Ok();
}

// Round `a.microbatch` of the all-reduce of stage `a.stage`: the copies' gradients summed at
// the replica-0 copy in replica order, the sum sent back into every copy's gradient.
Status DeviceWorker::AllReduce(const Action& a) {
  const BufferView grad = dev_.Gradient(a.stage);
  return Gather(
      a, Kind::kGradientSum, Kind::kReducedGradient, grad, grad,
      [&](int32_t count) { dev_.SumGradients(a.stage, count); }, [] {});
}

// Round `a.microbatch` of the elastic averaging of stage `a.stage` (AvgPipe, device.h): the
// copies' weights meet at the replica-0 copy, which moves its weights toward its reference W~
// and computes the new W~ from all of them (ElasticAverage); every other copy moves its own
// weights toward its (old, identical) W~ (ElasticPull) and receives the new W~.
Status DeviceWorker::Average(const Action& a) {
  const double alpha = p_.options.elastic_alpha;
  return Gather(
      a, Kind::kAverageWeights, Kind::kAverageReference, dev_.Weights(a.stage),
      dev_.Reference(a.stage), [&](int32_t count) { dev_.ElasticAverage(a.stage, count, alpha); },
      [&] { dev_.ElasticPull(a.stage, alpha); });
}

// Before an action runs: the record slots it opens are free of sends, and the message it
// consumes from another device has arrived.
Status DeviceWorker::WaitInputs(const Action& a, const ir::PlannedAction& pa) {
  if (pa.opens_record) PIPECAST_RETURN_IF_ERROR(Reuse(a.stage, pa.record));
  if (pa.opens_handoff) {
    const int32_t other = a.kind == ActionKind::kForward ? a.stage + 1 : a.stage - 1;
    PIPECAST_RETURN_IF_ERROR(Reuse(other, pa.handoff_record));
  }
  const int32_t s = a.stage;
  if (a.kind == ActionKind::kForward && s > 0 && !Local(s - 1, a.microbatch)) {
    return transport_.WaitReceived(handles_[s][pa.record].recv_activation, dev_, Lane::kCompute,
                                   Deadline());
  }
  if (ir::IsBackward(a.kind) && s < p_.num_stages - 1 && !Local(s + 1, a.microbatch)) {
    return transport_.WaitReceived(handles_[s][pa.record].recv_gradient, dev_, Lane::kCompute,
                                   Deadline());
  }
  return Status::Ok();
}

Status DeviceWorker::RunAction(const Action& a, const ir::PlannedAction& pa, ActionTime& t) {
  switch (a.kind) {
    case ActionKind::kForward:
      return Forward(a, pa, t);
    case ActionKind::kBackward:
    case ActionKind::kBackwardInput:
      return Backward(a, pa, t);
    case ActionKind::kWeightGrad:
      dev_.BackwardWeight(a.stage, pa.record);
      pending_[a.stage] = 1;
      return Status::Ok();
    case ActionKind::kStep:
      Step();
      return Status::Ok();
    case ActionKind::kAllReduce:
      pending_[a.stage] = 1;  // every copy steps with the reduced gradient, its own or not
      return AllReduce(a);
    case ActionKind::kAverage:
      return Average(a);
    case ActionKind::kSendActivation:
    case ActionKind::kSendGradient: {
      const bool grad = a.kind == ActionKind::kSendGradient;
      const int32_t to = grad ? a.stage - 1 : a.stage + 1;
      const BufferView buffer =
          dev_.Buffer(a.stage, pa.record, grad ? RecordPart::kInputGrad : RecordPart::kOutput);
      const MessageKey key{grad ? Kind::kGradient : Kind::kActivation, to, a.microbatch};
      RecordHandles& h = handles_[a.stage][pa.record];
      PIPECAST_CHECK(h.num_sends < 2) << "more than two sends from one record";
      h.sends[h.num_sends++] = transport_.Send(d_, p_.device_of(to, a.microbatch), key, buffer,
                                               dev_, dev_.Record(Lane::kCompute));
      return Status::Ok();
    }
    case ActionKind::kRecvActivation:
    case ActionKind::kRecvGradient: {
      const bool grad = a.kind == ActionKind::kRecvGradient;
      const int32_t from = grad ? a.stage + 1 : a.stage - 1;
      const BufferView buffer =
          dev_.Buffer(a.stage, pa.record, grad ? RecordPart::kOutputGrad : RecordPart::kInput);
      const MessageKey key{grad ? Kind::kGradient : Kind::kActivation, a.stage, a.microbatch};
      RecordHandles& h = handles_[a.stage][pa.record];
      (grad ? h.recv_gradient : h.recv_activation) =
          transport_.Recv(d_, p_.device_of(from, a.microbatch), key, buffer);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Status DeviceWorker::Run() {
  const std::vector<Action>& prog = p_.devices[d_];
  std::vector<ActionTime>& timing = result_.timing[d_];
  timing.assign(prog.size(), ActionTime{});
  for (size_t i = 0; i < prog.size(); ++i) {
    control_.position[d_].store(static_cast<int32_t>(i));
    const ir::PlannedAction& pa = plan_.actions[i];
    ActionTime& t = timing[i];
    t.start_ns = Now();
    PIPECAST_RETURN_IF_ERROR(WaitInputs(prog[i], pa));
    t.ready_ns = Now();
    t.split_ns = -1;
    if (pa.before_begin < pa.before_end) {
      ApplyOps(pa.before_begin, pa.before_end);
      t.ops_before_ns = Now() - t.ready_ns;
    }
    PIPECAST_RETURN_IF_ERROR(RunAction(prog[i], pa, t));
    if (pa.after_begin < pa.after_end) {
      const int64_t after = Now();
      ApplyOps(pa.after_begin, pa.after_end);
      t.end_ns = Now();
      t.ops_after_ns = t.end_ns - after;
    } else {
      t.end_ns = Now();
    }
    if (t.split_ns < 0) t.split_ns = t.end_ns - t.ops_after_ns;
  }
  control_.position[d_].store(static_cast<int32_t>(prog.size()));
  PIPECAST_RETURN_IF_ERROR(FlushSends());
  return dev_.Synchronize(Deadline());
}

std::string Describe(const ir::Program& p, const RunControl& control) {
  std::string s;
  for (size_t d = 0; d < p.devices.size(); ++d) {
    const int32_t i = control.position[d].load();
    s += "\n  device " + std::to_string(d) + ": ";
    if (i < 0) {
      s += "not run by this process";
      continue;
    }
    if (i >= static_cast<int32_t>(p.devices[d].size())) {
      s += "finished";
      if (!control.errors[d].empty()) s += ": " + control.errors[d];
      continue;
    }
    s += "at action " + std::to_string(i) + " (" + ir::ActionToken(p.devices[d][i], true) + ")";
    if (i > 0) s += ", after " + ir::ActionToken(p.devices[d][i - 1], true);
    if (!control.errors[d].empty()) s += ": " + control.errors[d];
  }
  return s;
}

// Gathers what the local devices computed: losses and the weights they served.
void Collect(const ir::Program& p, std::span<Device* const> devices,
             const std::vector<int32_t>& local, ExecutionResult& result) {
  result.losses.assign(p.total_microbatches(), 0.0);
  for (int32_t d : local) {
    int64_t correct = 0;
    devices[d]->ReadLosses(result.losses, &correct);
    result.correct += correct;
    const std::span<const ServedWeights> served = devices[d]->Served();
    result.served[d].assign(served.begin(), served.end());
  }
}

}  // namespace

MessageSpace TrainingSpace(const ir::Program& program) {
  MessageSpace space{program.num_stages, program.total_microbatches(), 0, program.replicas, 0};
  for (const std::vector<Action>& device : program.devices)
    for (const Action& a : device)
      if (ir::IsCollective(a.kind)) space.rounds = std::max(space.rounds, a.microbatch + 1);
  return space;
}

Result<ExecutionResult> Execute(const ir::Program& program, const ir::VersionPlan& plan,
                                std::span<Device* const> devices, DataFeed& data,
                                Transport& transport, const ExecutorConfig& config) {
  const size_t num_devices = program.devices.size();
  PIPECAST_CHECK(devices.size() == num_devices) << "one device slot per program device";
  PIPECAST_CHECK(plan.devices.size() == num_devices &&
                 plan.buffers.size() == static_cast<size_t>(program.num_stages))
      << "the plan is not an execution plan of this program";
  std::vector<int32_t> local = config.local_devices;
  if (local.empty())
    for (size_t d = 0; d < num_devices; ++d) local.push_back(static_cast<int32_t>(d));
  for (int32_t d : local) PIPECAST_CHECK(devices[d] != nullptr) << "no device " << d;
  ExecutionResult result;
  result.served.resize(num_devices);
  result.timing.resize(num_devices);
  RunControl control(num_devices);
  const Clock::time_point t0 = Clock::now();
  auto run_device = [&](int32_t d) {
    DeviceWorker worker(d, program, plan, *devices[d], data, transport, config, control, result,
                        t0);
    Status s = worker.Run();
    if (!s.ok()) control.Fail(d, std::move(s), transport);
  };
  if (local.size() == 1) {
    run_device(local[0]);
  } else {
    std::vector<std::thread> threads;
    threads.reserve(local.size());
    for (int32_t d : local) threads.emplace_back(run_device, d);
    for (auto& t : threads) t.join();
  }
  result.wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  if (!control.first_error.ok()) {
    return Status(control.first_error.code(),
                  program.method + ": " + control.first_error.message() +
                      "\nwhere every device was:" + Describe(program, control));
  }
  Collect(program, devices, local, result);
  return result;
}

}  // namespace pipecast::runtime
