# The GPU transports (runtime/cuda/): NCCL between processes, copies between CudaDevices of one
# process, and the host-side order check both rely on.

# The rendezvous order check and the executor's transport calls: host code, no CUDA.
add_library(pipecast_transport_order executor_calls.cc transport_order.cc)
target_link_libraries(pipecast_transport_order
  PUBLIC pipecast_runtime PRIVATE pipecast_warnings)
