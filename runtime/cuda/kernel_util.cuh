// Device-side helpers shared by the layers' .cu files (included by them only): grid sizes, the
// checked launch (launch_check.h), and a block-wide reduction in a fixed order.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/cuda/launch_check.h"

namespace pipecast::runtime::cuda {

inline constexpr int kBlockThreads = 256;  // every row kernel's block (a power of two)

// Blocks of `threads` covering n elements with a grid-stride loop (capped: the loop does the
// rest).
inline unsigned GridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 16 ? 65535 * 16 : blocks));
}

// kernel<<<grid, block, 0, stream>>>(args...), checked as launch_check.h says: a stale error of
// an earlier call is cleared first, a launch that did not start aborts naming `what`, and a
// fault of earlier work is left for the next synchronisation.
template <typename... Params, typename... Args>
void Launch(const char* what, void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
            Args... args) {
  ClearStaleError();
  kernel<<<grid, block, 0, stream>>>(args...);
  CheckLaunch(what);
}

// Reduces one value per thread of a block of kBlockThreads threads with `op` in a fixed tree
// (pairs at distance 128, 64, ..., 1), so the result does not depend on timing. Every thread
// gets the result. `shared` holds kBlockThreads values. Must be reached by the whole block.
template <typename T, typename Op>
__device__ T BlockReduce(T value, T* shared, Op op) {
  const int t = static_cast<int>(threadIdx.x);
  shared[t] = value;
  __syncthreads();
  for (int half = kBlockThreads / 2; half > 0; half /= 2) {
    if (t < half) shared[t] = op(shared[t], shared[t + half]);
    __syncthreads();
  }
  const T result = shared[0];
  __syncthreads();  // shared may be reused at once
  return result;
}

struct SumOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};

}  // namespace pipecast::runtime::cuda
