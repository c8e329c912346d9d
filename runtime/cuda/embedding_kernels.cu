// Embedding kernels (gpu_kernels.h): the gather forward, and a backward that reproduces the CPU
// layer's order of additions (models/embedding.h: every gradient row receives its dy rows in
// increasing row order) without atomics: token rows are found by a stable radix sort of
// (id, row) pairs and summed run by run; position rows are summed by one thread per element.
#include <cmath>
#include <cub/device/device_radix_sort.cuh>

#include "common/check.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/kernel_util.cuh"

namespace pipecast::runtime::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int64_t kAlign = 256;

int64_t Pad(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Bits of the sort keys: ids in [0, vocab) and vocab itself for an invalid id.
int KeyBits(int64_t vocab) {
  int bits = 1;
  while (bits < 32 && (int64_t{1} << bits) <= vocab) ++bits;
  return bits;
}

__device__ bool ValidId(float value, int64_t vocab) {
  return value >= 0.0f && value < static_cast<float>(vocab) && truncf(value) == value;
}

__global__ void EmbeddingForwardKernel(const float* ids, const float* tokens,
                                       const float* positions, float* y, int64_t vocab,
                                       int64_t sequence, int64_t hidden) {
  const int64_t r = blockIdx.x;
  const float value = ids[r];
  const bool valid = ValidId(value, vocab);
  const int64_t id = valid ? static_cast<int64_t>(value) : 0;
  const float* token = tokens + id * hidden;
  const float* position = positions + (r % sequence) * hidden;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x)
    y[r * hidden + c] = valid ? token[c] + position[c] : NAN;
}

__global__ void SortKeysKernel(const float* ids, uint32_t* keys, uint32_t* rows_of, int64_t rows,
                               int64_t vocab) {
  for (int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; r < rows;
       r += int64_t{gridDim.x} * blockDim.x) {
    const float value = ids[r];
    keys[r] = static_cast<uint32_t>(ValidId(value, vocab) ? static_cast<int64_t>(value) : vocab);
    rows_of[r] = static_cast<uint32_t>(r);
  }
}

// Block i sums the run of equal ids that starts at sorted position i (other blocks return).
__global__ void TokenGradientKernel(const uint32_t* keys, const uint32_t* rows_of, const float* dy,
                                    float* grad, int64_t rows, int64_t vocab, int64_t hidden) {
  const int64_t i = blockIdx.x;
  const uint32_t id = keys[i];
  if ((i > 0 && keys[i - 1] == id) || id >= vocab) return;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
    float sum = grad[id * hidden + c];
    for (int64_t j = i; j < rows && keys[j] == id; ++j) sum += dy[rows_of[j] * hidden + c];
    grad[id * hidden + c] = sum;
  }
}

__global__ void PositionGradientKernel(const float* dy, float* grad, int64_t rows, int64_t sequence,
                                       int64_t hidden) {
  const int64_t n = sequence * hidden;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < n;
       e += int64_t{gridDim.x} * blockDim.x) {
    float sum = grad[e];
    for (int64_t at = e; at < rows * hidden; at += sequence * hidden) sum += dy[at];
    grad[e] = sum;
  }
}

size_t SortBytes(int64_t rows, int64_t vocab) {
  size_t bytes = 0;
  ClearStaleError();  // CUB reports errors it peeks at (launch_check.h)
  PIPECAST_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, static_cast<const uint32_t*>(nullptr), static_cast<uint32_t*>(nullptr),
      static_cast<const uint32_t*>(nullptr), static_cast<uint32_t*>(nullptr),
      static_cast<int>(rows), 0, KeyBits(vocab)));
  return bytes;
}

}  // namespace

void LaunchEmbeddingForward(const float* ids, const float* tokens, const float* positions, float* y,
                            int64_t rows, int64_t vocab, int64_t sequence, int64_t hidden,
                            cudaStream_t stream) {
  if (rows <= 0) return;
  Launch("embedding", EmbeddingForwardKernel, static_cast<unsigned>(rows), kThreads, stream, ids,
         tokens, positions, y, vocab, sequence, hidden);
}

int64_t EmbeddingBackwardScratchBytes(int64_t rows, int64_t vocab) {
  PIPECAST_CHECK(rows >= 0 && rows <= INT32_MAX && vocab > 0 && vocab < INT32_MAX)
      << "embedding backward: " << rows << " rows, vocabulary " << vocab;
  if (rows == 0) return 0;
  // Keys and rows, sorted and not; CUB's temporary storage; a pad to align the scratch.
  return 4 * Pad(rows * 4) + Pad(static_cast<int64_t>(SortBytes(rows, vocab))) + kAlign;
}

void LaunchEmbeddingBackward(const float* ids, const float* dy, float* grad_tokens,
                             float* grad_positions, int64_t rows, int64_t vocab, int64_t sequence,
                             int64_t hidden, void* scratch, cudaStream_t stream) {
  if (rows <= 0) return;
  auto* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(scratch) + kAlign - 1) /
                                       kAlign * kAlign);
  const int64_t slot = Pad(rows * 4);
  auto* keys_in = reinterpret_cast<uint32_t*>(base);
  auto* keys_out = reinterpret_cast<uint32_t*>(base + slot);
  auto* rows_in = reinterpret_cast<uint32_t*>(base + 2 * slot);
  auto* rows_out = reinterpret_cast<uint32_t*>(base + 3 * slot);
  void* temp = base + 4 * slot;
  size_t temp_bytes = SortBytes(rows, vocab);

  Launch("embedding sort keys", SortKeysKernel, GridFor(rows, kThreads), kThreads, stream, ids,
         keys_in, rows_in, rows, vocab);
  // CUB checks its own launches with cudaPeekAtLastError, so a stale error is cleared first.
  ClearStaleError();
  CheckEnqueued(
      cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, rows_in, rows_out,
                                      static_cast<int>(rows), 0, KeyBits(vocab), stream),
      "embedding backward sort");
  Launch("embedding token gradient", TokenGradientKernel, static_cast<unsigned>(rows), kThreads,
         stream, keys_out, rows_out, dy, grad_tokens, rows, vocab, hidden);
  Launch("embedding position gradient", PositionGradientKernel,
         GridFor(sequence * hidden, kThreads), kThreads, stream, dy, grad_positions, rows, sequence,
         hidden);
}

}  // namespace pipecast::runtime::cuda
