# The CUDA device's host-side planning (always), and the device itself (with nvcc).
pipecast_add_test(pool_plan_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/pool_plan_test.cc
  LIBS pipecast_pool_plan)
