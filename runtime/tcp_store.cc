#include "runtime/tcp_store.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <thread>

#include "common/check.h"
#include "runtime/tcp_store_server.h"

namespace pipecast::runtime {
namespace {

using Clock = TcpStore::Clock;
using store::Frame;
using store::Op;

// Between connection attempts: 10 ms, doubling up to 100 ms.
constexpr auto kFirstRetry = std::chrono::milliseconds(10);
constexpr auto kLongestRetry = std::chrono::milliseconds(100);
// One connection attempt waits at most this long (a name whose packets are dropped).
constexpr auto kAttemptTimeout = std::chrono::seconds(2);

// `deadline` plus `extra`, saturating.
Clock::time_point Later(Clock::time_point deadline, Clock::duration extra) {
  return deadline > Clock::time_point::max() - extra ? Clock::time_point::max() : deadline + extra;
}

// The milliseconds left until `deadline`, rounded up, as a request carries them.
uint32_t WaitMs(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms >= std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                    : static_cast<uint32_t>(ms);
}

// "150 ms", rounded up.
std::string Millis(Clock::duration d) {
  return std::to_string(std::chrono::ceil<std::chrono::milliseconds>(d).count()) + " ms";
}

// A key for messages: quoted, its first 60 bytes.
std::string Quoted(std::string_view key) {
  std::string quoted = "'";  // built by appends: GCC 12 warns wrongly on "'" + string
  quoted.append(key.substr(0, 60)).append(key.size() > 60 ? "...'" : "'");
  return quoted;
}

}  // namespace

TcpStore::TcpStore(std::string host, int port, int rank, int world_size)
    : host_(std::move(host)), port_(port), rank_(rank), world_size_(world_size) {}

TcpStore::~TcpStore() {
  fd_.Reset();
  server_.reset();
}

Result<std::unique_ptr<TcpStore>> TcpStore::Connect(const std::string& host, int port, int rank,
                                                    int world_size, Clock::time_point deadline) {
  if (world_size < 1) {
    return InvalidArgument("the world size is " + std::to_string(world_size) +
                           ": it must be at least 1");
  }
  if (rank < 0 || rank >= world_size) {
    return InvalidArgument("rank " + std::to_string(rank) + " is not in the world of " +
                           std::to_string(world_size) + " ranks (0 to " +
                           std::to_string(world_size - 1) + ")");
  }
  if (port < 0 || port > 65535 || (port == 0 && rank != 0)) {
    return InvalidArgument("rank " + std::to_string(rank) + " was given port " +
                           std::to_string(port) +
                           " for the store: MASTER_PORT must be 1 to "
                           "65535 (only rank 0, serving the store, may ask for 0, any port)");
  }
  std::unique_ptr<TcpStore> store(new TcpStore(host, port, rank, world_size));
  if (rank == 0) {
    Result<std::unique_ptr<store::StoreServer>> server =
        store::StoreServer::Start(port, world_size);
    if (!server.ok()) return server.status();
    store->port_ = (*server)->port();
    store->server_ = std::move(*server);
  }
  const Clock::time_point start = Clock::now();
  Clock::duration retry = kFirstRetry;
  std::string last;
  while (true) {
    const Clock::time_point attempt = std::min(deadline, Clock::now() + kAttemptTimeout);
    Result<net::Fd> fd = net::ConnectOnce(host, store->port_, attempt);
    if (fd.ok()) {
      store->fd_ = std::move(*fd);
      PIPECAST_RETURN_IF_ERROR(store->Hello(deadline));
      return store;
    }
    last = fd.status().message();
    const Clock::time_point now = Clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<Clock::duration>(retry, deadline - now));
    retry = std::min<Clock::duration>(retry * 2, kLongestRetry);
  }
  const std::string hint =
      rank == 0 ? "rank 0 serves the store on port " + std::to_string(store->port_) +
                      " of its own machine: MASTER_ADDR must name this machine"
                : "rank 0 serves the store there: check that it is running and that MASTER_ADDR "
                  "and MASTER_PORT are the same on every rank";
  return DeadlineExceeded("rank " + std::to_string(rank) + " could not connect to the store at " +
                          host + ":" + std::to_string(store->port_) + " within " +
                          Millis(Clock::now() - start) + ": " + last + " (" + hint + ")");
}

