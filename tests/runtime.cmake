# The executor (runtime/).
pipecast_add_test(executor_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/executor_test.cc
  LIBS pipecast_runtime)
