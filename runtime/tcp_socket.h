// TCP sockets for the store (runtime/tcp_store.h): an owning descriptor, listening on every
// interface, one connection attempt bounded by a deadline, sends bounded by a deadline, and
// peers' names for messages. Every socket is non-blocking; waits use poll() with the deadline,
// so nothing here blocks past it (name resolution excepted: getaddrinfo has no timeout). Sends
// never raise SIGPIPE.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pipecast::runtime::net {

using Clock = std::chrono::steady_clock;

// An owning file descriptor, closed on destruction; move-only.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

// Listens on every interface (IPv6 with IPv4 mapped, or IPv4 alone where IPv6 is missing) at
// `port`, 0 for a free port the system picks, with SO_REUSEADDR; `*bound_port` gets the port.
// kIoError naming the port and the reason ("Address already in use") on failure.
Result<Fd> Listen(int port, int* bound_port);

// One attempt to connect to host:port, trying every address the name resolves to, waiting at
// most until `deadline`. kIoError with the reason ("Connection refused", "timed out", a name
// that does not resolve) on failure.
Result<Fd> ConnectOnce(const std::string& host, int port, Clock::time_point deadline);

// Accepts one pending connection of a listening socket, or an invalid Fd when none is pending.
Fd AcceptOne(int listen_fd);

// Sends every byte, waiting for room until `deadline`. kIoError when the peer is gone,
// kDeadlineExceeded when the deadline passes first.
Status SendAll(int fd, std::string_view bytes, Clock::time_point deadline);

// Waits until `fd` has bytes (or its peer closed): false when the deadline passed first.
bool WaitReadable(int fd, Clock::time_point deadline);

// Milliseconds from now to `deadline`, rounded up, 0 when it has passed, for poll().
int MillisUntil(Clock::time_point deadline);

// "127.0.0.1:54321" (IPv4-mapped addresses shown as IPv4), or "an unknown peer".
std::string PeerName(int fd);

}  // namespace pipecast::runtime::net
