// NcclTransport: the transport between processes, one rank per GPU and one device per rank,
// over NCCL point-to-point operations.
//
// Order. NCCL pairs the k-th ncclSend from rank a to rank b with the k-th ncclRecv at b from a
// on the same communicator, by order and not by tag, and the kernels of one communicator run one
// after another in the order they were enqueued, whatever the stream. So every channel, a
// (sender, receiver, class of message) with the classes activations (and evaluation
// activations), gradients and reductions (ChannelClass in transport_order.h), gets its own
// communicator, split from the world communicator, and its own stream (NcclChannels). A send is
// enqueued when the executor calls Send, a receive when it calls Recv, so each channel carries
// its messages in the executor's issue order at both ends. The executor issues a device's sends
// and receives in its program order (runtime/executor.cc: at SA/SG and RA/RG actions, and in a
// collective's fixed sequence), and the validator keeps each class's order on a link
// (docs/schedule-formats.md rule 10) and the collectives' order on every pair of devices, so
// both ends of a channel issue the same messages in the same order. A send completes only once
// its receive runs (rendezvous); CheckProgramOrder (transport_order.h) runs the program's calls
// under exactly this model and reports a link out of order or a cycle of waits before the run.
// One send stream and one receive stream per device would not do: four of the generated
// methods deadlock or mix a link's classes under it (tests/runtime/cuda/transport_order_test).
//
// Streams and events. Send makes the channel's stream wait for the producer's ready event, then
// enqueues ncclSend in a group and records a completion event; Recv makes the channel's stream
// wait for the consumer's compute enqueued so far (the receive overwrites a buffer that compute
// may still read), enqueues ncclRecv and records its event. WaitReceived makes the consumer's
// lane wait for that event (the host does not block); WaitSent polls it against the deadline.
// A message from a rank to itself (tests on one GPU) is enqueued once both its Send and its
// Recv are known, as one group: NCCL runs a rank's send to itself only with its receive in one
// group. The send buffer is left alone until WaitSent returns, as the Transport contract says.
//
// Deadlines and failures. A watchdog thread polls every channel's ncclCommGetAsyncError and the
// events of the transfers in flight against the deadlines of their waits. On an NCCL error (a
// lost peer reads "remote process exited or there was a network error"), an expired deadline or
// Abort, it aborts every channel (ncclCommAbort, which ends this rank's NCCL kernels, and makes
// peers see an error in turn), records the failure, dumps the flight recorder to stderr once,
// and every wait then returns that failure (kDeviceError or kDeadlineExceeded, or kCancelled
// after Abort) naming its own message and peer, the failure, and the rank's last completed
// transfers. The caller ends the process non-zero with the report (one clear message). A
// failure after a program's last wait (an evaluation's last stage only receives, and its
// receives' waits return before the data is there) is also handed to the local device
// (CudaLanes::NoteTransportFailure), whose Synchronize at the end of the program returns it
// instead of results computed from data that never came; failure() keeps it too.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cuda/cuda_lanes.h"
#include "runtime/cuda/event_pool.h"
#include "runtime/cuda/nccl_bootstrap.h"
#include "runtime/cuda/transport_order.h"
#include "runtime/flight_recorder.h"
#include "runtime/transport.h"

namespace pipecast::runtime::cuda {

// One rank's channel communicators and streams, created once per run and shared by the
// transports of its programs.
class NcclChannels {
 public:
  // Collective: every rank calls it with the same `channels`, in the same order; splits `world`
  // once per channel (the two ranks of a channel in it, sender first). Streams are created on
  // `gpu`. Errors: NCCL's (kDeviceError), a rank that does not arrive by `deadline`.
  static Result<std::unique_ptr<NcclChannels>> Create(ncclComm_t world, int32_t rank, int gpu,
                                                      std::span<const Channel> channels,
                                                      Clock::time_point deadline);
  ~NcclChannels();
  NcclChannels(const NcclChannels&) = delete;
  NcclChannels& operator=(const NcclChannels&) = delete;

