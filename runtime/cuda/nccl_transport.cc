#include "runtime/cuda/nccl_transport.h"

#include <algorithm>
#include <cstdio>

#include "common/check.h"
#include "runtime/cuda/cuda_status.h"

namespace pipecast::runtime::cuda {
namespace {

// "200 ms", rounded.
// CudaStatus, with the message built only on failure.
template <typename What>
Status Checked(cudaError_t e, const What& what) {
  return e == cudaSuccess ? Status::Ok() : CudaStatus(e, what());
}

std::string Ms(Clock::duration d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  return std::to_string(static_cast<int64_t>(ms + 0.5)) + " ms";
}

}  // namespace

struct NcclTransport::Slot {
  bool active = false;  // between Send/Recv and the end of its wait
  bool send = false;
  MessageKey key;
  int32_t peer = -1;
  int32_t channel = -1;
  BufferView buffer;
  cudaEvent_t done_event = nullptr;  // recorded after the transfer
  bool issued = false;               // enqueued (a self pair waits for its other half)
  bool done = false;                 // its event completed
  bool waited = false;               // WaitReceived enqueued the consumer's wait
  Clock::time_point wait_start{}, deadline = Clock::time_point::max();
  int64_t record = -1, wait_record = -1;  // flight recorder ids
  Status error;
};

NcclTransport::NcclTransport(NcclChannels& channels, const MessageSpace& space, Device& local,
                             FlightRecorder* recorder, const Options& options)
    : channels_(channels),
      space_(space),
      local_(local),
      lanes_(dynamic_cast<CudaLanes*>(&local)),
      recorder_(recorder),
      options_(options),
      rank_(channels.rank()),
      events_(channels.gpu(), options.events),
      slots_(static_cast<size_t>(2) * space.size()) {
  PIPECAST_CHECK(lanes_ != nullptr) << "NcclTransport needs a CUDA device, not " << local.name();
  PIPECAST_CHECK(lanes_->gpu() == channels.gpu())
      << local.name() << " runs on GPU " << lanes_->gpu() << " but rank " << channels.rank()
      << "'s NCCL channels on GPU " << channels.gpu();
  PIPECAST_CHECK(recorder_ == nullptr || rank_ < recorder_->devices())
      << "the flight recorder has no device " << rank_;
  in_flight_.reserve(slots_.size() < 4096 ? slots_.size() : 4096);
  watchdog_ = std::thread([this] { Watch(); });
}

NcclTransport::~NcclTransport() {
  stop_.store(true);
  watchdog_.join();
}

NcclTransport::Slot& NcclTransport::SlotOf(Handle h, bool send) {
  PIPECAST_CHECK(h.valid() && h.id % 2 == (send ? 0 : 1))
      << (send ? "not a send handle" : "not a receive handle");
  return slots_[h.id];
}

std::string NcclTransport::Describe(const Slot& s) const {
  return (s.send ? "sending the " : "receiving the ") + s.key.ToString() +
         (s.send ? " to rank " : " from rank ") + std::to_string(s.peer);
}

Handle NcclTransport::Send(int32_t from, int32_t to, const MessageKey& key, BufferView buffer,
                           Device& producer, Event ready) {
  PIPECAST_CHECK(from == rank_) << "rank " << rank_ << " cannot send for device " << from;
  auto* lanes = dynamic_cast<CudaLanes*>(&producer);
  PIPECAST_CHECK(lanes != nullptr) << "NcclTransport needs a CUDA device";
  const int32_t channel = channels_.Find({from, to, ChannelClass(key.kind)});
  PIPECAST_CHECK(channel >= 0) << "rank " << rank_ << " has no NCCL channel for the "
                               << key.ToString() << " to rank " << to
                               << ": create NcclChannels with ChannelsOf(program, plan)";
  const int32_t id = 2 * space_.Index(key);
  Slot& s = slots_[id];
  bool paired = false;  // a message to this rank whose receive is posted already
  {
    std::lock_guard<std::mutex> lock(mu_);  // the watchdog releases slots
    PIPECAST_CHECK(!s.active) << "duplicate message: " << key.ToString();
    s = Slot{};
    s.active = true;
    paired = to == rank_ && slots_[id + 1].active;
  }
  s.send = true;
  s.key = key;
  s.peer = to;
  s.channel = channel;
  s.buffer = buffer;
  if (recorder_) s.record = recorder_->Issue(rank_, FlightAction::kSend, to, key);
  // The channel's stream waits for the producer now: the group enqueued later follows it.
  const cudaEvent_t ready_event = lanes->event(ready);
  if (ready_event != nullptr) {
    s.error = Checked(cudaStreamWaitEvent(channels_.stream(channel), ready_event, 0),
                      [&] { return "rank " + std::to_string(rank_) + " " + Describe(s); });
  }
  if (to != rank_ || paired) Issue(s);
  return {id};
}

Handle NcclTransport::Recv(int32_t at, int32_t from, const MessageKey& key, BufferView buffer) {
  PIPECAST_CHECK(at == rank_) << "rank " << rank_ << " cannot receive for device " << at;
  const int32_t channel = channels_.Find({from, at, ChannelClass(key.kind)});
  PIPECAST_CHECK(channel >= 0) << "rank " << rank_ << " has no NCCL channel for the "
                               << key.ToString() << " from rank " << from
                               << ": create NcclChannels with ChannelsOf(program, plan)";
  const int32_t id = 2 * space_.Index(key) + 1;
  Slot& s = slots_[id];
  bool paired = false;  // a message from this rank whose send is known already
  {
    std::lock_guard<std::mutex> lock(mu_);
    PIPECAST_CHECK(!s.active) << "message received twice: " << key.ToString();
    s = Slot{};
    s.active = true;
    paired = from == rank_ && slots_[id - 1].active && !slots_[id - 1].issued;
  }
  s.key = key;
  s.peer = from;
  s.channel = channel;
  s.buffer = buffer;
  if (recorder_) s.record = recorder_->Issue(rank_, FlightAction::kRecv, from, key);
  // The receive overwrites `buffer`, which compute enqueued so far may still read.
  const cudaEvent_t point = events_.Take();
  const auto what = [&] { return "rank " + std::to_string(rank_) + " " + Describe(s); };
  Status st = Checked(cudaEventRecord(point, lanes_->stream(Lane::kCompute)), what);
  if (st.ok()) st = Checked(cudaStreamWaitEvent(channels_.stream(channel), point, 0), what);
  events_.Give(point);  // the wait has captured it
  if (!st.ok()) s.error = st;
  if (from != rank_) {
    Issue(s);
  } else if (paired) {
    Issue(slots_[id - 1]);
  }
  return {id};
}

// Enqueues the transfer of `s` on its channel, or, for a message to this rank itself, its send
// and receive as one group (`s` is then the send). Errors stay in the slots for their waits.
void NcclTransport::Issue(Slot& s) {
  const bool self = s.peer == rank_;
  Slot* const pair = self ? &s + 1 : nullptr;  // the receive of the same key
  const int32_t peer = channels_.peer_rank(s.channel);
  const auto what = [&] { return "rank " + std::to_string(rank_) + " " + Describe(s); };
  Status st = s.error.ok() && (pair == nullptr || pair->error.ok())
                  ? Status::Ok()
                  : (s.error.ok() ? pair->error : s.error);
  if (st.ok() && self && s.buffer.count != pair->buffer.count) {
    st = InvalidArgument("the " + s.key.ToString() + " has " + std::to_string(s.buffer.count) +
                         " values but rank " + std::to_string(rank_) + " expects " +
                         std::to_string(pair->buffer.count));
  }
  if (st.ok()) {
    // The lambdas handed to Enqueue capture one or two references, so that std::function
    // keeps them inline: enqueuing a transfer allocates nothing.
    struct Transfer {
      const Slot* send_or_recv;
      const Slot* self_recv;  // a message to this rank: its receive, in the same group
      int32_t peer;
    } const t{&s, pair, peer};
    st = channels_.Enqueue(
        s.channel,
        [&t](ncclComm_t comm, cudaStream_t stream) {
          const Slot& x = *t.send_or_recv;
          const size_t n = static_cast<size_t>(x.buffer.count);
          if (t.self_recv != nullptr) {
            const ncclResult_t r = ncclSend(x.buffer.data, n, ncclFloat, t.peer, comm, stream);
            return r != ncclSuccess
                       ? r
                       : ncclRecv(t.self_recv->buffer.data, n, ncclFloat, t.peer, comm, stream);
          }
          return x.send ? ncclSend(x.buffer.data, n, ncclFloat, t.peer, comm, stream)
                        : ncclRecv(x.buffer.data, n, ncclFloat, t.peer, comm, stream);
        },
        Clock::now() + options_.enqueue_deadline, what);
  }
  // One completion event per slot (a self pair's two slots are released independently).
  cudaEvent_t events[2] = {nullptr, nullptr};
  for (int k = 0; k < (self ? 2 : 1) && st.ok(); ++k) {
    events[k] = events_.Take();
    st = Checked(cudaEventRecord(events[k], channels_.stream(s.channel)), what);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot* const issued[2] = {&s, pair};
    for (int k = 0; k < 2; ++k) {
      Slot* x = issued[k];
      if (x == nullptr) continue;
      x->issued = true;
      x->error = st;
      x->done_event = st.ok() ? events[k] : nullptr;
      if (st.ok()) in_flight_.push_back(static_cast<int32_t>(x - slots_.data()));
    }
  }
  if (!st.ok()) {
    for (cudaEvent_t e : events) events_.Give(e);
    if (st.code() != StatusCode::kCancelled) Fail(st);
  }
}

Status NcclTransport::WaitReceived(Handle handle, Device& consumer, Lane lane,
                                   Clock::time_point deadline) {
  Slot& s = SlotOf(handle, false);
  auto* lanes = dynamic_cast<CudaLanes*>(&consumer);
  PIPECAST_CHECK(lanes != nullptr) << "NcclTransport needs a CUDA device";
  if (recorder_)
    s.wait_record = recorder_->Issue(rank_, FlightAction::kWaitReceived, s.peer, s.key);
  std::unique_lock<std::mutex> lock(mu_);
  if (!s.error.ok()) return Failed(s, s.error);
  if (failed_.load()) return Failed(s, failure_);
  if (!s.issued) {
    return InvalidArgument("rank " + std::to_string(rank_) + " waits for the " + s.key.ToString() +
                           " it sends itself before sending it: NCCL runs a send to the same "
                           "rank only with its receive, so send before waiting");
  }
  s.wait_start = Clock::now();
  s.deadline = deadline;
  s.waited = true;
  if (!s.done) {
    const Status st = Checked(cudaStreamWaitEvent(lanes->stream(lane), s.done_event, 0),
                              [&] { return "rank " + std::to_string(rank_) + " " + Describe(s); });
    if (!st.ok()) return st;
    return Status::Ok();  // the watchdog releases the slot once the event completes
  }
  events_.Give(s.done_event);
  s.done_event = nullptr;
  s.active = false;
  if (recorder_) recorder_->Complete(rank_, s.wait_record);
  return Status::Ok();
}

Status NcclTransport::WaitSent(Handle handle, Clock::time_point deadline) {
  Slot& s = SlotOf(handle, true);
  const int64_t rec =
      recorder_ ? recorder_->Issue(rank_, FlightAction::kWaitSent, s.peer, s.key) : -1;
  const Clock::time_point start = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.wait_start = start;
    s.deadline = deadline;
  }
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!s.error.ok()) return Failed(s, s.error);
      if (failed_.load()) return Failed(s, failure_);
      if (s.issued && !s.done && cudaEventQuery(s.done_event) == cudaSuccess) {
        s.done = true;
        if (recorder_) recorder_->Complete(rank_, s.record);
        in_flight_.erase(std::find(in_flight_.begin(), in_flight_.end(),
                                   static_cast<int32_t>(&s - slots_.data())));
      }
      if (s.done) {
        events_.Give(s.done_event);
        s.done_event = nullptr;
        s.active = false;
        if (recorder_) recorder_->Complete(rank_, rec);
        return Status::Ok();
      }
    }
    if (Clock::now() > deadline) {
      Fail(DeadlineExceeded("rank " + std::to_string(rank_) + " waited " + Ms(deadline - start) +
                            " for rank " + std::to_string(s.peer) + " to receive the " +
                            s.key.ToString()));
      std::lock_guard<std::mutex> lock(mu_);
      return Failed(s, failure_);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

void NcclTransport::Abort() {
  Fail(Cancelled("rank " + std::to_string(rank_) +
                 " stopped its transfers: another device or rank failed"));
}

Status NcclTransport::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

// REQUIRES: mu_ held (failure_ and the slot are read).
Status NcclTransport::Failed(const Slot& s, Status cause) {
  std::string last;
  if (recorder_) {
    const std::vector<FlightEntry> entries = recorder_->Last(rank_);
    int32_t shown = 0;
    for (auto it = entries.rbegin(); it != entries.rend() && shown < 2; ++it) {
      if (it->completed_ns < 0 ||
          (it->what != FlightAction::kSend && it->what != FlightAction::kRecv))
        continue;
      last += (shown++ ? "; " : "") + FlightRecorder::Describe(*it);
    }
    last = "; last completed transfers of rank " + std::to_string(rank_) + ": " +
           (last.empty() ? "none" : last);
  }
  return Status(cause.code(), "rank " + std::to_string(rank_) + " " + Describe(s) + ": " +
                                  cause.message() + last);
}

void NcclTransport::Fail(Status cause) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.load()) return;
    failure_ = cause;
    failed_.store(true);
  }
  channels_.Abort();
  // A receive whose wait returned already (the lane waits, not the host) is cut off without
  // its data: the local device's next Synchronize reports the failure instead of what the lane
  // computed from it.
  lanes_->NoteTransportFailure(cause);
  if (recorder_) recorder_->Issue(rank_, FlightAction::kAbort, -1, {});
  if (cause.code() == StatusCode::kCancelled && !recorder_) return;
  std::fprintf(stderr, "pipecast: %s\n%s", cause.message().c_str(),
               recorder_ ? ("flight recorder, " + recorder_->Dump(rank_)).c_str() : "");
  std::fflush(stderr);
}

