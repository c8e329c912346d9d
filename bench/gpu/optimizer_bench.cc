// GB/s of CudaOptimizer's fused AdamW step, without and with the weight prediction, on a
// 256 Mi-element tensor, against a device-to-device cudaMemcpyAsync of the same machine in the
// same run. Each figure is the median of 20 timed calls (CUDA events, after 3 warm-up calls);
// bytes are those the kernel must move: the copy reads and writes 4 B per element; the AdamW
// step reads W, g, m, v and writes W, m, v, last_step (32 B), plus Ŵ with the prediction (36 B).
// Prints one line per measurement; without a CUDA device prints "no CUDA device" and exits 0.
// bench/gpu/torch_adamw.py measures torch.optim.AdamW(fused=True) the same way.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <vector>

#include "models/optimizer.h"
#include "runtime/cuda/cuda_optimizer.h"

namespace {

using pipecast::runtime::cuda::CudaOptimizer;
using pipecast::runtime::cuda::StepExtras;

constexpr int64_t kElements = int64_t{256} << 20;
constexpr int kWarmup = 3;
constexpr int kTimed = 20;

bool Ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "%s: %s: %s\n", what, cudaGetErrorName(e), cudaGetErrorString(e));
  return false;
}

// Median milliseconds of `call` on `stream`.
double MedianMs(const std::function<void()>& call, cudaStream_t stream) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (int i = 0; i < kWarmup; ++i) call();
  std::vector<double> ms;
  for (int i = 0; i < kTimed; ++i) {
    cudaEventRecord(start, stream);
    call();
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    float t = 0;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return (ms[kTimed / 2 - 1] + ms[kTimed / 2]) / 2;
}

void Report(const char* what, double bytes_per_element, double ms, double copy_gbps) {
  const double gbps = bytes_per_element * static_cast<double>(kElements) / (ms * 1e-3) / 1e9;
  std::printf("%-20s %lld elements, %.0f B/element, median %.3f ms, %.1f GB/s", what,
              static_cast<long long>(kElements), bytes_per_element, ms, gbps);
  if (copy_gbps > 0) std::printf(", %.1f%% of the copy", 100.0 * gbps / copy_gbps);
  std::printf("\n");
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s\n", prop.name);
  const size_t bytes = static_cast<size_t>(kElements) * sizeof(float);
  float *params = nullptr, *grad = nullptr, *predicted = nullptr, *src = nullptr, *dst = nullptr;
  if (!Ok(cudaMalloc(&params, bytes), "params") || !Ok(cudaMalloc(&grad, bytes), "grad") ||
      !Ok(cudaMalloc(&predicted, bytes), "predicted") || !Ok(cudaMalloc(&src, bytes), "src") ||
      !Ok(cudaMalloc(&dst, bytes), "dst")) {
    return 1;
  }
  // Finite values (every byte 0x3c: 0.0115 in each float).
  cudaMemset(params, 0x3c, bytes);
  cudaMemset(grad, 0x3c, bytes);
  cudaMemset(src, 0x3c, bytes);
  auto created = CudaOptimizer::Create(
      pipecast::models::DefaultOptimizerConfig(pipecast::models::OptimizerKind::kAdamW),
      kElements);
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.status().message().c_str());
    return 1;
  }
  CudaOptimizer& opt = **created;
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  cudaDeviceSynchronize();

  const double copy_ms = MedianMs(
      [&] { cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream); }, stream);
  const double copy_gbps = 8.0 * static_cast<double>(kElements) / (copy_ms * 1e-3) / 1e9;
  Report("memcpy_d2d", 8, copy_ms, 0);
  Report("adamw_step", 32, MedianMs([&] { opt.Step(params, grad, 1e-3, stream); }, stream),
         copy_gbps);
  StepExtras extras;
  extras.predicted = predicted;
  extras.predict_lr = 1e-3;
  extras.predict_s = 2;
  Report("adamw_step_predict", 36,
         MedianMs([&] { opt.Step(params, grad, 1e-3, stream, extras); }, stream), copy_gbps);
  const bool ok = Ok(cudaDeviceSynchronize(), "benchmark");
  cudaFree(params);
  cudaFree(grad);
  cudaFree(predicted);
  cudaFree(src);
  cudaFree(dst);
  return ok ? 0 : 1;
}
