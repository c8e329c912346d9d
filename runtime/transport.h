// Transports carry activations and gradients between devices. The executor addresses a message
// by (kind, stage, microbatch): the receiver asks for exactly the message its program names, so
// arrival order never matters and results do not depend on thread timing.
//
// The interface is shaped for asynchronous backends (MPI, NCCL): Send hands the tensor over and
// returns; Recv blocks until the named message arrives or the deadline passes. Every wait has a
// deadline; on expiry Recv returns kDeadlock with what it waited for, so a run never hangs
// silently. Thread-safety: Send and Recv may be called concurrently from different devices'
// threads; one device calls Recv from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "runtime/tensor.h"

namespace pipecast::runtime {

struct MessageKey {
  bool gradient = false;  // false: activation for stage `stage`; true: gradient for `stage`
  int32_t stage = 0;      // the receiving virtual stage
  int32_t microbatch = 0;
  friend auto operator<=>(const MessageKey&, const MessageKey&) = default;
  std::string ToString() const;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Send(int32_t src_device, int32_t dst_device, const MessageKey& key,
                    Tensor tensor) = 0;
  virtual Result<Tensor> Recv(int32_t device, const MessageKey& key,
                              std::chrono::milliseconds timeout) = 0;
  // Wakes every waiting Recv, which then fails with kCancelled-like status: used when one device
  // stops the run (NaN, deadline) so the others stop too instead of waiting out their deadlines.
  virtual void Abort() = 0;
};

}  // namespace pipecast::runtime