// Every period: NCCL's asynchronous errors, then the events of the transfers in flight, each
// against the deadline of its wait.
void NcclTransport::Watch() {
  (void)cudaSetDevice(channels_.gpu());
  while (!stop_.load()) {
    std::this_thread::sleep_for(options_.watchdog_period);
    if (failed_.load()) continue;
    Status error = channels_.AsyncError();
    if (error.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      const Clock::time_point now = Clock::now();
      for (size_t k = 0; k < in_flight_.size() && error.ok();) {
        Slot& s = slots_[in_flight_[k]];
        const cudaError_t q = cudaEventQuery(s.done_event);
        if (q == cudaSuccess) {
          s.done = true;
          if (recorder_) recorder_->Complete(rank_, s.record);
          if (!s.send && s.waited) {  // the consumer's wait is enqueued: release the slot
            if (recorder_) recorder_->Complete(rank_, s.wait_record);
            events_.Give(s.done_event);
            s.done_event = nullptr;
            s.active = false;
          }
          in_flight_[k] = in_flight_.back();
          in_flight_.pop_back();
          continue;
        }
        if (q != cudaErrorNotReady) {
          error = CudaStatus(q, "rank " + std::to_string(rank_) + " " + Describe(s));
        } else if (now > s.deadline) {
          error = DeadlineExceeded("rank " + std::to_string(rank_) + " waited " +
                                   Ms(s.deadline - s.wait_start) + " " + Describe(s));
        }
        ++k;
      }
    }
    if (!error.ok()) Fail(error);
  }
}

}  // namespace pipecast::runtime::cuda
