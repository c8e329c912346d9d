// A test double of a CUDA device for the GPU transports' tests: its own three streams and a
// ring of events (CudaLanes), device buffers, and the Device operations a transport uses
// (Record, Wait, HostWait, Synchronize). Every other Device operation is unused by the
// transports and left to DeviceWrapper over no device (calling one is a test bug).
#pragma once

#include <cuda_runtime.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common/check.h"
#include "runtime/cuda/cuda_lanes.h"
#include "runtime/device_wrapper.h"

namespace pipecast::testing {

#define PIPECAST_TEST_CUDA(expr) \
  PIPECAST_CHECK((expr) == cudaSuccess) << #expr << ": " << cudaGetErrorString(cudaGetLastError())

class TestCudaDevice : public runtime::DeviceWrapper, public runtime::cuda::CudaLanes {
 public:
  static constexpr int kEvents = 64;
  explicit TestCudaDevice(int gpu) : runtime::DeviceWrapper(nullptr), gpu_(gpu) {
    PIPECAST_TEST_CUDA(cudaSetDevice(gpu));
    for (cudaStream_t& s : streams_)
      PIPECAST_TEST_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    for (cudaEvent_t& e : events_)
      PIPECAST_TEST_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~TestCudaDevice() override {
    (void)cudaSetDevice(gpu_);
    for (cudaStream_t s : streams_) (void)cudaStreamSynchronize(s);
    for (float* p : buffers_) (void)cudaFree(p);
    for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);
    for (cudaStream_t s : streams_) (void)cudaStreamDestroy(s);
  }

  // CudaLanes
  int gpu() const override { return gpu_; }
  cudaStream_t stream(runtime::Lane lane) override { return streams_[static_cast<int>(lane)]; }
  cudaEvent_t event(runtime::Event e) override {
    return e.sequence < 0 ? nullptr : events_[e.sequence % kEvents];
  }

  // The Device operations transports use.
  std::string name() const override { return "test-cuda:" + std::to_string(gpu_); }
  runtime::Event Record(runtime::Lane lane) override {
    const runtime::Event e{static_cast<int32_t>(lane), next_++};
    PIPECAST_TEST_CUDA(cudaEventRecord(event(e), stream(lane)));
    return e;
  }
  void Wait(runtime::Lane lane, runtime::Event e) override {
    if (e.sequence >= 0) PIPECAST_TEST_CUDA(cudaStreamWaitEvent(stream(lane), event(e), 0));
  }
  void HostWait(runtime::Event e) override {
    if (e.sequence >= 0) PIPECAST_TEST_CUDA(cudaEventSynchronize(event(e)));
  }
  void NoteTransportFailure(const Status& failure) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.ok()) failure_ = failure;
  }
  Status Synchronize(runtime::Clock::time_point) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failure_.ok()) return failure_;
    }
    for (cudaStream_t s : streams_) {
      const cudaError_t r = cudaStreamSynchronize(s);
      if (r != cudaSuccess) return DeviceError(cudaGetErrorString(r));
    }
    return Status::Ok();
  }

  // Test helpers (synchronous, on the current thread).
  runtime::BufferView Alloc(const std::vector<float>& values) {
    PIPECAST_TEST_CUDA(cudaSetDevice(gpu_));
    float* p = nullptr;
    PIPECAST_TEST_CUDA(cudaMalloc(&p, values.size() * sizeof(float)));
    buffers_.push_back(p);
    PIPECAST_TEST_CUDA(
        cudaMemcpy(p, values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice));
    return {p, static_cast<int64_t>(values.size())};
  }
  std::vector<float> Download(runtime::BufferView b) {
    PIPECAST_TEST_CUDA(cudaSetDevice(gpu_));
    std::vector<float> out(static_cast<size_t>(b.count));
    PIPECAST_TEST_CUDA(
        cudaMemcpy(out.data(), b.data, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  const int gpu_;
  cudaStream_t streams_[3] = {};
  cudaEvent_t events_[kEvents] = {};
  int64_t next_ = 0;
  std::vector<float*> buffers_;
  std::mutex mu_;  // failure_
  Status failure_;
};

// `n` floats whose bit patterns differ from each other and from any fill (including NaN
// payloads and negative zero), to compare received data bit for bit.
inline std::vector<float> Pattern(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    std::memcpy(&v[i], &x, sizeof(float));
  }
  return v;
}

inline bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace pipecast::testing
