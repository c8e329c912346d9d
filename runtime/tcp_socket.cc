#include "runtime/tcp_socket.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pipecast::runtime::net {
namespace {

std::string Reason(int error) { return std::strerror(error); }

void SetNoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Waits for `events` on `fd` until `deadline`: the revents, 0 on timeout.
short PollOne(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd entry{fd, events, 0};
    const int ready = ::poll(&entry, 1, MillisUntil(deadline));
    if (ready > 0) return entry.revents;
    if (ready == 0 && Clock::now() >= deadline) return 0;
    if (ready < 0 && errno != EINTR) return POLLERR;
  }
}

// A socket of `family` listening on every address at `port`, or the errno of the step failing.
Result<Fd> ListenFamily(int family, int port, int* error) {
  Fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  *error = errno;
  if (!fd.valid()) return IoError("socket: " + Reason(*error));
  const int one = 1;
  const int zero = 0;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage address{};
  socklen_t length = 0;
  if (family == AF_INET6) {
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_any;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_ANY);
    v4->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0) {
    *error = errno;
    return IoError(Reason(*error));
  }
  *error = 0;
  return fd;
}

// Whether a connected socket is connected to itself: TCP's simultaneous open lets a retried
// connect to a free local port in the ephemeral range land on its own source port.
bool ConnectedToItself(int fd) {
  sockaddr_storage local{};
  sockaddr_storage peer{};
  socklen_t local_length = sizeof(local);
  socklen_t peer_length = sizeof(peer);
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) == 0 &&
         ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) == 0 &&
         local_length == peer_length && std::memcmp(&local, &peer, local_length) == 0;
}

// Waits for a non-blocking connect() in progress: 0 when connected, else an errno.
int FinishConnect(int fd, Clock::time_point deadline) {
  const short revents = PollOne(fd, POLLOUT, deadline);
  if (revents == 0) return ETIMEDOUT;
  int error = 0;
  socklen_t length = sizeof(error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void Fd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<Fd> Listen(int port, int* bound_port) {
  int error = 0;
  Result<Fd> fd = ListenFamily(AF_INET6, port, &error);
  if (!fd.ok() && error != EADDRINUSE && error != EACCES) fd = ListenFamily(AF_INET, port, &error);
  if (!fd.ok()) {
    std::string message = "cannot listen on port " + std::to_string(port) + ": " + Reason(error);
    if (error == EADDRINUSE) {
      message +=
          " (another program, or the store of another job, listens there: choose another "
          "MASTER_PORT)";
    }
    return IoError(message);
  }
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  ::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&address), &length);
  *bound_port =
      ntohs(address.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  return fd;
}

Result<Fd> ConnectOnce(const std::string& host, int port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int resolved = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (resolved != 0) {
    return IoError("cannot resolve '" + host + "': " + ::gai_strerror(resolved));
  }
  std::string last = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last = Reason(errno);
      continue;
    }
    int error = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
    if (error == EINPROGRESS) error = FinishConnect(fd.get(), deadline);
    if (error == 0 && ConnectedToItself(fd.get())) {
      last = "Connection refused (the attempt connected to itself)";
      continue;
    }
    if (error == 0) {
      ::freeaddrinfo(found);
      SetNoDelay(fd.get());
      return fd;
    }
    last = error == ETIMEDOUT ? std::string("timed out") : Reason(error);
  }
  ::freeaddrinfo(found);
  return IoError(last);
}

Fd AcceptOne(int listen_fd) {
  while (true) {
    Fd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (fd.valid()) {
      SetNoDelay(fd.get());
      return fd;
    }
    if (errno != EINTR) return Fd();
  }
}

Status SendAll(int fd, std::string_view bytes, Clock::time_point deadline) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return IoError(Reason(errno));
    if (PollOne(fd, POLLOUT, deadline) == 0) {
      return DeadlineExceeded("the peer took no more bytes (" + std::to_string(sent) + " of " +
                              std::to_string(bytes.size()) + " sent)");
    }
  }
  return Status::Ok();
}

bool WaitReadable(int fd, Clock::time_point deadline) { return PollOne(fd, POLLIN, deadline) != 0; }

int MillisUntil(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(ms);
}

std::string PeerName(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return "an unknown peer";
  }
  char text[INET6_ADDRSTRLEN] = {};
  int port = 0;
  if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    port = ntohs(v6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      ::inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], text, sizeof(text));
    } else {
      ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
      std::string name = "[";  // built by appends: GCC 12 warns wrongly on "[" + string
      name.append(text).append("]:").append(std::to_string(port));
      return name;
    }
  } else {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    port = ntohs(v4->sin_port);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
  }
  return std::string(text) + ":" + std::to_string(port);
}

}  // namespace pipecast::runtime::net
