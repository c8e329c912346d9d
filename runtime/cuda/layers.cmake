# pipecast_cuda_layers: the CUDA device's GEMMs (cuBLASLt), the GPU versions of models/'s layers
# with their kernels, and the loss (gpu_stage.h, gemm.h, gpu_kernels.h).
add_library(pipecast_cuda_layers
  ${CMAKE_CURRENT_SOURCE_DIR}/attention_kernels.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/elementwise_kernels.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/embedding_kernels.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/gemm.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/gpu_attention.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/gpu_layers.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/gpu_stage.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/layernorm_kernels.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/loss_kernels.cu)
target_link_libraries(pipecast_cuda_layers
  PUBLIC pipecast_cuda_common pipecast_models CUDA::cublasLt
  PRIVATE pipecast_warnings)
