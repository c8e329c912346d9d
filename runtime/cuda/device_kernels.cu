// The CudaDevice's own small kernels (device_kernels.h).
#include "runtime/cuda/device_kernels.h"
#include "runtime/cuda/kernel_util.cuh"

namespace pipecast::runtime::cuda {
namespace {

__global__ void AccumulateScaledKernel(double* sum, const double* value, double factor) {
  sum[0] += value[0] * factor;
}

}  // namespace

void AccumulateScaled(double* sum, const double* value, double factor, cudaStream_t stream) {
  Launch("evaluation loss sum", AccumulateScaledKernel, 1, 1, stream, sum, value, factor);
}

}  // namespace pipecast::runtime::cuda
