# pipecast_runtime_launch: how the processes of a multi-GPU run find each other. The launcher's
# environment (mpirun, torchrun, Slurm; runtime/launch_env.h), the choice of a rank's GPU, and
# the TCP store of the bootstrap under torchrun and Slurm (runtime/tcp_store.h) with the NCCL id
# exchange. Host code only, always built and tested without a GPU.
add_library(pipecast_runtime_launch
  launch_env.cc
  tcp_socket.cc
  tcp_store.cc
  tcp_store_frame.cc
  tcp_store_server.cc
)
target_link_libraries(pipecast_runtime_launch
  PUBLIC pipecast_common Threads::Threads PRIVATE pipecast_warnings)
