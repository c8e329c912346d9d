#include "runtime/inproc_transport.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/check.h"

namespace pipecast::runtime {
namespace {

// "200 ms": the length of a wait that started at `start` and gave up at `deadline`.
std::string WaitedMs(Clock::time_point start, Clock::time_point deadline) {
  const double ms = std::chrono::duration<double, std::milli>(deadline - start).count();
  return std::to_string(static_cast<int64_t>(ms + 0.5)) + " ms";
}

}  // namespace

std::string MessageKey::ToString() const {
  if (reduction()) {
    const bool sum = kind == Kind::kGradientSum || kind == Kind::kAverageWeights;
    const char* what = kind == Kind::kGradientSum       ? "gradient sum"
                       : kind == Kind::kReducedGradient ? "reduced gradient"
                       : kind == Kind::kAverageWeights  ? "weights to average"
                                                        : "averaged reference weights";
    return std::string(what) + " of stage " + std::to_string(stage) + ", round " +
           std::to_string(microbatch) + (sum ? ", from replica " : ", for replica ") +
           std::to_string(replica);
  }
  const char* what = kind == Kind::kGradient ? "gradient" : "activation";
  const char* unit = kind == Kind::kEvalActivation ? "evaluation chunk " : "microbatch ";
  return std::string(kind == Kind::kEvalActivation ? "evaluation " : "") + what + " of " + unit +
         std::to_string(microbatch) + " for stage " + std::to_string(stage);
}

InProcessTransport::InProcessTransport(int32_t num_devices, const MessageSpace& space)
    : space_(space), slots_(static_cast<size_t>(space.size())), boxes_(num_devices) {
  for (Mailbox& box : boxes_) box.taken = std::vector<std::condition_variable>(num_devices);
}

namespace {

// Point-to-point messages per (kind, stage); all-reduce and average messages per (kind, stage).
int32_t PerStage(const MessageSpace& m) { return std::max({1, m.microbatches, m.eval_chunks}); }
int32_t PerReduceStage(const MessageSpace& m) { return m.rounds * m.replicas; }
int32_t PointToPoint(const MessageSpace& m) { return 3 * m.stages * PerStage(m); }
constexpr int32_t kReductionKinds = 4;  // kGradientSum .. kAverageReference

}  // namespace

int32_t MessageSpace::size() const {
  const int64_t n = static_cast<int64_t>(PointToPoint(*this)) +
                    (replicas > 1 ? int64_t{kReductionKinds} * stages * PerReduceStage(*this) : 0);
  PIPECAST_CHECK(n <= INT32_MAX) << "message space of " << n << " messages";
  return static_cast<int32_t>(n);
}

int32_t MessageSpace::Index(const MessageKey& key) const {
  if (key.reduction()) {
    PIPECAST_CHECK(replicas > 1 && key.stage >= 0 && key.stage < stages && key.microbatch >= 0 &&
                   key.microbatch < rounds && key.replica >= 1 && key.replica < replicas)
        << "message out of the transport's space: " << key.ToString();
    const int32_t kind = static_cast<int32_t>(key.kind) - 3;
    return PointToPoint(*this) + (kind * stages + key.stage) * PerReduceStage(*this) +
           key.microbatch * replicas + key.replica;
  }
  const int32_t limit = key.kind == MessageKey::Kind::kEvalActivation ? eval_chunks : microbatches;
  PIPECAST_CHECK(key.stage >= 0 && key.stage < stages && key.microbatch >= 0 &&
                 key.microbatch < limit)
      << "message out of the transport's space: " << key.ToString();
  return (static_cast<int32_t>(key.kind) * stages + key.stage) * PerStage(*this) + key.microbatch;
}

MessageKey MessageSpace::KeyAt(int32_t index) const {
  const int32_t p2p = PointToPoint(*this);
  if (index >= p2p) {
    const int32_t rest = index - p2p, per = PerReduceStage(*this);
    const int32_t group = rest / per, within = rest % per;
    return {static_cast<MessageKey::Kind>(3 + group / stages), group % stages, within / replicas,
            within % replicas};
  }
  const int32_t per_stage = PerStage(*this);
  const int32_t rest = index / per_stage;
  return {static_cast<MessageKey::Kind>(rest / stages), rest % stages, index % per_stage};
}

Handle InProcessTransport::Send(int32_t from, int32_t to, const MessageKey& key, BufferView buffer,
                                Device& producer, Event ready) {
  PIPECAST_CHECK(to >= 0 && to < static_cast<int32_t>(boxes_.size())) << "device " << to;
  producer.HostWait(ready);
  if (delay_) delay_(key);
  const int32_t s = space_.Index(key);
  Mailbox& box = boxes_[to];
  {
    std::lock_guard<std::mutex> lock(box.mu);
    Slot& slot = slots_[s];
    PIPECAST_CHECK(!slot.sent) << "duplicate message: " << key.ToString();
    slot.src = buffer;
    slot.from = from;
    slot.to = to;
    slot.sent = true;
  }
  box.arrived.notify_one();  // one thread, the receiving device's, waits on it
  return {2 * s};
}

Handle InProcessTransport::Recv(int32_t at, int32_t from, const MessageKey& key,
                                BufferView buffer) {
  PIPECAST_CHECK(at >= 0 && at < static_cast<int32_t>(boxes_.size())) << "device " << at;
  const int32_t s = space_.Index(key);
  Mailbox& box = boxes_[at];
  std::lock_guard<std::mutex> lock(box.mu);
  Slot& slot = slots_[s];
  PIPECAST_CHECK(!slot.posted) << "message received twice: " << key.ToString();
  slot.dst = buffer;
  slot.posted = true;
  slot.to = at;
  if (slot.from < 0) slot.from = from;
  return {2 * s + 1};
}

Status InProcessTransport::WaitReceived(Handle handle, Device& /*consumer*/, Lane /*lane*/,
                                        Clock::time_point deadline) {
  PIPECAST_CHECK(handle.valid() && handle.id % 2 == 1) << "not a receive handle";
  const int32_t s = handle.id / 2;
  Slot& slot = slots_[s];
  Mailbox& box = boxes_[slot.to];
  const Clock::time_point start = Clock::now();
  std::unique_lock<std::mutex> lock(box.mu);
  const bool arrived =
      box.arrived.wait_until(lock, deadline, [&] { return slot.sent || aborted_.load(); });
  const MessageKey key = space_.KeyAt(s);
  if (!slot.sent && aborted_.load()) {
    return Cancelled("device " + std::to_string(slot.to) + " stopped while waiting for the " +
                     key.ToString() + " (another device failed)");
  }
  if (!arrived) {
    return DeadlineExceeded("device " + std::to_string(slot.to) + " waited " +
                            WaitedMs(start, deadline) + " for the " + key.ToString() +
                            " from device " + std::to_string(slot.from));
  }
  if (slot.src.count != slot.dst.count) {
    return InvalidArgument("the " + key.ToString() + " has " + std::to_string(slot.src.count) +
                           " values but device " + std::to_string(slot.to) + " expects " +
                           std::to_string(slot.dst.count));
  }
  lock.unlock();  // the sender leaves its buffer alone until `delivered`
  if (slot.src.count > 0)
    std::memcpy(slot.dst.data, slot.src.data, static_cast<size_t>(slot.src.count) * sizeof(float));
  lock.lock();
  slot.delivered = true;
  lock.unlock();
  box.taken[slot.from].notify_one();  // only the sender's thread waits on it
  return Status::Ok();
}

Status InProcessTransport::WaitSent(Handle handle, Clock::time_point deadline) {
  PIPECAST_CHECK(handle.valid() && handle.id % 2 == 0) << "not a send handle";
  const int32_t s = handle.id / 2;
  Slot& slot = slots_[s];
  Mailbox& box = boxes_[slot.to];
  const Clock::time_point start = Clock::now();
  std::unique_lock<std::mutex> lock(box.mu);
  const bool done = box.taken[slot.from].wait_until(
      lock, deadline, [&] { return slot.delivered || aborted_.load(); });
  if (slot.delivered) return Status::Ok();
  const MessageKey key = space_.KeyAt(s);
  if (aborted_.load()) {
    return Cancelled("device " + std::to_string(slot.from) + " stopped while the " +
                     key.ToString() + " was not yet received (another device failed)");
  }
  (void)done;
  return DeadlineExceeded("device " + std::to_string(slot.from) + " waited " +
                          WaitedMs(start, deadline) + " for device " + std::to_string(slot.to) +
                          " to receive the " + key.ToString());
}

void InProcessTransport::Abort() {
  aborted_.store(true);
  for (Mailbox& box : boxes_) {
    std::lock_guard<std::mutex> lock(box.mu);
    box.arrived.notify_all();
    for (std::condition_variable& cv : box.taken) cv.notify_all();
  }
}

}  // namespace pipecast::runtime
