// The ops of the weight kernels (weight_kernels.cu): what one thread does to one group of four
// elements (group_loop.h), each element with the CPU device's expression in its operation order
// (runtime/cpu/cpu_device_ops.cc). PIPECAST_HD, so host tests run the same ops.
#pragma once

#include <cstdint>

#include "runtime/cuda/group_loop.h"

namespace pipecast::runtime::cuda {

// Buffers one kernel reads, passed by value (a kernel parameter of 8·kMaxBuffers bytes).
inline constexpr int32_t kMaxBuffers = 64;
struct BufferList {
  const float* at[kMaxBuffers];
  int32_t count;
};

inline BufferList ListOf(const float* const* buffers, int32_t first, int32_t count) {
  BufferList list{};
  for (int32_t k = 0; k < count; ++k) list.at[k] = buffers[first + k];
  list.count = count;
  return list;
}

inline bool ListAligned(const BufferList& list) {
  for (int32_t k = 0; k < list.count; ++k) {
    if (!AllAligned({list.at[k]})) return false;
  }
  return true;
}

// g = ((g + b0) + b1) + ...: CpuDevice::SumGradients, one buffer after another.
struct SumIntoOp {
  float* grad;
  BufferList buffers;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    Group g = LoadGroup(grad, i, count, vec);
    for (int32_t b = 0; b < buffers.count; ++b) {
      const Group x = LoadGroup(buffers.at[b], i, count, vec);
      for (int k = 0; k < kGroup; ++k) g.x[k] += x.x[k];
    }
    StoreGroup(grad, i, count, vec, g);
  }
};

struct CorrectOp {
  const float* weights;
  const float* velocity;
  float gap;
  float* out;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    const Group w = LoadGroup(weights, i, count, vec);
    const Group v = LoadGroup(velocity, i, count, vec);
    Group o;
    for (int k = 0; k < kGroup; ++k) o.x[k] = w.x[k] - gap * v.x[k];
    StoreGroup(out, i, count, vec, o);
  }
};

// CpuDevice::ElasticAverage: the sum over the copies in replica order, then both updates from
// the old reference t.
struct ElasticAverageOp {
  float* weights;
  float* reference;
  BufferList buffers;
  float alpha;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    Group w = LoadGroup(weights, i, count, vec);
    Group ref = LoadGroup(reference, i, count, vec);
    Group sum;
    for (int k = 0; k < kGroup; ++k) sum.x[k] = w.x[k] - ref.x[k];
    for (int32_t b = 0; b < buffers.count; ++b) {
      const Group x = LoadGroup(buffers.at[b], i, count, vec);
      for (int k = 0; k < kGroup; ++k) sum.x[k] += x.x[k] - ref.x[k];
    }
    for (int k = 0; k < kGroup; ++k) {
      const float t = ref.x[k];
      w.x[k] = w.x[k] - alpha * (w.x[k] - t);
      ref.x[k] = t + alpha * sum.x[k];
    }
    StoreGroup(weights, i, count, vec, w);
    StoreGroup(reference, i, count, vec, ref);
  }
};

struct ElasticPullOp {
  float* weights;
  const float* reference;
  float alpha;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    Group w = LoadGroup(weights, i, count, vec);
    const Group ref = LoadGroup(reference, i, count, vec);
    for (int k = 0; k < kGroup; ++k) w.x[k] = w.x[k] - alpha * (w.x[k] - ref.x[k]);
    StoreGroup(weights, i, count, vec, w);
  }
};

// Every thread that sees a NaN or Inf stores 1: the same value, so no atomics are needed. As on
// the CPU device, x·0 is 0 exactly when x is finite.
struct FlagNonFiniteOp {
  const float* x;
  int32_t* flag;

  PIPECAST_HD void operator()(int64_t i, int count, bool vec) const {
    const Group g = LoadGroup(x, i, count, vec);
    bool bad = false;
    for (int k = 0; k < kGroup; ++k) bad = bad || (k < count && !(g.x[k] * 0.0f == 0.0f));
    if (bad) *flag = 1;
  }
};

}  // namespace pipecast::runtime::cuda
