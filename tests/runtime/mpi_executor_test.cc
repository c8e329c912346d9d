// Run under `mpirun -np 4`: every rank runs one device of each program with the MPI transport;
// rank 0 gathers the final weights and losses and compares them, bit for bit, with the same
// program run on threads in one process. Prints "N passed, N failed" and exits non-zero on any
// mismatch.
#include <mpi.h>

#include <cstdio>
#include <string>

#include "common/generators.h"
#include "common/lower.h"
#include "runtime/inproc_transport.h"
#include "runtime/mpi_transport.h"
#include "runtime/toy_model.h"

using namespace pipecast;            // NOLINT
using namespace pipecast::runtime;   // NOLINT
using namespace pipecast::runtime::testing_toy;  // NOLINT

int main(int argc, char** argv) {
  const auto [rank, size] = InitMpi(&argc, &argv);
  int passed = 0, failed = 0;
  for (const char* method : {"1f1b", "zb-h2", "pipedream", "pipedream-2bw", "pipeoptim",
                             "spectrain", "pipemare", "paci", "xpipe", "gpipe"}) {
    auto generated = ir::Generate({method, size, 4, 3, 1, {}});
    if (!generated.ok()) {
      std::fprintf(stderr, "%s\n", generated.status().message().c_str());
      return 2;
    }
    const ir::Program p = ir::InsertCommunication(*generated);
    Feed feed;
    Setup setup(p.num_stages);
    MpiTransport mpi(p.placement);
    ExecutorConfig config;
    config.local_devices = {rank};
    config.deadline = std::chrono::milliseconds(30000);
    auto r = Execute(p, setup.stages, setup.optimizers, InitialWeights(p.num_stages), feed, mpi,
                     config);
    if (!r.ok()) {
      std::fprintf(stderr, "rank %d: %s\n", rank, r.status().message().c_str());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    mpi.Flush();
    const auto weights = GatherStages(p.placement, r->weights);
    // The losses are computed on the last rank.
    std::vector<double> losses = r->losses;
    if (size > 1) {
      if (rank == size - 1) {
        MPI_Send(losses.data(), static_cast<int>(losses.size()), MPI_DOUBLE, 0, 3, MPI_COMM_WORLD);
      } else if (rank == 0) {
        MPI_Recv(losses.data(), static_cast<int>(losses.size()), MPI_DOUBLE, size - 1, 3,
                 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      }
    }
    if (rank == 0) {
      Setup local(p.num_stages);
      InProcessTransport threads(p.num_devices);
      auto ref = Execute(p, local.stages, local.optimizers, InitialWeights(p.num_stages), feed,
                         threads, {});
      const bool same = ref.ok() && ref->weights == weights && ref->losses == losses;
      std::printf("%s %s: MPI (%d ranks) and threads %s\n", same ? "[ OK ]" : "[FAIL]", method,
                  size, same ? "give identical weights and losses" : "DIFFER");
      (same ? passed : failed)++;
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  if (rank == 0) std::printf("%d passed, %d failed\n", passed, failed);
  FinalizeMpi();
  return failed == 0 ? 0 : 1;
}
