# The executor (runtime/).
pipecast_add_test(executor_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/executor_test.cc
  LIBS pipecast_runtime)
pipecast_add_test(safetensors_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/safetensors_test.cc
  LIBS pipecast_runtime)
