# The launchers' environments and the TCP store of the bootstrap (runtime/launch.cmake): host
# code, always built.
pipecast_add_test(launch_env_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/launch_env_test.cc
  LIBS pipecast_runtime_launch)
pipecast_add_test(tcp_store_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/tcp_store_test.cc
  LIBS pipecast_runtime_launch)

# Real processes under each launcher's variables (torchrun's, srun's, and mpirun itself when
# MPI is installed) meet through the store and exchange rank 0's value.
add_executable(launch_probe ${CMAKE_CURRENT_SOURCE_DIR}/runtime/launch_probe.cc)
target_link_libraries(launch_probe PRIVATE pipecast_runtime_launch pipecast_warnings)
set(pipecast_launch_probe_mpiexec "")
if(MPI_C_FOUND)
  set(pipecast_launch_probe_mpiexec ${MPIEXEC_EXECUTABLE})
endif()
add_test(NAME launch_probe_processes_meet_under_every_launcher
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/runtime/launch_probe_test.sh
                 $<TARGET_FILE:launch_probe> ${pipecast_launch_probe_mpiexec})
set_tests_properties(launch_probe_processes_meet_under_every_launcher PROPERTIES TIMEOUT 120
                     ENVIRONMENT "OMPI_MCA_rmaps_base_oversubscribe=1")