Status TcpStore::Hello(Clock::time_point deadline) {
  const Frame hello{Op::kHello, "",
                    store::EncodeU32(static_cast<uint32_t>(rank_)) +
                        store::EncodeU32(static_cast<uint32_t>(world_size_))};
  Result<Frame> reply = Call(hello, deadline, "the hello");
  if (!reply.ok()) return reply.status();
  return Expect(*reply, Op::kOk, "the hello");
}

std::string TcpStore::Where() const {
  return "rank " + std::to_string(rank_) + ", store " + host_ + ":" + std::to_string(port_);
}

Status TcpStore::CheckKey(std::string_view key, const char* kind) const {
  if (key.empty()) return InvalidArgument(Where() + ": an empty " + kind);
  if (key.size() > store::kMaxKeyBytes) {
    return InvalidArgument(Where() + ": the " + kind + " " + Quoted(key) + " is " +
                           std::to_string(key.size()) + " bytes; the store takes at most " +
                           std::to_string(store::kMaxKeyBytes));
  }
  return Status::Ok();
}

Status TcpStore::Expect(const Frame& reply, Op expected, const std::string& what) {
  if (reply.op == expected) return Status::Ok();
  broken_ = true;
  return IoError(Where() + ": the store answered " + what + " with operation " +
                 std::to_string(static_cast<int>(reply.op)) + ", not " +
                 std::to_string(static_cast<int>(expected)));
}

Result<Frame> TcpStore::Call(const Frame& request, Clock::time_point deadline,
                             const std::string& what) {
  if (broken_) {
    return IoError(Where() + ": an earlier error broke the connection to the store (" + what +
                   " not sent)");
  }
  const Clock::time_point hard = Later(deadline, kStoreAnswerGrace);
  if (Status sent = net::SendAll(fd_.get(), store::EncodeFrame(request), hard); !sent.ok()) {
    broken_ = true;
    return IoError(Where() + ": sending " + what + " failed: " + sent.message());
  }
  while (true) {
    store::ParsedFrame parsed = store::ParseFrame(buffer_);
    if (parsed.kind == store::ParsedFrame::Kind::kFrame) {
      buffer_.erase(0, parsed.used);
      if (parsed.frame.op == Op::kError)
        return InvalidArgument(Where() + ": " + parsed.frame.value);
      if (!store::IsRequest(parsed.frame.op)) return std::move(parsed.frame);
      parsed.kind = store::ParsedFrame::Kind::kMalformed;
      parsed.error = "a request where a reply was due";
    }
    if (parsed.kind == store::ParsedFrame::Kind::kMalformed) {
      broken_ = true;
      return IoError(Where() + ": the store sent a malformed frame in answer to " + what + ": " +
                     parsed.error + " (is MASTER_PORT the port of another program?)");
    }
    if (!net::WaitReadable(fd_.get(), hard)) {
      broken_ = true;
      return DeadlineExceeded(Where() + ": the store did not answer " + what + " within " +
                              Millis(kStoreAnswerGrace) + " after its deadline (is rank 0 alive?)");
    }
    char chunk[65536];
    const ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
      broken_ = true;
      return IoError(Where() + ": the store closed the connection during " + what +
                     (n == 0 ? std::string() : std::string(" (") + std::strerror(errno) + ")") +
                     ": rank 0 ended or failed");
    }
  }
}

