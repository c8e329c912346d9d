// InProcessCudaRun (cuda_run.h).
#include "runtime/cuda/cuda_run.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/green_context.h"
#include "runtime/cuda/local_transport.h"

namespace pipecast::runtime::cuda {
namespace {

// Green contexts per (GPU, devices sharing it), made once per run and shared by the devices of
// every method and seed (devices are built one after another on the session's thread).
struct GreenContexts {
  std::mutex mu;
  std::map<std::pair<int, int32_t>, std::vector<std::shared_ptr<GreenContext>>> made;
};

}  // namespace

Status NoCudaDevice() {
  return DeviceError(
      "no CUDA device was found (device: cuda needs an NVIDIA GPU and its driver); run with "
      "--device cpu");
}

Result<std::unique_ptr<Device>> MakeCudaDevice(int32_t device, std::vector<DeviceStages> stages,
                                               const CudaDeviceOptions& options) {
  std::vector<CudaStageSpec> specs;
  for (DeviceStages& s : stages) specs.push_back({s.stage, std::move(s.layers), s.optimizer});
  auto made = CudaDevice::Create(std::move(specs), "cuda:" + std::to_string(device), options);
  if (!made.ok()) return made.status();
  return std::unique_ptr<Device>(std::move(*made));
}

Result<CudaRun> InProcessCudaRun(const ir::Job& job) {
  const int visible = VisibleGpus();
  if (visible == 0) return NoCudaDevice();
  if (job.gpus > visible) {
    return DeviceError(job.source + ": gpus: " + std::to_string(job.gpus) + " but this machine " +
                       "shows " + std::to_string(visible) + " CUDA device" +
                       (visible == 1 ? "" : "s") + ": set gpus to at most " +
                       std::to_string(visible));
  }
  CudaRun run;
  run.gpus = job.gpus > 0 ? job.gpus : visible;
  const int32_t gpus = run.gpus;
  const bool partition = job.sm_partition;
  auto greens = std::make_shared<GreenContexts>();
  const bool bf16 = job.bf16;
  run.make_device = [gpus, partition, greens, bf16](
                        int32_t device, int32_t devices,
                        std::vector<DeviceStages> stages) -> Result<std::unique_ptr<Device>> {
    CudaDeviceOptions options;
    options.bf16 = bf16;
    options.gpu = device % gpus;
    // Devices on this GPU: those k < devices with k mod gpus == gpu.
    const int32_t sharing = devices / gpus + (options.gpu < devices % gpus ? 1 : 0);
    if (partition && sharing > 1) {
      std::lock_guard<std::mutex> lock(greens->mu);
      auto& parts = greens->made[{options.gpu, sharing}];
      if (parts.empty()) {
        auto split = GreenContext::Split(options.gpu, sharing);
        if (!split.ok()) return split.status();
        parts = std::move(*split);
      }
      options.green = parts[device / gpus];
    }
    return MakeCudaDevice(device, std::move(stages), options);
  };
  run.make_transport = [](int32_t devices, const MessageSpace& space) {
    return std::unique_ptr<Transport>(new CudaLocalTransport(devices, space));
  };
  return run;
}

}  // namespace pipecast::runtime::cuda
