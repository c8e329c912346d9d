#include "runtime/tcp_store_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/check.h"
#include "runtime/tcp_store_frame.h"

namespace pipecast::runtime::store {
namespace {

using net::Clock;

struct Connection {
  net::Fd fd;
  std::string peer;  // "127.0.0.1:54321"
  int rank = -1;     // set by its hello
  std::string in;
  std::string out;
  // After a refusal: `out` holds the error; once it is sent the write side is shut and what
  // the peer still sends is read and dropped until it closes or `drain_until`, so that closing
  // the socket does not reset it before the peer has read the error.
  bool closing = false;
  bool shut = false;
  Clock::time_point drain_until;
  bool dead = false;
};

// How long a refused connection is drained before it is closed anyway.
constexpr auto kDrainTime = std::chrono::seconds(1);

struct Waiter {
  uint64_t connection = 0;
  Clock::time_point deadline;
};

// A barrier not yet passed: the ranks waiting at it, and those that arrived and gave up (their
// wait ran out), who count as arrived in messages until they come again.
struct BarrierState {
  std::map<int, Waiter> waiting;
  std::set<int> gave_up;
};

// "1, 3" (at most 16 ranks, then "and N more").
std::string RankList(const std::vector<int>& ranks) {
  std::string text;
  const size_t shown = ranks.size() < 16 ? ranks.size() : 16;
  for (size_t i = 0; i < shown; ++i) text += (i == 0 ? "" : ", ") + std::to_string(ranks[i]);
  if (ranks.size() > shown) text += " and " + std::to_string(ranks.size() - shown) + " more";
  return text.empty() ? "none" : text;
}

// The state of the serving thread; everything here runs on it.
class ServerLoop {
 public:
  ServerLoop(int listen_fd, int wake_fd, int port, int world_size)
      : listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port), world_size_(world_size) {}

