# optimizer_bench: GB/s of the fused AdamW step (with and without the prediction) against a
# device-to-device copy; bench/gpu/torch_adamw.py is torch's fused AdamW on the same tensor.
# CUDA::cublas after pipecast_cuda_common: cuda_status.cc calls cublasGetStatusName/String.
add_executable(optimizer_bench ${CMAKE_CURRENT_SOURCE_DIR}/gpu/optimizer_bench.cc)
target_link_libraries(optimizer_bench
  PRIVATE pipecast_cuda_optim pipecast_cuda_common CUDA::cublas pipecast_warnings)
