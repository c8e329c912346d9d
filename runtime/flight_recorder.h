// The flight recorder: every device's last N transport actions (what, message, peer, when it
// was issued, whether and when it completed), kept in a fixed ring per device so that a run that
// fails or hangs can print what each device did last (Dump). Recording takes a per-device lock
// and writes into the ring: it allocates nothing and never blocks on another device. Any thread
// may record, complete and dump; a device's entries keep the order of their Issue calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/transport.h"

namespace pipecast::runtime {

enum class FlightAction : uint8_t {
  kSend = 0,          // a send was enqueued (peer: the receiving device)
  kRecv = 1,          // a receive was enqueued (peer: the sending device)
  kWaitReceived = 2,  // the consumer lane was made to wait for a receive
  kWaitSent = 3,      // the host waited for a send to complete
  kAbort = 4,         // the transport was aborted (peer: the device it blamed, or -1)
};

// One action as recorded. Times are nanoseconds since the recorder was created.
struct FlightEntry {
  int64_t id = -1;  // the device's sequence number of the action, from 0
  FlightAction what = FlightAction::kSend;
  int32_t device = -1;
  int32_t peer = -1;
  MessageKey key;
  int64_t issued_ns = 0;
  int64_t completed_ns = -1;  // -1: not (known to be) completed
};

class FlightRecorder {
 public:
  // `capacity` entries per device (>= 1). `now_ns`, for tests: the clock (default: steady clock
  // since construction).
  FlightRecorder(int32_t devices, int32_t capacity, std::function<int64_t()> now_ns = {});

  int32_t devices() const { return static_cast<int32_t>(rings_.size()); }
  int32_t capacity() const { return capacity_; }

  // Records an action of `device`; returns its id (for Complete).
  int64_t Issue(int32_t device, FlightAction what, int32_t peer, const MessageKey& key);
  // Marks action `id` of `device` completed now, unless the ring has overwritten it already or
  // it was completed before.
  void Complete(int32_t device, int64_t id);

  // The device's entries still in the ring, oldest first; and how many it recorded in all.
  std::vector<FlightEntry> Last(int32_t device) const;
  int64_t Recorded(int32_t device) const;

  // One block per device, oldest action first, one line per entry, e.g.
  //   device 1: last 2 of 7 actions
  //     #5 at 12.500 ms: send the <key> to device 2, completed at 13.000 ms
  //     #6 at 14.250 ms: receive the <key> from device 2, NOT COMPLETED
  // with <key> as MessageKey::ToString writes it. `only` >= 0 restricts it to that device.
  std::string Dump(int32_t only = -1) const;
  // One entry as Dump writes it, without the indentation.
  static std::string Describe(const FlightEntry& e);

 private:
  struct Ring {
    mutable std::mutex mu;
    std::unique_ptr<FlightEntry[]> entries;
    int64_t next = 0;  // id of the next action
  };
  int64_t Now() const;

  const int32_t capacity_;
  std::vector<Ring> rings_;
  std::function<int64_t()> now_ns_;
  const std::chrono::steady_clock::time_point start_;
};

}  // namespace pipecast::runtime
