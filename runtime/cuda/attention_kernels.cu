// The causal softmax of attention scores and its backward (gpu_kernels.h): one block per score
// row, in place, with models::CausalSelfAttention's steps (scale, subtract the row maximum,
// exponentiate, divide by the sum; masked entries exactly 0). The products around them are
// cuBLASLt GEMMs (gpu_layers.cc).
#include <cfloat>

#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/kernel_util.cuh"

namespace pipecast::runtime::cuda {
namespace {

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Row t of an S x S matrix (blockIdx.x = matrix * S + t).
__global__ void CausalSoftmaxKernel(float* scores, int64_t sequence, float scale) {
  __shared__ float shared[kBlockThreads];
  const int64_t t = blockIdx.x % sequence;
  float* row = scores + blockIdx.x * sequence;
  float max = -FLT_MAX;
  for (int64_t c = threadIdx.x; c <= t; c += kBlockThreads) max = fmaxf(max, row[c] * scale);
  max = BlockReduce(max, shared, MaxOp{});
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c <= t; c += kBlockThreads) {
    const float e = expf(row[c] * scale - max);
    row[c] = e;
    sum += e;
  }
  sum = BlockReduce(sum, shared, SumOp{});
  for (int64_t c = threadIdx.x; c < sequence; c += kBlockThreads)
    row[c] = c <= t ? row[c] / sum : 0.0f;
}

// dp = p * (dp - sum(dp * p)) * scale, per row.
__global__ void SoftmaxBackwardKernel(const float* probs, float* dp, int64_t sequence,
                                      float scale) {
  __shared__ float shared[kBlockThreads];
  const float* p = probs + blockIdx.x * sequence;
  float* d = dp + blockIdx.x * sequence;
  float dot = 0.0f;
  for (int64_t c = threadIdx.x; c < sequence; c += kBlockThreads) dot += d[c] * p[c];
  dot = BlockReduce(dot, shared, SumOp{});
  for (int64_t c = threadIdx.x; c < sequence; c += kBlockThreads)
    d[c] = p[c] * (d[c] - dot) * scale;
}

}  // namespace

void LaunchCausalSoftmax(float* scores, int64_t count, int64_t sequence, float scale,
                         cudaStream_t stream) {
  if (count <= 0) return;
  Launch("causal softmax", CausalSoftmaxKernel, static_cast<unsigned>(count * sequence),
         kBlockThreads, stream, scores, sequence, scale);
}

void LaunchSoftmaxBackward(const float* probs, float* dp, int64_t count, int64_t sequence,
                           float scale, cudaStream_t stream) {
  if (count <= 0) return;
  Launch("softmax backward", SoftmaxBackwardKernel, static_cast<unsigned>(count * sequence),
         kBlockThreads, stream, probs, dp, sequence, scale);
}

}  // namespace pipecast::runtime::cuda
