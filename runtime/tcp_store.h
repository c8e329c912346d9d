// A small TCP key-value store through which the ranks of a run find each other (the NCCL
// bootstrap under torchrun and Slurm): rank 0 serves it at MASTER_PORT on every interface of
// its machine and every rank, rank 0 too, connects to MASTER_ADDR:MASTER_PORT, retrying until
// its deadline. Set a key, Get one (waiting until some rank sets it) and meet at a Barrier;
// every wait has a deadline and ends in kDeadlineExceeded naming the key, or the ranks that
// had not arrived, never in a silent hang. Values are bytes, at most 1 MiB, keys at most 256
// bytes (the frames are in tcp_store_frame.h; the protocol is in docs/executor.md). A set key
// keeps its value until it is set again. A TcpStore is used by one thread at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "runtime/launch_env.h"
#include "runtime/tcp_socket.h"
#include "runtime/tcp_store_frame.h"

namespace pipecast::runtime {

namespace store {
class StoreServer;
}

// How long a rank waits for the store's answer past the deadline of its request (the store
// answers a wait that ran out itself, saying what was missing) before it gives up on the store.
inline constexpr std::chrono::milliseconds kStoreAnswerGrace{2000};
// How long Set waits for the store to acknowledge the value.
inline constexpr std::chrono::milliseconds kStoreSetTimeout{30000};

class TcpStore {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects rank `rank` of `world_size` to the store at host:port; rank 0 first starts the
  // store there (port 0: a free port, see port()). Connection attempts are retried until
  // `deadline` (rank 0 may start after the others), then kDeadlineExceeded naming host:port and
  // the last reason ("Connection refused"). Other errors: kInvalidArgument for a rank outside
  // the world, port 0 on a rank other than 0, or a world size or rank the store refuses (it
  // differs from rank 0's, or another process has this rank); kIoError when rank 0 cannot
  // listen at the port (in use: names MASTER_PORT).
  static Result<std::unique_ptr<TcpStore>> Connect(const std::string& host, int port, int rank,
                                                   int world_size, Clock::time_point deadline);
  // Closes the connection; on rank 0 also stops the store (its thread is joined), after which
  // the other ranks' waits fail with kIoError ("closed the connection").
  ~TcpStore();
  TcpStore(const TcpStore&) = delete;
  TcpStore& operator=(const TcpStore&) = delete;

  // Sets `key` to `value` and waits for the store to take it. kInvalidArgument (nothing sent)
  // for an empty key, a key over 256 bytes or a value over 1 MiB, naming the key and the sizes.
  Status Set(std::string_view key, std::string_view value);
  // Makes the store forget `key`'s value (a later Get waits for a new Set), so that values a
  // run no longer needs do not pile up in rank 0's memory. Deleting an unset key is no error.
  Status Delete(std::string_view key);
  // The value of `key`, waiting until some rank sets it; kDeadlineExceeded naming the key when
  // none has by `deadline`.
  Result<std::string> Get(std::string_view key, Clock::time_point deadline);
  // Returns once every rank of the world has called Barrier(name); kDeadlineExceeded at
  // `deadline` naming the barrier and the ranks that had not arrived. A name can be used again
  // once a barrier of that name has passed.
  Status Barrier(std::string_view name, Clock::time_point deadline);

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }  // the store's port (the one chosen when 0 was asked)

 private:
  TcpStore(std::string host, int port, int rank, int world_size);
  Status Hello(Clock::time_point deadline);
  // Sends `request` and reads its reply, waiting until `deadline` plus kStoreAnswerGrace. A
  // kError reply becomes kInvalidArgument; other replies are returned, kTimeout included.
  Result<store::Frame> Call(const store::Frame& request, Clock::time_point deadline,
                            const std::string& what);
  // The reply `reply` to `what`, which should have been `expected`: kIoError otherwise.
  Status Expect(const store::Frame& reply, store::Op expected, const std::string& what);
  Status CheckKey(std::string_view key, const char* kind) const;
  std::string Where() const;  // "rank 2, store 127.0.0.1:29500"

  std::string host_;
  int port_ = 0;
  int rank_ = 0;
  int world_size_ = 1;
  std::unique_ptr<store::StoreServer> server_;  // rank 0; destroyed after the connection
  net::Fd fd_;
  std::string buffer_;   // bytes read past the last reply
  bool broken_ = false;  // an earlier error left the connection in an unknown state
  int exchanges_ = 0;    // ExchangeFromRank0 calls made through this store

  friend Result<std::string> ExchangeFromRank0(TcpStore& store, int rank,
                                               const std::string& value_from_rank0,
                                               Clock::time_point deadline);
};

// Connects this rank to the store at env.master_addr:master_port. kInvalidArgument when `env`
// has no store address (names MASTER_ADDR and MASTER_PORT); otherwise as TcpStore::Connect.
Result<std::unique_ptr<TcpStore>> ConnectStore(const LaunchEnv& env,
                                               TcpStore::Clock::time_point deadline);

// The bootstrap of the NCCL transport: rank 0 sets the key "nccl-id/<n>" (n counts this store's
// exchanges, 1 for the first; every rank makes the same calls in the same order) to
// `value_from_rank0` and every other rank gets it; then all meet at a barrier of that name, so
// the call returns on each rank only once every rank has the value (rank 0 may then destroy
// the store). Returns the value on every rank (the argument is ignored on ranks other than 0).
// Errors as Set, Get and Barrier, by `deadline`. REQUIRES: rank == store.rank().
Result<std::string> ExchangeFromRank0(TcpStore& store, int rank,
                                      const std::string& value_from_rank0,
                                      TcpStore::Clock::time_point deadline);

}  // namespace pipecast::runtime
