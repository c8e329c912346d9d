// A pool of CUDA events (timing disabled) created up front on one GPU, so that transports take
// and return events per message instead of creating them. Thread-safe. Take creates a new event
// only when every event is in use, and counts it (extra()), so a run can report that its pool
// was too small; nothing is destroyed before the pool.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace pipecast::runtime::cuda {

class EventPool {
 public:
  // REQUIRES: `gpu` is a valid device ordinal; `size` >= 1. Aborts if CUDA cannot create them.
  EventPool(int gpu, int32_t size);
  ~EventPool();
  EventPool(const EventPool&) = delete;
  EventPool& operator=(const EventPool&) = delete;

  cudaEvent_t Take();
  void Give(cudaEvent_t event);
  int64_t extra() const;

 private:
  cudaEvent_t Create();
  const int gpu_;
  mutable std::mutex mu_;
  std::vector<cudaEvent_t> all_, free_;
  int64_t extra_ = 0;
};

}  // namespace pipecast::runtime::cuda
