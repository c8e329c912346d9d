# The CUDA device's host-side planning (always), and the device itself (with nvcc).
pipecast_add_test(pool_plan_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/pool_plan_test.cc
  LIBS pipecast_pool_plan)
if(TARGET pipecast_cuda_run)
  # Green contexts' SM split and the refusals of a run without its GPUs (no GPU needed).
  pipecast_add_test(cuda_host_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_host_test.cc
    LIBS pipecast_cuda_run)
  # Every method x optimizer on both devices; flush schedules bit for bit; errors (GPU only).
  pipecast_add_gpu_test(cuda_device_test
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/cuda_device_test.cc
    LIBS pipecast_cuda_run)
endif()
