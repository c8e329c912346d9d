# The GPU transports (runtime/cuda/): host tests of their order check and tables, and tests
# labelled `gpu` that skip without a CUDA device.
pipecast_add_test(transport_order_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/transport_order_test.cc
  LIBS pipecast_transport_order)
pipecast_add_test(nccl_bootstrap_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/nccl_bootstrap_test.cc
  LIBS pipecast_runtime_nccl)
pipecast_add_gpu_test(nccl_transport_gpu_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/nccl_transport_gpu_test.cc
  LIBS pipecast_runtime_nccl Threads::Threads)
pipecast_add_gpu_test(local_transport_gpu_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/local_transport_gpu_test.cc
  LIBS pipecast_runtime_nccl Threads::Threads)

# The NCCL id exchange over MPI, under mpirun (no GPU needed).
if(MPI_C_FOUND)
  add_executable(nccl_mpi_exchange_test
                 ${CMAKE_CURRENT_SOURCE_DIR}/runtime/cuda/nccl_mpi_exchange_test.cc)
  target_link_libraries(nccl_mpi_exchange_test PRIVATE pipecast_runtime_nccl_mpi
                        pipecast_warnings)
  add_test(NAME nccl_mpi_exchange_reaches_every_rank
           COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe
                   ${MPIEXEC_NUMPROC_FLAG} 3 $<TARGET_FILE:nccl_mpi_exchange_test>)
  set_tests_properties(nccl_mpi_exchange_reaches_every_rank PROPERTIES TIMEOUT 60 LABELS mpi
                       ENVIRONMENT "OMPI_MCA_rmaps_base_oversubscribe=1")
endif()
