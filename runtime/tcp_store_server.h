// The server side of the TCP store (runtime/tcp_store.h), run by rank 0: one thread polling
// the listening socket and every connection, non-blocking throughout, so a slow or broken peer
// never holds up the others. It answers each request with one reply (tcp_store_frame.h): a Get
// waits until its key is set, a Barrier until every rank of the world has arrived, each until
// the time its request carries, then it gets kTimeout saying what was missing (the ranks not
// arrived, counting those that arrived and gave up as arrived, and naming those whose
// connection has closed). A malformed frame, or a hello that does not fit the world (another world
// size, a rank out of range or taken), gets one kError reply naming the peer and why, printed once
// to stderr too, and that connection is closed; the others are served on.
#pragma once

#include <memory>
#include <thread>

#include "common/status.h"
#include "runtime/tcp_socket.h"

namespace pipecast::runtime::store {

class StoreServer {
 public:
  // Listens at `port` on every interface (0: a free port) for a world of `world_size` ranks
  // and starts serving. kIoError naming the port when it cannot listen.
  static Result<std::unique_ptr<StoreServer>> Start(int port, int world_size);
  // Stops the thread (which closes every connection) and joins it.
  ~StoreServer();
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  int port() const { return port_; }

 private:
  StoreServer(net::Fd listen_fd, int port, int world_size, net::Fd wake_read, net::Fd wake_write);

  net::Fd listen_fd_;
  int port_ = 0;
  int world_size_ = 0;
  net::Fd wake_read_;  // the thread stops when this becomes readable
  net::Fd wake_write_;
  std::thread thread_;
};

}  // namespace pipecast::runtime::store
