// CudaLocalTransport: the transport between CudaDevices of one process (several stages on one
// GPU, one thread per stage, or several GPUs in one process). A message is one device-to-device
// copy (cudaMemcpyAsync on one GPU, cudaMemcpyPeerAsync across GPUs) on the receiver's kReceive
// stream, enqueued by whichever of Send and Recv comes second (arrival order does not matter, as
// in InProcessTransport). It starts once the producer's ready event and the receiver's compute
// issued before its Recv are done (the copy overwrites a buffer that compute may still read).
// WaitReceived makes the consumer's lane wait for the copy's event (the host blocks only until
// the copy is enqueued, i.e. until the sender has called Send); WaitSent polls that event
// against the deadline. A transport built from a device count learns each device's lanes from
// the Device its first Send or WaitReceived is handed; the receives it posted before then get
// their receive point at that moment (after the compute enqueued by then) and are copied as
// soon as they are sent, like the others. A copy waits only for work enqueued before it (the
// two points, and the copies ahead of it on the receive stream), never for a thread to make a
// later call, so there is no rendezvous and no order to check: every program the executor runs
// on threads runs here. Abort stops every wait with kCancelled, as in InProcessTransport.
//
// Events come from a pool per GPU, created up front (from the devices given) or when the GPU's
// first device is learned; a message takes three (ready, receive point, copy done) and gives
// them back as soon as they are captured or waited for. Tables are
// sized once from the MessageSpace. Thread-safety: as Transport; the copy may be enqueued by
// the sender's thread on the receiver's stream (CUDA streams accept work from any thread).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "runtime/cuda/cuda_lanes.h"
#include "runtime/cuda/event_pool.h"
#include "runtime/flight_recorder.h"
#include "runtime/transport.h"

namespace pipecast::runtime::cuda {

class CudaLocalTransport : public Transport {
 public:
  // `devices[d]` is device d of the program (a CudaLanes), or null for a device this process
  // does not run. `events_per_gpu` events are created up front on each GPU in use. `recorder`
  // (may be null) records every transfer under the device's index.
  CudaLocalTransport(std::span<Device* const> devices, const MessageSpace& space,
                     FlightRecorder* recorder = nullptr, int32_t events_per_gpu = 256);
  // `num_devices` devices, each learned at its first Send or WaitReceived (a CudaLanes), as
  // InProcessTransport is built (TransportFactory).
  CudaLocalTransport(int32_t num_devices, const MessageSpace& space,
                     FlightRecorder* recorder = nullptr, int32_t events_per_gpu = 256);
  ~CudaLocalTransport() override;

  PIPECAST_TRANSPORT_OVERRIDES;

 private:
  struct Slot {
    BufferView src, dst;
    int32_t from = -1, to = -1;
    bool sent = false, posted = false, copied = false;
    bool received = false, sent_done = false;  // the two waits are past the copy
    cudaEvent_t ready = nullptr;               // the producer's ready point (on its kSend stream)
    cudaEvent_t point = nullptr;  // the receiver's compute at Recv (on its kCompute stream)
    cudaEvent_t done = nullptr;   // after the copy (on the receiver's kReceive stream)
    int64_t send_record = -1, recv_record = -1;
    Status error;  // a size mismatch or a CUDA error, reported by both waits
  };
  // Per receiving device: the lock over its slots and the condition its waits use.
  struct Mailbox {
    std::mutex mu;
    std::condition_variable changed;
  };
  CudaLanes& Lanes(int32_t device) const;
  // Records `dev` as device `device`'s lanes the first time, and then posts its deferred
  // receives (PostDeferred).
  void Learn(int32_t device, Device& dev);
  // The receives `device` posted before it was known get their receive point now, on its
  // compute stream (later than at their Recv: the copy waits for more of its compute, never
  // less), and those already sent are copied, so that no copy waits for the receiver's thread
  // to reach its WaitReceived (a sender's WaitSent would then wait for that thread, a
  // rendezvous this transport must not have).
  void PostDeferred(int32_t device);
  EventPool& Pool(int32_t device);
  void Copy(Slot& slot);  // REQUIRES: the receiver's mailbox lock held, sent and posted
  void Release(Slot& slot);

  std::vector<std::atomic<CudaLanes*>> lanes_;  // per device, null until known
  const int32_t events_per_gpu_;
  std::mutex pools_mu_;
  std::vector<std::pair<int, std::unique_ptr<EventPool>>> pools_;  // (GPU, its pool)
  MessageSpace space_;
  std::vector<Slot> slots_;
  std::vector<Mailbox> boxes_;
  std::vector<std::vector<int32_t>> deferred_;  // per device: receives posted before it was known
  FlightRecorder* recorder_;
  std::atomic<bool> aborted_{false};
};

}  // namespace pipecast::runtime::cuda
