# The GPU transports (runtime/cuda/): NCCL between processes, copies between CudaDevices of one
# process, and the host-side order check both rely on.

# The rendezvous order check and the executor's transport calls: host code, no CUDA.
add_library(pipecast_transport_order executor_calls.cc transport_order.cc)
target_link_libraries(pipecast_transport_order
  PUBLIC pipecast_runtime PRIVATE pipecast_warnings)

# pipecast_runtime_nccl: NcclTransport (channels, bootstrap, watchdog) and CudaLocalTransport.
add_library(pipecast_runtime_nccl
  event_pool.cc
  local_transport.cc
  nccl_bootstrap.cc
  nccl_channels.cc
  nccl_transport.cc
)
target_link_libraries(pipecast_runtime_nccl
  PUBLIC pipecast_transport_order pipecast_flight_recorder pipecast_cuda_common NCCL::nccl
  PRIVATE pipecast_warnings)

# The NCCL id exchange over MPI, when MPI is installed.
if(MPI_C_FOUND)
  add_library(pipecast_runtime_nccl_mpi nccl_bootstrap_mpi.cc)
  target_link_libraries(pipecast_runtime_nccl_mpi
    PUBLIC pipecast_runtime_nccl pipecast_runtime_mpi MPI::MPI_C PRIVATE pipecast_warnings)
  # MPI's C API from C++ without the deprecated C++ bindings (as runtime/CMakeLists.txt does).
  target_compile_definitions(pipecast_runtime_nccl_mpi PRIVATE OMPI_SKIP_MPICXX=1
                             MPICH_SKIP_MPICXX=1)
endif()
