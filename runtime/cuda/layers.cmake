# pipecast_cuda_layers: the CUDA device's GEMMs (cuBLASLt), the GPU versions of models/'s layers
# with their kernels, and the loss (gpu_stage.h, gemm.h, gpu_kernels.h).
# CMake 3.25 gives CUDA targets the C++ standard (20) but knows no nvcc flag for it, and then
# refuses to generate; pipecast_cuda_flags passes -std=c++20 itself, so the standard's own flag
# is declared empty here (for every CUDA target of this directory).
if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "")
endif()
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
# CUDA::cublas: cuda_status.h's messages call cublasGetStatusName/String, which live there.
target_link_libraries(pipecast_cuda_layers
  PUBLIC pipecast_cuda_common pipecast_models CUDA::cublasLt CUDA::cublas
  PRIVATE pipecast_warnings)
