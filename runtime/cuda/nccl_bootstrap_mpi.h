// The NCCL id exchange over MPI (nccl_bootstrap.h): MPI_Bcast of rank 0's id on
// MPI_COMM_WORLD. REQUIRES: MPI initialised (runtime/mpi_transport.h's InitMpi). Built only when
// MPI is installed (library pipecast_runtime_nccl_mpi).
#pragma once

#include "runtime/cuda/nccl_bootstrap.h"

namespace pipecast::runtime::cuda {

UniqueIdExchange MpiUniqueIdExchange();

}  // namespace pipecast::runtime::cuda
