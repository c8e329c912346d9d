# The GPU transports (runtime/cuda/): host tests of their order check and tables, and tests
# labelled `gpu` that skip without a CUDA device.
pipecast_add_test(transport_order_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/transport_order_test.cc
  LIBS pipecast_transport_order)
pipecast_add_test(nccl_bootstrap_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/nccl_bootstrap_test.cc
  LIBS pipecast_runtime_nccl)
pipecast_add_gpu_test(nccl_transport_gpu_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/nccl_transport_gpu_test.cc
  LIBS pipecast_runtime_nccl Threads::Threads)
pipecast_add_gpu_test(local_transport_gpu_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/local_transport_gpu_test.cc
  LIBS pipecast_runtime_nccl Threads::Threads)
