# The CUDA layers (runtime/cuda/gpu_stage.h, gemm.h): host-side shape and memory logic without a
# device, and the device passes against the CPU layers (label gpu: skipped without a device).
pipecast_add_test(gpu_layers_host_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/gpu_layers_host_test.cc
  LIBS pipecast_cuda_layers)
pipecast_add_gpu_test(gpu_layers_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/gpu_layers_test.cc
  LIBS pipecast_cuda_layers)
