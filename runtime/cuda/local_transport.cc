#include "runtime/cuda/local_transport.h"

#include <thread>

#include "common/check.h"
#include "runtime/cuda/cuda_status.h"

namespace pipecast::runtime::cuda {
namespace {

// "50 ms": the length of a wait that started at `start` and gave up at `deadline`, rounded.
std::string WaitedMs(Clock::time_point start, Clock::time_point deadline) {
  const double ms = std::chrono::duration<double, std::milli>(deadline - start).count();
  return std::to_string(static_cast<int64_t>(ms + 0.5)) + " ms";
}

// CudaStatus, with the message built only on failure (the per-message path allocates nothing).
template <typename What>
Status Checked(cudaError_t e, const What& what) {
  return e == cudaSuccess ? Status::Ok() : CudaStatus(e, what());
}

// Makes `gpu` the calling thread's current device for the scope (the thread may drive another).
class GpuScope {
 public:
  explicit GpuScope(int gpu) : gpu_(gpu) {
    PIPECAST_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != gpu_) PIPECAST_CUDA_CHECK(cudaSetDevice(gpu_));
  }
  ~GpuScope() {
    if (previous_ != gpu_) (void)cudaSetDevice(previous_);
  }

 private:
  int gpu_ = 0, previous_ = 0;
};

}  // namespace

CudaLocalTransport::CudaLocalTransport(int32_t num_devices, const MessageSpace& space,
                                       FlightRecorder* recorder, int32_t events_per_gpu)
    : lanes_(static_cast<size_t>(num_devices)),
      events_per_gpu_(events_per_gpu),
      space_(space),
      slots_(static_cast<size_t>(space.size())),
      boxes_(static_cast<size_t>(num_devices)),
      deferred_(static_cast<size_t>(num_devices)),
      recorder_(recorder) {
  for (auto& l : lanes_) l.store(nullptr);
}

CudaLocalTransport::CudaLocalTransport(std::span<Device* const> devices, const MessageSpace& space,
                                       FlightRecorder* recorder, int32_t events_per_gpu)
    : CudaLocalTransport(static_cast<int32_t>(devices.size()), space, recorder, events_per_gpu) {
  for (size_t d = 0; d < devices.size(); ++d) {
    if (devices[d] == nullptr) continue;
    Learn(static_cast<int32_t>(d), *devices[d]);
    Pool(static_cast<int32_t>(d));  // every GPU's pool up front
  }
}

CudaLocalTransport::~CudaLocalTransport() = default;

void CudaLocalTransport::Learn(int32_t device, Device& dev) {
  PIPECAST_CHECK(device >= 0 && device < static_cast<int32_t>(lanes_.size()))
      << "device " << device << " of a transport of " << lanes_.size();
  auto* lanes = dynamic_cast<CudaLanes*>(&dev);
  PIPECAST_CHECK(lanes != nullptr) << "CudaLocalTransport needs CUDA devices, not " << dev.name();
  CudaLanes* known = lanes_[device].load();
  if (known != nullptr) {
    PIPECAST_CHECK(known == lanes) << "device " << device << " changed";
    return;
  }
  lanes_[device].store(lanes);
  PostDeferred(device);
}

// Only the device's own thread learns it (its Send or WaitReceived) and posts its receives, so
// no Recv of the device runs concurrently.
void CudaLocalTransport::PostDeferred(int32_t device) {
  Mailbox& box = boxes_[device];
  std::vector<int32_t> pending;
  {
    std::lock_guard<std::mutex> lock(box.mu);
    pending.swap(deferred_[device]);
  }
  if (pending.empty()) return;
  CudaLanes& lanes = Lanes(device);
  for (int32_t s : pending) {
    const cudaEvent_t point = Pool(device).Take();
    Status st;
    {
      GpuScope scope(lanes.gpu());
      st = Checked(cudaEventRecord(point, lanes.stream(Lane::kCompute)),
                   [&] { return "receiving the " + space_.KeyAt(s).ToString(); });
    }
    std::lock_guard<std::mutex> lock(box.mu);
    Slot& slot = slots_[s];
    slot.point = point;
    if (!st.ok() && slot.error.ok()) slot.error = st;
    if (slot.sent) Copy(slot);
  }
  box.changed.notify_all();
}

CudaLanes& CudaLocalTransport::Lanes(int32_t device) const {
  PIPECAST_CHECK(device >= 0 && device < static_cast<int32_t>(lanes_.size()))
      << "device " << device << " of a transport of " << lanes_.size();
  CudaLanes* lanes = lanes_[device].load();
  PIPECAST_CHECK(lanes != nullptr) << "device " << device << " is not known to the transport yet";
  return *lanes;
}

EventPool& CudaLocalTransport::Pool(int32_t device) {
  const int gpu = Lanes(device).gpu();
  std::lock_guard<std::mutex> lock(pools_mu_);
  for (auto& [g, pool] : pools_)
    if (g == gpu) return *pool;
  pools_.emplace_back(gpu, std::make_unique<EventPool>(gpu, events_per_gpu_));
  return *pools_.back().second;
}

