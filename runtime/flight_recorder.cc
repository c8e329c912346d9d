#include "runtime/flight_recorder.h"

#include <cstdio>

#include "common/check.h"

namespace pipecast::runtime {
namespace {

// "12.500 ms"
std::string Ms(int64_t ns) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f ms", static_cast<double>(ns) / 1e6);
  return text;
}

}  // namespace

FlightRecorder::FlightRecorder(int32_t devices, int32_t capacity, std::function<int64_t()> now_ns)
    : capacity_(capacity),
      rings_(static_cast<size_t>(devices)),
      now_ns_(std::move(now_ns)),
      start_(std::chrono::steady_clock::now()) {
  PIPECAST_CHECK(devices >= 1 && capacity >= 1)
      << "flight recorder of " << devices << " devices x " << capacity << " entries";
  for (Ring& r : rings_) r.entries = std::make_unique<FlightEntry[]>(static_cast<size_t>(capacity));
}

int64_t FlightRecorder::Now() const {
  if (now_ns_) return now_ns_();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              start_)
      .count();
}

int64_t FlightRecorder::Issue(int32_t device, FlightAction what, int32_t peer,
                              const MessageKey& key) {
  PIPECAST_CHECK(device >= 0 && device < devices()) << "flight recorder: device " << device;
  Ring& r = rings_[device];
  std::lock_guard<std::mutex> lock(r.mu);  // the clock inside: a ring's times never decrease
  const int64_t id = r.next++;
  r.entries[id % capacity_] = FlightEntry{id, what, device, peer, key, Now(), -1};
  return id;
}

void FlightRecorder::Complete(int32_t device, int64_t id) {
  PIPECAST_CHECK(device >= 0 && device < devices()) << "flight recorder: device " << device;
  const int64_t now = Now();
  Ring& r = rings_[device];
  std::lock_guard<std::mutex> lock(r.mu);
  FlightEntry& e = r.entries[id % capacity_];
  if (e.id == id && e.completed_ns < 0) e.completed_ns = now;
}

std::vector<FlightEntry> FlightRecorder::Last(int32_t device) const {
  const Ring& r = rings_[device];
  std::lock_guard<std::mutex> lock(r.mu);
  const int64_t first = r.next > capacity_ ? r.next - capacity_ : 0;
  std::vector<FlightEntry> out;
  out.reserve(static_cast<size_t>(r.next - first));
  for (int64_t id = first; id < r.next; ++id) out.push_back(r.entries[id % capacity_]);
  return out;
}

int64_t FlightRecorder::Recorded(int32_t device) const {
  const Ring& r = rings_[device];
  std::lock_guard<std::mutex> lock(r.mu);
  return r.next;
}

std::string FlightRecorder::Describe(const FlightEntry& e) {
  std::string s = "#";
  s += std::to_string(e.id);
  s += " at ";
  s += Ms(e.issued_ns);
  s += ": ";
  const std::string peer = "device " + std::to_string(e.peer);
  switch (e.what) {
    case FlightAction::kSend:
      s += "send the " + e.key.ToString() + " to " + peer;
      break;
    case FlightAction::kRecv:
      s += "receive the " + e.key.ToString() + " from " + peer;
      break;
    case FlightAction::kWaitReceived:
      s += "wait (on the device) for the " + e.key.ToString() + " from " + peer;
      break;
    case FlightAction::kWaitSent:
      s += "wait until " + peer + " has the " + e.key.ToString();
      break;
    case FlightAction::kAbort:
      s += e.peer >= 0 ? "abort (blaming " + peer + ")" : std::string("abort");
      return s;
  }
  s += e.completed_ns >= 0 ? ", completed at " + Ms(e.completed_ns) : ", NOT COMPLETED";
  return s;
}

std::string FlightRecorder::Dump(int32_t only) const {
  std::string out;
  for (int32_t d = 0; d < devices(); ++d) {
    if (only >= 0 && d != only) continue;
    const std::vector<FlightEntry> last = Last(d);
    const int64_t all = last.empty() ? 0 : last.back().id + 1;
    out += "device " + std::to_string(d) + ": last " + std::to_string(last.size()) + " of " +
           std::to_string(all) + " actions\n";
    for (const FlightEntry& e : last) out += "  " + Describe(e) + "\n";
  }
  return out;
}

}  // namespace pipecast::runtime