Status TcpStore::Set(std::string_view key, std::string_view value) {
  PIPECAST_RETURN_IF_ERROR(CheckKey(key, "key"));
  if (value.size() > store::kMaxValueBytes) {
    return InvalidArgument(Where() + ": the value of key " + Quoted(key) + " is " +
                           std::to_string(value.size()) + " bytes; the store takes at most " +
                           std::to_string(store::kMaxValueBytes) + " (1 MiB)");
  }
  const std::string what = "Set(" + Quoted(key) + ")";
  Result<Frame> reply =
      Call({Op::kSet, std::string(key), std::string(value)}, Clock::now() + kStoreSetTimeout, what);
  if (!reply.ok()) return reply.status();
  return Expect(*reply, Op::kOk, what);
}

Status TcpStore::Delete(std::string_view key) {
  PIPECAST_RETURN_IF_ERROR(CheckKey(key, "key"));
  const std::string what = "Delete(" + Quoted(key) + ")";
  Result<Frame> reply =
      Call({Op::kDelete, std::string(key), ""}, Clock::now() + kStoreSetTimeout, what);
  if (!reply.ok()) return reply.status();
  return Expect(*reply, Op::kOk, what);
}

Result<std::string> TcpStore::Get(std::string_view key, Clock::time_point deadline) {
  PIPECAST_RETURN_IF_ERROR(CheckKey(key, "key"));
  const Clock::time_point start = Clock::now();
  const std::string what = "Get(" + Quoted(key) + ")";
  Result<Frame> reply =
      Call({Op::kGet, std::string(key), store::EncodeU32(WaitMs(deadline))}, deadline, what);
  if (!reply.ok()) return reply.status();
  if (reply->op == Op::kTimeout) {
    return DeadlineExceeded(Where() + ": key " + Quoted(key) + " was not set within " +
                            Millis(deadline - start) +
                            " (does the rank that sets it run, and has it reached that point?)");
  }
  PIPECAST_RETURN_IF_ERROR(Expect(*reply, Op::kValue, what));
  if (reply->key != key) {
    broken_ = true;
    return IoError(Where() + ": the store answered " + what + " with the value of key " +
                   Quoted(reply->key));
  }
  return std::move(reply->value);
}

Status TcpStore::Barrier(std::string_view name, Clock::time_point deadline) {
  PIPECAST_RETURN_IF_ERROR(CheckKey(name, "barrier name"));
  const Clock::time_point start = Clock::now();
  const std::string what = "Barrier(" + Quoted(name) + ")";
  Result<Frame> reply =
      Call({Op::kBarrier, std::string(name), store::EncodeU32(WaitMs(deadline))}, deadline, what);
  if (!reply.ok()) return reply.status();
  if (reply->op == Op::kTimeout) {
    return DeadlineExceeded(Where() + ": barrier " + Quoted(name) + " timed out after " +
                            Millis(deadline - start) + ": " + reply->value);
  }
  return Expect(*reply, Op::kOk, what);
}

Result<std::unique_ptr<TcpStore>> ConnectStore(const LaunchEnv& env,
                                               TcpStore::Clock::time_point deadline) {
  if (!env.has_store_address()) {
    return InvalidArgument("rank " + std::to_string(env.rank) +
                           " has no store address: export MASTER_ADDR (rank 0's host name or "
                           "address) and MASTER_PORT (a free port there, e.g. 29500)");
  }
  return TcpStore::Connect(env.master_addr, env.master_port, env.rank, env.world_size, deadline);
}

Result<std::string> ExchangeFromRank0(TcpStore& store, int rank,
                                      const std::string& value_from_rank0,
                                      TcpStore::Clock::time_point deadline) {
  PIPECAST_CHECK(rank == store.rank()) << "rank " << rank << ", store of rank " << store.rank();
  const std::string key = "nccl-id/" + std::to_string(++store.exchanges_);
  std::string value = value_from_rank0;
  if (rank == 0) {
    PIPECAST_RETURN_IF_ERROR(store.Set(key, value));
  } else {
    Result<std::string> got = store.Get(key, deadline);
    if (!got.ok()) return got.status();
    value = std::move(*got);
  }
  PIPECAST_RETURN_IF_ERROR(store.Barrier(key, deadline));
  return value;
}

}  // namespace pipecast::runtime
