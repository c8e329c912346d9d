// The loop every element-wise kernel of the optimizer and the weight operations runs: each
// thread takes groups of kGroup = 4 consecutive elements (grid-stride), loads and stores each
// buffer's group as one float4 when every buffer of the launch is 16-byte aligned and the group
// is whole, and element by element otherwise (the tail of an odd size, or an offset buffer).
// Element results do not depend on the path: only the memory access differs.
//
// The group functions are PIPECAST_HD, so that the ops the kernels run (optimizer_ops.h,
// weight_ops.h) also run on the host, group by group in order (RunGroupsOnHost), for the tests
// of machines without a GPU. The kernel and its launch exist only under nvcc.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>

#include "models/elementwise.h"
#include "runtime/cuda/launch_check.h"

namespace pipecast::runtime::cuda {

inline constexpr int kGroup = 4;
inline constexpr int kGroupThreads = 256;

// One group of values of one buffer, in registers (indexed only by unrolled constants).
struct Group {
  float x[kGroup];
};

// Loads the `count` (1..4) elements from p + i; `vec`: as one float4 (then count == 4 and p + i
// is 16-byte aligned). Lanes past `count` hold 0.
PIPECAST_HD inline Group LoadGroup(const float* p, int64_t i, int count, bool vec) {
  Group g;
  if (vec) {
    const float4 t = *reinterpret_cast<const float4*>(p + i);
    g.x[0] = t.x;
    g.x[1] = t.y;
    g.x[2] = t.z;
    g.x[3] = t.w;
  } else {
    for (int k = 0; k < kGroup; ++k) g.x[k] = k < count ? p[i + k] : 0.0f;
  }
  return g;
}

PIPECAST_HD inline void StoreGroup(float* p, int64_t i, int count, bool vec, const Group& g) {
  if (vec) {
    *reinterpret_cast<float4*>(p + i) = make_float4(g.x[0], g.x[1], g.x[2], g.x[3]);
  } else {
    for (int k = 0; k < kGroup; ++k) {
      if (k < count) p[i + k] = g.x[k];
    }
  }
}

// A group of a buffer that may be absent (null): zeros then, and nothing stored.
PIPECAST_HD inline Group LoadIf(const float* p, int64_t i, int count, bool vec) {
  return p != nullptr ? LoadGroup(p, i, count, vec) : Group{};
}
PIPECAST_HD inline void StoreIf(float* p, int64_t i, int count, bool vec, const Group& g) {
  if (p != nullptr) StoreGroup(p, i, count, vec, g);
}

// The group starting at element i of n: its element count, and whether it takes the float4 path.
PIPECAST_HD inline int GroupCount(int64_t i, int64_t n) {
  return n - i < kGroup ? static_cast<int>(n - i) : kGroup;
}

// True when every non-null pointer is 16-byte aligned (float4 access).
inline bool AllAligned(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers) {
    if (p != nullptr && reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

// The kernel's loop on the host, one group after another.
template <typename Op>
void RunGroupsOnHost(const Op& op, int64_t n, bool aligned) {
  for (int64_t i = 0; i < n; i += kGroup) {
    const int count = GroupCount(i, n);
    op(i, count, aligned && count == kGroup);
  }
}

// Blocks for n elements: one group per thread up to a cap, then grid-stride.
inline unsigned GroupBlocks(int64_t n) {
  constexpr int64_t kMaxBlocks = 1 << 16;
  const int64_t groups = (n + kGroup - 1) / kGroup;
  const int64_t blocks = (groups + kGroupThreads - 1) / kGroupThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

#if defined(__CUDACC__)
// op(i, count, vec) for every group [i, i + count) of [0, n).
template <typename Op>
__global__ void __launch_bounds__(kGroupThreads) GroupLoopKernel(Op op, int64_t n, bool aligned) {
  const int64_t groups = (n + kGroup - 1) / kGroup;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < groups;
       j += stride) {
    const int64_t i = j * kGroup;
    const int count = GroupCount(i, n);
    op(i, count, aligned && count == kGroup);
  }
}

// Enqueues op over [0, n) on `stream` (nothing for n == 0).
template <typename Op>
void LaunchGroups(const Op& op, int64_t n, bool aligned, cudaStream_t stream, const char* what) {
  if (n <= 0) return;
  ClearStaleError();
  GroupLoopKernel<Op><<<GroupBlocks(n), kGroupThreads, 0, stream>>>(op, n, aligned);
  CheckLaunch(what);
}
#endif

}  // namespace pipecast::runtime::cuda
