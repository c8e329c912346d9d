# Built once the parts it stands on exist (layers.cmake, optim.cmake, transport.cmake).
if(TARGET pipecast_cuda_layers AND TARGET pipecast_cuda_optim AND TARGET pipecast_runtime_nccl)
# pipecast_runtime_cuda: CudaDevice (the Device of runtime/device.h on one GPU) and green
# contexts, over the layers' and the optimizers' kernels.
add_library(pipecast_runtime_cuda
  cuda_device.cc
  cuda_device_ops.cc
  device_kernels.cu
  green_context.cc
)
target_link_libraries(pipecast_runtime_cuda
  PUBLIC pipecast_runtime pipecast_cuda_layers pipecast_cuda_optim pipecast_cuda_common
         pipecast_pool_plan
  PRIVATE pipecast_warnings)

# pipecast_cuda_run: how `pipecast run` builds CUDA devices and their transports.
# One process (cuda_run.h), or one process per GPU under a launcher (cuda_processes.h).
add_library(pipecast_cuda_run cuda_run.cc cuda_processes.cc)
target_link_libraries(pipecast_cuda_run
  PUBLIC pipecast_trainer pipecast_runtime_cuda pipecast_runtime_nccl pipecast_runtime_launch
  PRIVATE pipecast_warnings)
endif()
