// In-process transport between device threads. Each message has a slot in a table sized once
// (MessageSpace), so a run allocates nothing: Send publishes the sender's buffer in the slot,
// Recv names the receiver's, and the receiver's WaitReceived copies one into the other and marks
// the send complete (one copy per message, as a network would make). An optional delay hook (for
// tests) holds each message back before it becomes visible, to show that results do not depend on
// delivery timing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

#include "runtime/transport.h"

namespace pipecast::runtime {

class InProcessTransport : public Transport {
 public:
  InProcessTransport(int32_t num_devices, const MessageSpace& space);
  // Called on the sender's thread before a message is published (e.g. to sleep a random time).
  void SetDeliveryDelay(std::function<void(const MessageKey&)> delay) { delay_ = std::move(delay); }

  PIPECAST_TRANSPORT_OVERRIDES;

 private:
  struct Slot {
    BufferView src, dst;
    int32_t from = -1, to = -1;
    bool sent = false, posted = false, delivered = false;
  };
  // A receiving device's lock over its slots, the condition its receives wait on (a message
  // arrived), and per sending device the condition that sender's WaitSent waits on (a message
  // was taken), so that arrivals do not wake senders and deliveries do not wake receivers.
  struct Mailbox {
    std::mutex mu;
    std::condition_variable arrived;
    std::vector<std::condition_variable> taken;  // per sending device
  };
  MessageSpace space_;
  std::vector<Slot> slots_;
  std::vector<Mailbox> boxes_;  // per receiving device; guards its slots
  std::function<void(const MessageKey&)> delay_;
  std::atomic<bool> aborted_{false};
};

}  // namespace pipecast::runtime
