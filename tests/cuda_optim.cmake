# The CUDA optimizer and weight kernels: bit-identity with the CPU optimizer and the CPU device's
# formulas on a GPU (label gpu, skipped without one), and the host-side checks that need none.
pipecast_add_gpu_test(cuda_optimizer_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_optimizer_test.cc
  LIBS pipecast_cuda_optim)
pipecast_add_test(cuda_optimizer_host_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_optimizer_host_test.cc
  LIBS pipecast_cuda_optim)
pipecast_add_test(cuda_optimizer_ops_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_optimizer_ops_test.cc
  LIBS pipecast_cuda_optim)
