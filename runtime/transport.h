// Transports carry activations and gradients between devices, asynchronously, with handles.
//
// The executor addresses a message by (kind, receiving stage, microbatch) and names the buffers
// at both ends: Send hands over a device buffer (ready once an event of the producing device
// completes) and returns at once; Recv names the buffer to receive into and returns at once; a
// wait on the handle completes the transfer. The receiver asks for exactly the message its
// program names, so arrival order never matters and results do not depend on timing. A send
// buffer must stay untouched until WaitSent returns; a receive buffer may be read once
// WaitReceived returns.
//
// Every wait has a deadline. Errors keep their kind: kDeadlineExceeded (naming the message and
// the peer), kCancelled (Abort was called: another device or rank failed), kInvalidArgument (the
// two programs disagree on a link's order or a message's size), kDeviceError (the transport
// itself failed, e.g. an MPI error). Thread-safety: each device's thread calls Send, Recv and the
// waits for its own handles; Abort may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "runtime/device.h"

namespace pipecast::runtime {

// The all-reduce of a stage's weight gradient (ir::ActionKind::kAllReduce) is two kinds of
// point-to-point messages, so that its sum is the same bits on every copy whatever the timing:
// every other copy r sends its gradient to the replica-0 copy (kGradientSum), which sums them in
// replica order 0, 1, ..., R - 1 and sends the sum back to each (kReducedGradient). A
// collective's own reduction order (MPI_Allreduce) is unspecified, hence this. The elastic
// averaging (ir::ActionKind::kAverage) is two more: every other copy r sends its weights to the
// replica-0 copy (kAverageWeights), which computes the new reference weights W~ and sends them
// back to each (kAverageReference; runtime/executor.h).
struct MessageKey {
  enum class Kind : uint8_t {
    kActivation = 0,
    kGradient = 1,
    kEvalActivation = 2,
    kGradientSum = 3,       // replica `replica`'s gradient of `stage`, to the replica-0 copy
    kReducedGradient = 4,   // the summed gradient of `stage`, from replica 0 to `replica`
    kAverageWeights = 5,    // replica `replica`'s weights of `stage`, to the replica-0 copy
    kAverageReference = 6,  // the new reference weights of `stage`, from replica 0 to `replica`
  };
  Kind kind = Kind::kActivation;
  int32_t stage = 0;       // the receiving virtual stage (all-reduce: the reduced stage)
  int32_t microbatch = 0;  // global microbatch index, the evaluation chunk, or the round
  int32_t replica = 0;     // all-reduce, average: the copy other than replica 0 (>= 1); else 0
  friend auto operator<=>(const MessageKey&, const MessageKey&) = default;
  bool reduction() const { return kind >= Kind::kGradientSum; }
  // "the activation of microbatch 3 for stage 1", "the gradient sum of stage 2, round 0, from
  // replica 1", "the weights to average of stage 0, round 2, from replica 1"
  std::string ToString() const;
};

struct Handle {
  int32_t id = -1;  // -1: no transfer
  bool valid() const { return id >= 0; }
};

// How many distinct messages a transport must be able to address (its tables are sized once).
struct MessageSpace {
  int32_t stages = 1;
  int32_t microbatches = 1;  // global microbatches of the program
  int32_t eval_chunks = 0;
  int32_t replicas = 1;  // copies of each stage (all-reduce and average messages only when > 1)
  int32_t rounds = 0;    // all-reduce or average rounds of a stage (the most of any stage)
  // Distinct messages: one per (kind, stage, microbatch or chunk), and per (kind, stage, round,
  // replica) of the all-reduce and average kinds.
  int32_t size() const;
  // The message's index in [0, size()); aborts on a key outside the space.
  int32_t Index(const MessageKey& key) const;
  MessageKey KeyAt(int32_t index) const;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `buffer` of device `from` (ready once `producer` completes `ready`) to device `to`.
  virtual Handle Send(int32_t from, int32_t to, const MessageKey& key, BufferView buffer,
                      Device& producer, Event ready) = 0;
  // Receives `key` from device `from` into `buffer` of device `at`.
  virtual Handle Recv(int32_t at, int32_t from, const MessageKey& key, BufferView buffer) = 0;
  // Makes the data available to later operations on `lane` of `consumer`: a host transport
  // blocks until the data is in the buffer; a device transport may instead make the lane wait.
  virtual Status WaitReceived(Handle handle, Device& consumer, Lane lane,
                              Clock::time_point deadline) = 0;
  // Blocks until the send of `handle` completed (its buffer may be reused).
  virtual Status WaitSent(Handle handle, Clock::time_point deadline) = 0;
  // Stops every wait of this process with kCancelled and cancels outstanding transfers.
  virtual void Abort() = 0;
};

}  // namespace pipecast::runtime

// The overrides every concrete Transport declares (one list, so that they cannot drift apart).
#define PIPECAST_TRANSPORT_OVERRIDES                                                          \
  Handle Send(int32_t from, int32_t to, const MessageKey& key, BufferView buffer,             \
              Device& producer, Event ready) override;                                        \
  Handle Recv(int32_t at, int32_t from, const MessageKey& key, BufferView buffer) override;   \
  Status WaitReceived(Handle handle, Device& consumer, Lane lane, Clock::time_point deadline) \
      override;                                                                               \
  Status WaitSent(Handle handle, Clock::time_point deadline) override;                        \
  void Abort() override
