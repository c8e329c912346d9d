#include "runtime/cuda/event_pool.h"

#include "runtime/cuda/cuda_status.h"

namespace pipecast::runtime::cuda {

EventPool::EventPool(int gpu, int32_t size) : gpu_(gpu) {
  PIPECAST_CHECK(size >= 1) << "an event pool of " << size << " events";
  all_.reserve(static_cast<size_t>(size));
  free_.reserve(static_cast<size_t>(size));
  for (int32_t i = 0; i < size; ++i) free_.push_back(Create());
}

cudaEvent_t EventPool::Create() {
  int current = 0;
  PIPECAST_CUDA_CHECK(cudaGetDevice(&current));
  PIPECAST_CUDA_CHECK(cudaSetDevice(gpu_));
  cudaEvent_t e = nullptr;
  PIPECAST_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  PIPECAST_CUDA_CHECK(cudaSetDevice(current));
  all_.push_back(e);
  return e;
}

EventPool::~EventPool() {
  for (cudaEvent_t e : all_) (void)cudaEventDestroy(e);
}

cudaEvent_t EventPool::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) {
    ++extra_;
    return Create();
  }
  const cudaEvent_t e = free_.back();
  free_.pop_back();
  return e;
}

void EventPool::Give(cudaEvent_t event) {
  if (event == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(event);
}

int64_t EventPool::extra() const {
  std::lock_guard<std::mutex> lock(mu_);
  return extra_;
}

}  // namespace pipecast::runtime::cuda
