// Run under `mpirun -np 3`: rank 0's 128-byte NCCL id, with zero bytes in it, reaches every rank
// unchanged through MpiUniqueIdExchange and ShareUniqueId (runtime/cuda/nccl_bootstrap_mpi.h).
// No GPU is involved. Prints one line per rank and exits non-zero on any rank's mismatch.
#include <mpi.h>

#include <cstdio>
#include <string>

#include "runtime/cuda/nccl_bootstrap_mpi.h"
#include "runtime/mpi_transport.h"

int main(int argc, char** argv) {
  using namespace pipecast::runtime;  // NOLINT
  const auto [rank, size] = InitMpi(&argc, &argv);
  std::string id(sizeof(ncclUniqueId), '\0');
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<char>((i * 37 + 11) % 256);
  id[5] = '\0';  // binary data: an exchange over C strings would cut it here
  const pipecast::Result<std::string> got =
      cuda::ShareUniqueId(rank, size, rank == 0 ? id : std::string(), cuda::MpiUniqueIdExchange());
  int ok = got.ok() && *got == id ? 1 : 0;
  std::printf("rank %d of %d: %s\n", rank, size,
              ok ? "got rank 0's id" : (got.ok() ? "wrong id" : got.status().message().c_str()));
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  FinalizeMpi();
  return all == 1 && size == 3 ? 0 : 1;
}
