# The executor (runtime/).
pipecast_add_test(safetensors_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/safetensors_test.cc
  LIBS pipecast_runtime)

# Threads and MPI give identical results: 4 ranks under mpirun (as root in CI, hence the flags);
# and a rank that dies makes every other rank exit non-zero within the deadline, the report
# naming it.
if(MPI_C_FOUND)
  add_executable(mpi_executor_test ${CMAKE_CURRENT_SOURCE_DIR}/runtime/mpi_executor_test.cc)
  target_link_libraries(mpi_executor_test PRIVATE pipecast_runtime_mpi
                        pipecast_test_executor_adapter pipecast_warnings)
  target_include_directories(mpi_executor_test PRIVATE "${PROJECT_SOURCE_DIR}/tests")
  add_test(NAME mpi_executor_threads_equal_mpi
           COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe
                   ${MPIEXEC_NUMPROC_FLAG} 4 $<TARGET_FILE:mpi_executor_test>)
  set_tests_properties(mpi_executor_threads_equal_mpi PROPERTIES TIMEOUT 300 LABELS mpi
                       ENVIRONMENT "OMPI_MCA_rmaps_base_oversubscribe=1")
  add_test(NAME mpi_executor_rank_death_stops_every_rank
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/runtime/mpi_rank_death_test.sh
                   ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:mpi_executor_test>)
  set_tests_properties(mpi_executor_rank_death_stops_every_rank PROPERTIES TIMEOUT 120
                       LABELS mpi ENVIRONMENT "OMPI_MCA_rmaps_base_oversubscribe=1")
endif()

# Test support. The executor adapter is the only test code that sets up and runs the executor
# for training; the sequential reference links against models/ alone, so it cannot reach the
# executor, the generators or the version accounting.
add_library(pipecast_test_executor_adapter STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/executor_adapter.cc)
target_link_libraries(pipecast_test_executor_adapter
  PUBLIC pipecast_trainer PRIVATE pipecast_warnings)
target_include_directories(pipecast_test_executor_adapter PUBLIC "${PROJECT_SOURCE_DIR}/tests")
add_library(pipecast_test_reference_trainer STATIC
  ${CMAKE_CURRENT_SOURCE_DIR}/runtime/reference_trainer.cc)
target_link_libraries(pipecast_test_reference_trainer
  PUBLIC pipecast_models PRIVATE pipecast_warnings)
target_include_directories(pipecast_test_reference_trainer PUBLIC "${PROJECT_SOURCE_DIR}/tests")

pipecast_add_test(training_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/training_test.cc
  LIBS pipecast_test_executor_adapter)
# The executor against the sequential reference written from the methods' definitions.
pipecast_add_test(method_reference_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/method_reference_test.cc
  LIBS pipecast_test_executor_adapter pipecast_test_reference_trainer)
# The CPU device's prediction-accuracy numbers against the tracking rule over the reference.
pipecast_add_test(prediction_stats_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/prediction_stats_test.cc
  LIBS pipecast_test_executor_adapter pipecast_test_reference_trainer)
# What a device derives from its setup (runtime/device_setup.h) against the executor's calls.
pipecast_add_test(device_setup_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/device_setup_test.cc
  LIBS pipecast_test_executor_adapter)
# The executor over CPU devices (every allocation of the process is counted in one test).
pipecast_add_test(executor_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/executor_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/support/counting_allocator.cc
  LIBS pipecast_test_executor_adapter)
# Replicas (Chimera, GEMS, data parallelism) against the reference, one pipeline, timing and deadlines.
pipecast_add_test(replica_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/replica_test.cc
  LIBS pipecast_test_executor_adapter pipecast_test_reference_trainer)
# AvgPipe's elastic averaging against the reference, EASGD's equations and a hand-worked average.
pipecast_add_test(avgpipe_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/avgpipe_test.cc
  LIBS pipecast_test_executor_adapter pipecast_test_reference_trainer)