Handle CudaLocalTransport::Send(int32_t from, int32_t to, const MessageKey& key, BufferView buffer,
                                Device& producer, Event ready) {
  Learn(from, producer);
  CudaLanes& lanes = Lanes(from);
  PIPECAST_CHECK(to >= 0 && to < static_cast<int32_t>(lanes_.size())) << "device " << to;
  const int32_t s = space_.Index(key);
  // Capture the ready point now, on the producer's send stream: the device may reuse its event.
  const cudaEvent_t ready_point = Pool(from).Take();
  Status error;
  {
    GpuScope scope(lanes.gpu());
    const cudaStream_t stream = lanes.stream(Lane::kSend);
    const cudaEvent_t e = lanes.event(ready);
    const auto what = [&] { return "sending the " + key.ToString(); };
    if (e != nullptr) error = Checked(cudaStreamWaitEvent(stream, e, 0), what);
    if (error.ok()) error = Checked(cudaEventRecord(ready_point, stream), what);
  }
  const int64_t record =
      recorder_ ? recorder_->Issue(from, FlightAction::kSend, to, key) : int64_t{-1};
  Mailbox& box = boxes_[to];
  {
    std::lock_guard<std::mutex> lock(box.mu);
    Slot& slot = slots_[s];
    PIPECAST_CHECK(!slot.sent) << "duplicate message: " << key.ToString();
    PIPECAST_CHECK(slot.to < 0 || slot.to == to)
        << "the " << key.ToString() << " is sent to device " << to << " but received by device "
        << slot.to;
    slot.src = buffer;
    slot.from = from;
    // Written once, by whichever of Send and Recv comes first: the waits read it unlocked.
    if (slot.to < 0) slot.to = to;
    slot.sent = true;
    slot.ready = ready_point;
    slot.send_record = record;
    if (!error.ok()) slot.error = error;
    if (slot.posted && slot.point != nullptr) Copy(slot);
  }
  box.changed.notify_all();
  return {2 * s};
}

Handle CudaLocalTransport::Recv(int32_t at, int32_t from, const MessageKey& key,
                                BufferView buffer) {
  PIPECAST_CHECK(at >= 0 && at < static_cast<int32_t>(lanes_.size())) << "device " << at;
  const int32_t s = space_.Index(key);
  // The copy overwrites `buffer`: it waits for the compute enqueued so far, which may read it.
  // A device not known yet records that point when it is learned (PostDeferred).
  cudaEvent_t point = nullptr;
  Status error;
  if (CudaLanes* lanes = lanes_[at].load()) {
    point = Pool(at).Take();
    GpuScope scope(lanes->gpu());
    error = Checked(cudaEventRecord(point, lanes->stream(Lane::kCompute)),
                    [&] { return "receiving the " + key.ToString(); });
  }
  const int64_t record =
      recorder_ ? recorder_->Issue(at, FlightAction::kRecv, from, key) : int64_t{-1};
  Mailbox& box = boxes_[at];
  {
    std::lock_guard<std::mutex> lock(box.mu);
    Slot& slot = slots_[s];
    PIPECAST_CHECK(!slot.posted) << "message received twice: " << key.ToString();
    slot.dst = buffer;
    PIPECAST_CHECK(slot.to < 0 || slot.to == at)
        << "the " << key.ToString() << " is sent to device " << slot.to
        << " but received by device " << at;
    slot.posted = true;
    if (slot.to < 0) slot.to = at;
    if (slot.from < 0) slot.from = from;
    slot.point = point;
    slot.recv_record = record;
    if (!error.ok() && slot.error.ok()) slot.error = error;
    if (point == nullptr) deferred_[at].push_back(s);
    if (slot.sent && slot.point != nullptr) Copy(slot);
  }
  box.changed.notify_all();
  return {2 * s + 1};
}