  void Run() {
    while (true) {
      std::vector<pollfd> fds = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
      std::vector<uint64_t> ids;
      for (auto& [id, c] : connections_) {
        const short events = static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT));
        fds.push_back({c.fd.get(), events, 0});
        ids.push_back(id);
      }
      const int ready = ::poll(fds.data(), fds.size(), PollTimeout());
      if (ready < 0 && errno != EINTR) break;
      if (fds[0].revents != 0) break;  // asked to stop
      if (fds[1].revents & POLLIN) AcceptAll();
      for (size_t i = 0; i < ids.size(); ++i) {
        const short revents = fds[i + 2].revents;
        auto it = connections_.find(ids[i]);
        if (it == connections_.end() || revents == 0) continue;
        if (revents & (POLLIN | POLLHUP | POLLERR)) ReadFrom(ids[i], it->second);
      }
      ExpireWaits(Clock::now());
      FlushAndDrop();
    }
  }

 private:
  int PollTimeout() const {
    bool any = false;
    Clock::time_point first = Clock::time_point::max();
    for (const auto& [key, waiters] : gets_) {
      for (const Waiter& w : waiters) first = std::min(first, w.deadline), any = true;
    }
    for (const auto& [name, barrier] : barriers_) {
      for (const auto& [rank, w] : barrier.waiting) first = std::min(first, w.deadline), any = true;
    }
    for (const auto& [id, c] : connections_) {
      if (c.closing) first = std::min(first, c.drain_until), any = true;
    }
    return any ? net::MillisUntil(first) : -1;
  }

  void AcceptAll() {
    while (true) {
      net::Fd fd = net::AcceptOne(listen_fd_);
      if (!fd.valid()) return;
      Connection c;
      c.peer = net::PeerName(fd.get());
      c.fd = std::move(fd);
      connections_.emplace(next_id_++, std::move(c));
    }
  }

  void ReadFrom(uint64_t id, Connection& c) {
    char chunk[65536];
    while (true) {
      const ssize_t n = ::recv(c.fd.get(), chunk, sizeof(chunk), 0);
      if (n > 0 && c.closing) continue;  // draining a refused connection
      if (n > 0) {
        c.in.append(chunk, static_cast<size_t>(n));
        ParseAll(id, c);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      c.dead = true;  // closed by the peer, or broken
      return;
    }
  }

  // Handles every complete frame of c.in, until the connection is refused.
  void ParseAll(uint64_t id, Connection& c) {
    while (!c.closing) {
      ParsedFrame parsed = ParseFrame(c.in);
      if (parsed.kind == ParsedFrame::Kind::kIncomplete) return;
      if (parsed.kind == ParsedFrame::Kind::kMalformed) {
        return Refuse(c, "a malformed frame: " + parsed.error);
      }
      c.in.erase(0, parsed.used);
      Handle(id, c, parsed.frame);
    }
  }

  // Replies kError with `why` naming the peer, prints it, and closes the connection after.
  void Refuse(Connection& c, const std::string& why) {
    const std::string who = c.rank >= 0 ? "rank " + std::to_string(c.rank) : "before its hello";
    const std::string message = "the store on port " + std::to_string(port_) + " refused " +
                                c.peer + " (" + who + ") and closed that connection: " + why;
    std::fprintf(stderr, "pipecast: %s\n", message.c_str());
    Reply(c, Op::kError, "", message);
    c.closing = true;
    c.drain_until = Clock::now() + kDrainTime;
    c.in.clear();
  }

  // Queues a reply (none to a refused connection: its error is its last frame).
  void Reply(Connection& c, Op op, const std::string& key, const std::string& value) {
    if (c.closing) return;
    c.out += EncodeFrame({op, key, value.substr(0, kMaxValueBytes)});
  }

  // The wait in ms a Get or Barrier carries, or false after refusing a malformed one.
  bool TimeoutOf(Connection& c, const Frame& frame, uint32_t* ms) {
    if (frame.value.size() != 4) {
      Refuse(c, "a request whose wait is " + std::to_string(frame.value.size()) + " bytes, not 4");
      return false;
    }
    *ms = DecodeU32(frame.value);
    return true;
  }

  void Handle(uint64_t id, Connection& c, const Frame& frame) {
    if (!IsRequest(frame.op)) return Refuse(c, "a reply sent as a request");
    if (c.rank < 0 && frame.op != Op::kHello) return Refuse(c, "a request before the hello");
    uint32_t ms = 0;
    switch (frame.op) {
      case Op::kHello:
        return Hello(id, c, frame);
      case Op::kSet:
        return Set(c, frame);
      case Op::kGet:
        if (!TimeoutOf(c, frame, &ms)) return;
        if (auto it = values_.find(frame.key); it != values_.end()) {
          return Reply(c, Op::kValue, frame.key, it->second);
        }
        gets_[frame.key].push_back({id, Clock::now() + std::chrono::milliseconds(ms)});
        return;
      case Op::kBarrier:
        if (!TimeoutOf(c, frame, &ms)) return;
        return Arrive(id, c, frame.key, ms);
      case Op::kDelete:
        values_.erase(frame.key);
        return Reply(c, Op::kOk, "", "");
      default:
        return;
    }
  }

  void Hello(uint64_t id, Connection& c, const Frame& frame) {
    if (c.rank >= 0) return Refuse(c, "a second hello");
    if (frame.value.size() != 8) return Refuse(c, "a hello that is not 8 bytes");
    const int rank = static_cast<int32_t>(DecodeU32(frame.value, 0));
    const int world = static_cast<int32_t>(DecodeU32(frame.value, 4));
    std::string why;
    if (world != world_size_) {
      why = "rank " + std::to_string(rank) + " whose world has " + std::to_string(world) +
            " ranks, where rank 0's has " + std::to_string(world_size_) +
            " (is the world size the same on every rank?)";
    } else if (rank < 0 || rank >= world_size_) {
      why = "rank " + std::to_string(rank) + ", not below the world size " +
            std::to_string(world_size_);
    }
    for (const auto& [other_id, other] : connections_) {
      if (why.empty() && other_id != id && other.rank == rank && !other.dead && !other.closing) {
        why = "a second rank " + std::to_string(rank) + " (the first is " + other.peer +
              "): two processes have the same rank";
      }
    }
    if (!why.empty()) return Refuse(c, why);
    c.rank = rank;
    gone_.erase(rank);
    Reply(c, Op::kOk, "", "");
  }

  void Set(Connection& c, const Frame& frame) {
    values_[frame.key] = frame.value;
    Reply(c, Op::kOk, "", "");
    auto it = gets_.find(frame.key);
    if (it == gets_.end()) return;
    for (const Waiter& w : it->second) {
      if (auto found = connections_.find(w.connection); found != connections_.end()) {
        Reply(found->second, Op::kValue, frame.key, frame.value);
      }
    }
    gets_.erase(it);
  }

  void Arrive(uint64_t id, Connection& c, const std::string& name, uint32_t ms) {
    BarrierState& barrier = barriers_[name];
    if (barrier.waiting.count(c.rank) != 0) {
      return Reply(c, Op::kError, "",
                   "rank " + std::to_string(c.rank) + " arrived twice at barrier '" + name +
                       "' before every rank had arrived once");
    }
    barrier.waiting[c.rank] = {id, Clock::now() + std::chrono::milliseconds(ms)};
    barrier.gave_up.erase(c.rank);
    if (static_cast<int>(barrier.waiting.size()) < world_size_) return;
    for (const auto& [rank, w] : barrier.waiting) {
      if (auto found = connections_.find(w.connection); found != connections_.end()) {
        Reply(found->second, Op::kOk, name, "");
      }
    }
    barriers_.erase(name);
  }

  // Answers kTimeout to every wait whose deadline has passed.
  void ExpireWaits(Clock::time_point now) {
    for (auto it = gets_.begin(); it != gets_.end();) {
      std::erase_if(it->second, [&](const Waiter& w) {
        if (w.deadline > now) return false;
        if (auto found = connections_.find(w.connection); found != connections_.end()) {
          Reply(found->second, Op::kTimeout, it->first, "not set");
        }
        return true;
      });
      it = it->second.empty() ? gets_.erase(it) : std::next(it);
    }
    for (auto it = barriers_.begin(); it != barriers_.end();) {
      BarrierState& barrier = it->second;
      const std::string missing = Missing(barrier);
      std::erase_if(barrier.waiting, [&](const auto& entry) {
        if (entry.second.deadline > now) return false;
        if (auto found = connections_.find(entry.second.connection); found != connections_.end()) {
          Reply(found->second, Op::kTimeout, it->first, missing);
        }
        barrier.gave_up.insert(entry.first);
        return true;
      });
      it = barrier.waiting.empty() ? barriers_.erase(it) : std::next(it);
    }
  }

  // "ranks 1, 3 of 4 had not arrived (arrived: 0, 2; rank 3 had closed its connection)".
  std::string Missing(const BarrierState& barrier) const {
    std::vector<int> here;
    std::vector<int> absent;
    std::vector<int> left;
    for (int rank = 0; rank < world_size_; ++rank) {
      const bool arrived = barrier.waiting.count(rank) != 0 || barrier.gave_up.count(rank) != 0;
      (arrived ? here : absent).push_back(rank);
      if (!arrived && gone_.count(rank) != 0) left.push_back(rank);
    }
    std::string text = std::string(absent.size() == 1 ? "rank " : "ranks ") + RankList(absent) +
                       " of " + std::to_string(world_size_) +
                       " had not arrived (arrived: " + RankList(here);
    if (left.size() == 1) text += "; rank " + RankList(left) + " had closed its connection";
    if (left.size() > 1) text += "; ranks " + RankList(left) + " had closed their connections";
    return text + ")";
  }

  // Sends what each connection has pending, then drops the dead and the refused ones.
  void FlushAndDrop() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      Connection& c = it->second;
      while (!c.out.empty() && !c.dead) {
        const ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) {
          c.out.erase(0, static_cast<size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else {
          c.dead = n < 0 && errno != EAGAIN && errno != EWOULDBLOCK;
          break;
        }
      }
      if (c.closing && c.out.empty() && !c.shut) {
        ::shutdown(c.fd.get(), SHUT_WR);
        c.shut = true;
      }
      if (c.dead || (c.closing && Clock::now() >= c.drain_until)) {
        if (c.rank >= 0 && !HeldByAnother(c.rank, it->first)) gone_.insert(c.rank);
        Forget(it->first);
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Whether a live connection other than `id` holds `rank`.
  bool HeldByAnother(int rank, uint64_t id) const {
    for (const auto& [other_id, other] : connections_) {
      if (other_id != id && other.rank == rank && !other.dead && !other.closing) return true;
    }
    return false;
  }

  // Removes the waits of a connection that is going away.
  void Forget(uint64_t id) {
    for (auto& [key, waiters] : gets_) {
      std::erase_if(waiters, [id](const Waiter& w) { return w.connection == id; });
    }
    for (auto& [name, barrier] : barriers_) {
      std::erase_if(barrier.waiting,
                    [id](const auto& entry) { return entry.second.connection == id; });
    }
    std::erase_if(gets_, [](const auto& entry) { return entry.second.empty(); });
    std::erase_if(barriers_, [](const auto& entry) { return entry.second.waiting.empty(); });
  }

  int listen_fd_;
  int wake_fd_;
  int port_;
  int world_size_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Connection> connections_;
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<Waiter>> gets_;
  std::map<std::string, BarrierState> barriers_;
  std::set<int> gone_;  // ranks whose connection closed (until they say hello again)
};

}  // namespace

Result<std::unique_ptr<StoreServer>> StoreServer::Start(int port, int world_size) {
  PIPECAST_CHECK(world_size >= 1) << world_size;
  int bound = 0;
  Result<net::Fd> listen_fd = net::Listen(port, &bound);
  if (!listen_fd.ok()) return listen_fd.status();
  int pipe_fds[2];
  PIPECAST_CHECK(::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) == 0) << "pipe2 failed";
  return std::unique_ptr<StoreServer>(new StoreServer(std::move(*listen_fd), bound, world_size,
                                                      net::Fd(pipe_fds[0]), net::Fd(pipe_fds[1])));
}

StoreServer::StoreServer(net::Fd listen_fd, int port, int world_size, net::Fd wake_read,
                         net::Fd wake_write)
    : listen_fd_(std::move(listen_fd)),
      port_(port),
      world_size_(world_size),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)) {
  thread_ = std::thread(
      [this] { ServerLoop(listen_fd_.get(), wake_read_.get(), port_, world_size_).Run(); });
}

StoreServer::~StoreServer() {
  const char byte = 1;
  while (::write(wake_write_.get(), &byte, 1) < 0 && errno == EINTR) {
  }
  thread_.join();
}

}  // namespace pipecast::runtime::store
