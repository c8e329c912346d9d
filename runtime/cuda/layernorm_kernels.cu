// LayerNorm forward and input-gradient kernels (gpu_kernels.h): one block per row, each thread
// summing its strided elements in order and the block combining them in a fixed tree, with the
// CPU layer's formulas and rounding steps (models/layernorm.h).
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/kernel_util.cuh"

namespace pipecast::runtime::cuda {
namespace {

// mu = sum(x) / d; xhat = (x - mu) * rstd with rstd = 1 / sqrt(sum((x - mu)^2) / d + eps);
// y = xhat * gamma + beta. Each step rounds in float like the CPU code.
__global__ void LayerNormForwardKernel(const float* x, const float* gamma, const float* beta,
                                       float eps, float* y, float* xhat, float* rstd,
                                       int64_t features) {
  __shared__ float shared[kBlockThreads];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * features;
  const float inv_d = 1.0f / static_cast<float>(features);
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < features; c += kBlockThreads) sum += xr[c];
  const float mean = BlockReduce(sum, shared, SumOp{}) * inv_d;
  float squares = 0.0f;
  for (int64_t c = threadIdx.x; c < features; c += kBlockThreads) {
    const float centred = xr[c] - mean;
    squares += centred * centred;
  }
  const float var = BlockReduce(squares, shared, SumOp{}) * inv_d;
  const float r = 1.0f / sqrtf(var + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int64_t c = threadIdx.x; c < features; c += kBlockThreads) {
    const float h = (xr[c] - mean) * r;
    xhat[row * features + c] = h;
    y[row * features + c] = h * gamma[c] + beta[c];
  }
}

// g = dy * gamma; dx = ((g - xhat * mean(g * xhat)) - mean(g)) * rstd.
__global__ void LayerNormBackwardKernel(const float* dy, const float* gamma, const float* xhat,
                                        const float* rstd, float* dx, int64_t features) {
  __shared__ float shared[kBlockThreads];
  const int64_t row = blockIdx.x;
  const int64_t base = row * features;
  const float inv_d = 1.0f / static_cast<float>(features);
  float sum_g = 0.0f, sum_gx = 0.0f;
  for (int64_t c = threadIdx.x; c < features; c += kBlockThreads) {
    const float g = dy[base + c] * gamma[c];
    sum_g += g;
    sum_gx += g * xhat[base + c];
  }
  const float mean_g = BlockReduce(sum_g, shared, SumOp{}) * inv_d;
  const float mean_gx = BlockReduce(sum_gx, shared, SumOp{}) * inv_d;
  const float r = rstd[row];
  for (int64_t c = threadIdx.x; c < features; c += kBlockThreads) {
    const float g = dy[base + c] * gamma[c];
    dx[base + c] = ((g - xhat[base + c] * mean_gx) - mean_g) * r;
  }
}

}  // namespace

void LaunchLayerNormForward(const float* x, const float* gamma, const float* beta, float eps,
                            float* y, float* xhat, float* rstd, int64_t rows, int64_t features,
                            cudaStream_t stream) {
  if (rows <= 0) return;
  Launch("layernorm", LayerNormForwardKernel, static_cast<unsigned>(rows), kBlockThreads, stream, x,
         gamma, beta, eps, y, xhat, rstd, features);
}

void LaunchLayerNormBackward(const float* dy, const float* gamma, const float* xhat,
                             const float* rstd, float* dx, int64_t rows, int64_t features,
                             cudaStream_t stream) {
  if (rows <= 0) return;
  Launch("layernorm backward", LayerNormBackwardKernel, static_cast<unsigned>(rows), kBlockThreads,
         stream, dy, gamma, xhat, rstd, dx, features);
}

}  // namespace pipecast::runtime::cuda