void CudaLocalTransport::Copy(Slot& slot) {
  CudaLanes& src = Lanes(slot.from);
  CudaLanes& dst = Lanes(slot.to);
  const MessageKey key = space_.KeyAt(static_cast<int32_t>(&slot - slots_.data()));
  if (slot.error.ok() && slot.src.count != slot.dst.count) {
    slot.error = InvalidArgument(
        "the " + key.ToString() + " has " + std::to_string(slot.src.count) + " values but device " +
        std::to_string(slot.to) + " expects " + std::to_string(slot.dst.count));
  }
  if (slot.error.ok()) {
    GpuScope scope(dst.gpu());
    const cudaStream_t stream = dst.stream(Lane::kReceive);
    const auto what = [&] {
      return "copying the " + key.ToString() + " from device " + std::to_string(slot.from) +
             " to device " + std::to_string(slot.to);
    };
    const size_t bytes = static_cast<size_t>(slot.src.count) * sizeof(float);
    Status st = Checked(cudaStreamWaitEvent(stream, slot.ready, 0), what);
    if (st.ok()) st = Checked(cudaStreamWaitEvent(stream, slot.point, 0), what);
    if (st.ok() && bytes > 0) {
      st = Checked(src.gpu() == dst.gpu()
                       ? cudaMemcpyAsync(slot.dst.data, slot.src.data, bytes,
                                         cudaMemcpyDeviceToDevice, stream)
                       : cudaMemcpyPeerAsync(slot.dst.data, dst.gpu(), slot.src.data, src.gpu(),
                                             bytes, stream),
                   what);
    }
    if (st.ok()) {
      slot.done = Pool(slot.to).Take();
      st = Checked(cudaEventRecord(slot.done, stream), what);
    }
    slot.error = st;
  }
  Pool(slot.from).Give(slot.ready);  // captured by the stream's wait (or unused)
  Pool(slot.to).Give(slot.point);
  slot.ready = slot.point = nullptr;
  slot.copied = true;
}

Status CudaLocalTransport::WaitReceived(Handle handle, Device& consumer, Lane lane,
                                        Clock::time_point deadline) {
  PIPECAST_CHECK(handle.valid() && handle.id % 2 == 1) << "not a receive handle";
  const int32_t s = handle.id / 2;
  Slot& slot = slots_[s];
  Mailbox& box = boxes_[slot.to];
  const Clock::time_point start = Clock::now();
  const MessageKey key = space_.KeyAt(s);
  Learn(slot.to, consumer);  // posts the receives it made before it was known
  std::unique_lock<std::mutex> lock(box.mu);
  box.changed.wait_until(lock, deadline, [&] { return slot.copied || aborted_.load(); });
  if (!slot.copied && aborted_.load()) {
    return Cancelled("device " + std::to_string(slot.to) + " stopped while waiting for the " +
                     key.ToString() + " (another device failed)");
  }
  if (!slot.copied) {
    return DeadlineExceeded("device " + std::to_string(slot.to) + " waited " +
                            WaitedMs(start, deadline) + " for the " + key.ToString() +
                            " from device " + std::to_string(slot.from));
  }
  if (!slot.error.ok()) return slot.error;
  CudaLanes* lanes = &Lanes(slot.to);
  {
    GpuScope scope(lanes->gpu());
    PIPECAST_RETURN_IF_ERROR(Checked(cudaStreamWaitEvent(lanes->stream(lane), slot.done, 0),
                                     [&] { return "waiting for the " + key.ToString(); }));
  }
  slot.received = true;
  Release(slot);
  return Status::Ok();
}

Status CudaLocalTransport::WaitSent(Handle handle, Clock::time_point deadline) {
  PIPECAST_CHECK(handle.valid() && handle.id % 2 == 0) << "not a send handle";
  const int32_t s = handle.id / 2;
  Slot& slot = slots_[s];
  Mailbox& box = boxes_[slot.to];
  const Clock::time_point start = Clock::now();
  const MessageKey key = space_.KeyAt(s);
  std::unique_lock<std::mutex> lock(box.mu);
  while (true) {
    box.changed.wait_until(lock, deadline, [&] { return slot.copied || aborted_.load(); });
    if (slot.copied && !slot.error.ok()) return slot.error;
    if (slot.copied) {
      const cudaError_t q = cudaEventQuery(slot.done);
      if (q == cudaSuccess) break;
      if (q != cudaErrorNotReady) return CudaStatus(q, "copying the " + key.ToString());
    }
    if (aborted_.load()) {
      return Cancelled("device " + std::to_string(slot.from) + " stopped while the " +
                       key.ToString() + " was not yet received (another device failed)");
    }
    if (Clock::now() >= deadline) {
      return DeadlineExceeded("device " + std::to_string(slot.from) + " waited " +
                              WaitedMs(start, deadline) + " for device " + std::to_string(slot.to) +
                              " to receive the " + key.ToString());
    }
    if (slot.copied) {  // enqueued, not done: poll the event without holding the lock
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      lock.lock();
    }
  }
  if (recorder_) {
    recorder_->Complete(slot.from, slot.send_record);
    recorder_->Complete(slot.to, slot.recv_record);
  }
  slot.sent_done = true;
  Release(slot);
  return Status::Ok();
}

// REQUIRES: the receiver's mailbox lock held. The copy's event goes back to the pool once both
// waits are past it.
void CudaLocalTransport::Release(Slot& slot) {
  if (!slot.received || !slot.sent_done || slot.done == nullptr) return;
  Pool(slot.to).Give(slot.done);
  slot.done = nullptr;
}

void CudaLocalTransport::Abort() {
  aborted_.store(true);
  for (Mailbox& box : boxes_) {
    std::lock_guard<std::mutex> lock(box.mu);
    box.changed.notify_all();
  }
}

}  // namespace pipecast::runtime::cuda
