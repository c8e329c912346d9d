#include "runtime/inproc_transport.h"

#include "common/check.h"

namespace pipecast::runtime {

std::string MessageKey::ToString() const {
  return std::string(gradient ? "gradient" : "activation") + " of microbatch " +
         std::to_string(microbatch) + " for stage " + std::to_string(stage);
}

InProcessTransport::InProcessTransport(int32_t num_devices) : boxes_(num_devices) {}

void InProcessTransport::Send(int32_t src_device, int32_t dst_device, const MessageKey& key,
                              Tensor tensor) {
  (void)src_device;
  PIPECAST_CHECK(dst_device >= 0 && dst_device < static_cast<int32_t>(boxes_.size()))
      << "device " << dst_device;
  if (delay_) delay_(key);
  Mailbox& box = boxes_[dst_device];
  {
    std::lock_guard<std::mutex> lock(box.mu);
    const bool inserted = box.messages.emplace(key, std::move(tensor)).second;
    PIPECAST_CHECK(inserted) << "duplicate message: " << key.ToString();
  }
  box.cv.notify_all();
}

Result<Tensor> InProcessTransport::Recv(int32_t device, const MessageKey& key,
                                        std::chrono::milliseconds timeout) {
  Mailbox& box = boxes_[device];
  std::unique_lock<std::mutex> lock(box.mu);
  const bool arrived = box.cv.wait_for(
      lock, timeout, [&] { return box.messages.count(key) > 0 || aborted_.load(); });
  if (aborted_.load() && box.messages.count(key) == 0) {
    return Status(StatusCode::kDeadlock, "device " + std::to_string(device) +
                                             " stopped while waiting for the " + key.ToString() +
                                             " (another device failed)");
  }
  if (!arrived) {
    return Status(StatusCode::kDeadlock, "device " + std::to_string(device) + " waited " +
                                             std::to_string(timeout.count()) + " ms for the " +
                                             key.ToString());
  }
  auto it = box.messages.find(key);
  Tensor t = std::move(it->second);
  box.messages.erase(it);
  return t;
}

void InProcessTransport::Abort() {
  aborted_.store(true);
  for (Mailbox& box : boxes_) {
    std::lock_guard<std::mutex> lock(box.mu);
    box.cv.notify_all();
  }
}

}  // namespace pipecast::runtime
