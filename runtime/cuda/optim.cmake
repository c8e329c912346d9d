# pipecast_cuda_optim: CudaOptimizer (one fused kernel per optimizer, with PipeMare's velocity and
# the weight prediction in the same pass) and the other weight-side kernels (gradient sums,
# PipeMare's correction, elastic averaging, finiteness flags, prediction measurement). The
# element mathematics is models/optimizer_math.h's, shared with the CPU optimizer.
add_library(pipecast_cuda_optim
  cuda_optimizer.cc
  optimizer_kernels.cu
  weight_kernels.cu)
target_link_libraries(pipecast_cuda_optim
  PUBLIC pipecast_cuda_common pipecast_models
  PRIVATE pipecast_warnings)
