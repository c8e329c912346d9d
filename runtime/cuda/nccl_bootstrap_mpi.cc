#include "runtime/cuda/nccl_bootstrap_mpi.h"

#include <mpi.h>

#include "runtime/mpi_transport.h"

namespace pipecast::runtime::cuda {

UniqueIdExchange MpiUniqueIdExchange() {
  return [](const std::string& id_from_rank0) -> Result<std::string> {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::string id(sizeof(ncclUniqueId), '\0');
    if (rank == 0) {
      if (id_from_rank0.size() != id.size())
        return InvalidArgument("rank 0 has no NCCL id of " + std::to_string(id.size()) + " bytes");
      id = id_from_rank0;
    }
    const int rc = MPI_Bcast(id.data(), static_cast<int>(id.size()), MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return MpiError(rc, "broadcasting rank 0's NCCL id");
    return id;
  };
}

}  // namespace pipecast::runtime::cuda
