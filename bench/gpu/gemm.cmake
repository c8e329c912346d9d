# gemm_bench: our cuBLASLt Gemm's TFLOP/s against cuBLASLt's default heuristic at the GPT shapes
# and at 8192^3 (plain program; prints "no CUDA device" and exits 0 without one).
add_executable(gemm_bench ${CMAKE_CURRENT_SOURCE_DIR}/gpu/gemm_bench.cc)
target_link_libraries(gemm_bench PRIVATE pipecast_cuda_layers pipecast_warnings)