  int32_t rank() const { return rank_; }
  int gpu() const { return gpu_; }
  // The index of the channel among this rank's, or -1 when the rank is not on it.
  int32_t Find(const Channel& c) const;
  const Channel& channel(int32_t i) const { return mine_[i].channel; }
  int32_t size() const { return static_cast<int32_t>(mine_.size()); }
  cudaStream_t stream(int32_t i) const { return mine_[i].stream; }
  // The peer's rank within channel i's communicator (0 the sender, 1 the receiver).
  int32_t peer_rank(int32_t i) const;

  // Enqueues `ops` (ncclSend/ncclRecv calls on channel i's communicator and stream) as one
  // group and waits until NCCL accepted them, before `deadline`. Serialised with Abort.
  // `what` names the transfer in an error (built only then).
  Status Enqueue(int32_t i, const std::function<ncclResult_t(ncclComm_t, cudaStream_t)>& ops,
                 Clock::time_point deadline, const std::function<std::string()>& what);
  // The first asynchronous error of any channel (ok when none), naming the channel.
  Status AsyncError();
  // Aborts every channel communicator (ncclCommAbort); later Enqueue calls fail. Idempotent;
  // any thread.
  void Abort();
  bool aborted() const { return aborted_.load(); }

 private:
  struct Mine {
    Channel channel;
    ncclComm_t comm = nullptr;
    cudaStream_t stream = nullptr;
  };
  NcclChannels(int32_t rank, int gpu) : rank_(rank), gpu_(gpu) {}
  const int32_t rank_;
  const int gpu_;
  std::vector<Mine> mine_;
  std::mutex mu_;  // NCCL calls on the channel communicators, and Abort
  std::atomic<bool> aborted_{false};
};

class NcclTransport : public Transport {
 public:
  struct Options {
    int32_t events = 256;  // CUDA events created up front
    std::chrono::microseconds watchdog_period{1000};
    // How long an enqueue may take (NCCL connects a channel on its first use).
    std::chrono::milliseconds enqueue_deadline{60000};
  };
  // The transport of rank `channels.rank()`, whose one device is `local` (a CudaLanes),
  // addressing the messages of `space`. `recorder` (may be null) records every transfer under
  // device index `channels.rank()`. Starts the watchdog.
  NcclTransport(NcclChannels& channels, const MessageSpace& space, Device& local,
                FlightRecorder* recorder, const Options& options);
  NcclTransport(NcclChannels& channels, const MessageSpace& space, Device& local,
                FlightRecorder* recorder = nullptr)
      : NcclTransport(channels, space, local, recorder, Options{}) {}
  ~NcclTransport() override;  // stops the watchdog

  PIPECAST_TRANSPORT_OVERRIDES;

  // The failure that stopped the transport (ok while none).
  Status failure() const;

 private:
  struct Slot;
  Slot& SlotOf(Handle h, bool send);
  void Issue(Slot& s);                         // enqueues a transfer, or a self pair
  Status Failed(const Slot& s, Status cause);  // the failure, as a wait of `s` reports it
  void Fail(Status cause);                     // first failure wins: abort, dump
  void Watch();                                // the watchdog thread's loop
  std::string Describe(const Slot& s) const;

  NcclChannels& channels_;
  const MessageSpace space_;
  Device& local_;
  CudaLanes* lanes_;
  FlightRecorder* recorder_;
  const Options options_;
  const int32_t rank_;
  EventPool events_;
  std::vector<Slot> slots_;         // 2 * index: send, 2 * index + 1: receive
  mutable std::mutex mu_;           // slots' completion state, in_flight_, failure_
  std::vector<int32_t> in_flight_;  // slot ids the watchdog polls
  Status failure_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
  std::thread watchdog_;
};

}  // namespace pipecast::runtime::cuda
