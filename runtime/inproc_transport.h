// In-process transport between device threads: one mailbox per device, keyed by message.
// An optional delay hook (for tests) holds each message back before it becomes visible, to prove
// that results do not depend on delivery timing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/transport.h"

namespace pipecast::runtime {

class InProcessTransport : public Transport {
 public:
  explicit InProcessTransport(int32_t num_devices);
  // Called on the sender's thread before a message is delivered (e.g. to sleep a random time).
  void SetDeliveryDelay(std::function<void(const MessageKey&)> delay) { delay_ = std::move(delay); }

  void Send(int32_t src_device, int32_t dst_device, const MessageKey& key,
            Tensor tensor) override;
  Result<Tensor> Recv(int32_t device, const MessageKey& key,
                      std::chrono::milliseconds timeout) override;
  void Abort() override;

 private:
  struct Mailbox {
    std::mutex mu;
    std::condition_variable cv;
    std::map<MessageKey, Tensor> messages;
  };
  std::vector<Mailbox> boxes_;
  std::function<void(const MessageKey&)> delay_;
  std::atomic<bool> aborted_{false};
};

}  // namespace pipecast::runtime
