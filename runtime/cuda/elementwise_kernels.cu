// Element-wise kernels (activations, bias and residual additions) and the fixed-order column
// sums of bias and LayerNorm gradients (gpu_kernels.h).
#include <cuda_bf16.h>

#include "models/elementwise.h"
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/kernel_util.cuh"

namespace pipecast::runtime::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kColumnTile = 32;  // columns per block of the column sums (one warp wide)
constexpr int kRowLanes = 32;    // row-strided partial sums per column

__global__ void ReluKernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = x[i] < 0.0f ? 0.0f : x[i];  // std::max(x, 0) like the CPU layer: NaN and -0 stay
}

__global__ void ReluBackwardKernel(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

__global__ void GeluKernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = models::GeluValue<float>(x[i]);
}

// Round to the nearest bfloat16, ties to even (cuda_bf16.h's __float2bfloat16_rn), as raw bits.
__global__ void ToBfloat16Kernel(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = __bfloat16_as_ushort(__float2bfloat16_rn(x[i]));
}

__global__ void GeluBackwardKernel(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    dx[i] = dy[i] * models::GeluSlope<float>(x[i]);
}

__global__ void AddBiasKernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] += bias[i % cols];
}

__global__ void AddKernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = a[i] + b[i];
}

// Block (kColumnTile, kRowLanes) per tile of columns: thread (x, y) sums rows y, y + kRowLanes,
// ... of column c in order; thread (x, 0) adds the kRowLanes partial sums in order of y.
__global__ void ColumnSumsKernel(const float* a, const float* b, int64_t rows, int64_t cols,
                                 float* out) {
  __shared__ float partial[kRowLanes][kColumnTile + 1];
  const int64_t c = blockIdx.x * int64_t{kColumnTile} + threadIdx.x;
  float sum = 0.0f;
  if (c < cols) {
    for (int64_t r = threadIdx.y; r < rows; r += kRowLanes) {
      const int64_t i = r * cols + c;
      sum += b == nullptr ? a[i] : a[i] * b[i];
    }
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float total = 0.0f;
    for (int j = 0; j < kRowLanes; ++j) total += partial[j][threadIdx.x];
    out[c] += total;
  }
}

}  // namespace

void LaunchRelu(const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  Launch("relu", ReluKernel, GridFor(n, kThreads), kThreads, stream, x, y, n);
}

void LaunchReluBackward(const float* x, const float* dy, float* dx, int64_t n,
                        cudaStream_t stream) {
  if (n <= 0) return;
  Launch("relu backward", ReluBackwardKernel, GridFor(n, kThreads), kThreads, stream, x, dy, dx, n);
}

void LaunchGelu(const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  Launch("gelu", GeluKernel, GridFor(n, kThreads), kThreads, stream, x, y, n);
}

void LaunchToBfloat16(const float* x, void* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  Launch("to bfloat16", ToBfloat16Kernel, GridFor(n, kThreads), kThreads, stream, x,
         static_cast<uint16_t*>(y), n);
}

void LaunchGeluBackward(const float* x, const float* dy, float* dx, int64_t n,
                        cudaStream_t stream) {
  if (n <= 0) return;
  Launch("gelu backward", GeluBackwardKernel, GridFor(n, kThreads), kThreads, stream, x, dy, dx, n);
}

void LaunchAddBias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  Launch("bias", AddBiasKernel, GridFor(rows * cols, kThreads), kThreads, stream, y, bias, rows,
         cols);
}

void LaunchAdd(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  Launch("add", AddKernel, GridFor(n, kThreads), kThreads, stream, a, b, out, n);
}

void LaunchColumnSums(const float* a, const float* b, int64_t rows, int64_t cols, float* out,
                      cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const auto blocks = static_cast<unsigned>((cols + kColumnTile - 1) / kColumnTile);
  Launch("column sums", ColumnSumsKernel, blocks, dim3(kColumnTile, kRowLanes), stream, a, b, rows,
         cols, out);
}

}  // namespace pipecast::runtime::cuda
