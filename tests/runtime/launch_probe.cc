// One rank of the multi-process launch test (tests/runtime/launch_probe_test.sh): reads its
// launcher's variables from the real environment, connects to the TCP store, exchanges rank
// 0's value as the NCCL bootstrap would, and prints what it saw. `--free-port` prints a port
// nobody listens on, for the script. Exit codes: 0 done, 2 a bad environment, 3 a store error.
#include <chrono>
#include <cstdio>
#include <string>

#include "runtime/launch_env.h"
#include "runtime/tcp_socket.h"
#include "runtime/tcp_store.h"

namespace pipecast::runtime {
namespace {

int Fail(int code, const Status& status) {
  std::fprintf(stderr, "launch_probe: %s\n", status.message().c_str());
  return code;
}

int Run() {
  Result<LaunchEnv> env = ReadProcessLaunchEnv();
  if (!env.ok()) return Fail(2, env.status());
  const auto deadline = TcpStore::Clock::now() + std::chrono::seconds(20);
  Result<std::unique_ptr<TcpStore>> connected = ConnectStore(*env, deadline);
  if (!connected.ok()) return Fail(3, connected.status());
  TcpStore& store = **connected;
  const std::string mine = "id of a world of " + std::to_string(env->world_size);
  Result<std::string> id =
      ExchangeFromRank0(store, env->rank, env->rank == 0 ? mine : "not rank 0's", deadline);
  if (!id.ok()) return Fail(3, id.status());
  // Rank 0 prints every rank's own description, read back through the store.
  const std::string key = "probe/" + std::to_string(env->rank);
  if (Status set = store.Set(key, DescribeLaunchEnv(*env)); !set.ok()) return Fail(3, set);
  if (Status met = store.Barrier("published", deadline); !met.ok()) return Fail(3, met);
  for (int rank = 0; env->rank == 0 && rank < env->world_size; ++rank) {
    Result<std::string> seen = store.Get("probe/" + std::to_string(rank), deadline);
    if (!seen.ok()) return Fail(3, seen.status());
    std::printf("seen by rank 0: %s\n", seen->c_str());
  }
  std::printf("rank %d exchanged '%s'\n", env->rank, id->c_str());
  std::fflush(stdout);
  // Rank 0 serves the store: it leaves last.
  if (Status met = store.Barrier("end", deadline); !met.ok()) return Fail(3, met);
  return 0;
}

}  // namespace
}  // namespace pipecast::runtime

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--free-port") {
    int port = 0;
    if (!pipecast::runtime::net::Listen(0, &port).ok()) return 1;
    std::printf("%d\n", port);
    return 0;
  }
  return pipecast::runtime::Run();
}
