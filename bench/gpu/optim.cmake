# optimizer_bench: GB/s of the fused AdamW step (with and without the prediction) against a
# device-to-device copy; bench/gpu/torch_adamw.py is torch's fused AdamW on the same tensor.
add_executable(optimizer_bench ${CMAKE_CURRENT_SOURCE_DIR}/gpu/optimizer_bench.cc)
target_link_libraries(optimizer_bench
  PRIVATE pipecast_cuda_optim pipecast_warnings)
