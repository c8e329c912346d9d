// Launch functions of the CudaDevice's own small kernels (device_kernels.cu).
#pragma once

#include <cuda_runtime.h>

namespace pipecast::runtime::cuda {

// sum[0] += value[0] * factor, in double, one thread: the evaluation's running loss sum in the
// CPU device's order (one chunk after another).
void AccumulateScaled(double* sum, const double* value, double factor, cudaStream_t stream);

}  // namespace pipecast::runtime::cuda
