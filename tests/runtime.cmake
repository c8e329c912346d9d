# The executor (runtime/).
pipecast_add_test(executor_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/executor_test.cc
  LIBS pipecast_runtime)
pipecast_add_test(safetensors_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/safetensors_test.cc
  LIBS pipecast_runtime)

# Threads and MPI give identical results: 4 ranks under mpirun (as root in CI, hence the flags).
if(MPI_C_FOUND)
  add_executable(mpi_executor_test ${CMAKE_CURRENT_SOURCE_DIR}/runtime/mpi_executor_test.cc)
  target_link_libraries(mpi_executor_test PRIVATE pipecast_runtime_mpi pipecast_warnings)
  target_include_directories(mpi_executor_test PRIVATE "${PROJECT_SOURCE_DIR}/tests")
  add_test(NAME mpi_executor_threads_equal_mpi
           COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe
                   ${MPIEXEC_NUMPROC_FLAG} 4 $<TARGET_FILE:mpi_executor_test>)
  set_tests_properties(mpi_executor_threads_equal_mpi PROPERTIES TIMEOUT 300 LABELS mpi
                       ENVIRONMENT "OMPI_MCA_rmaps_base_oversubscribe=1")
endif()
pipecast_add_test(training_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/training_test.cc
  LIBS pipecast_runtime_cpu)
