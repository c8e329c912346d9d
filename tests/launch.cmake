# The launchers' environments and the TCP store of the bootstrap (runtime/launch.cmake): host
# code, always built.
pipecast_add_test(launch_env_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/launch_env_test.cc
  LIBS pipecast_runtime_launch)
pipecast_add_test(tcp_store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/tcp_store_test.cc
  LIBS pipecast_runtime_launch)
