// How a training run builds CUDA devices and carries their messages, for `pipecast run` with
// device: cuda in one process: the pipeline's devices are spread over the job's GPUs (device k
// on GPU k mod gpus), with, when the job asks for sm_partition and several devices share a GPU,
// an equal share of that GPU's SMs each (green contexts), and messages copied device to device
// on the GPU (CudaLocalTransport).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/job.h"
#include "common/status.h"
#include "runtime/trainer.h"

namespace pipecast::runtime::cuda {

struct CudaDeviceOptions;  // cuda_device.h

struct CudaRun {
  DeviceFactory make_device;
  TransportFactory make_transport;
  int32_t gpus = 0;  // the GPUs devices are spread over
};

// Errors: no CUDA device (NoCudaDevice()); a job asking for more GPUs than the process sees
// (naming both counts).
Result<CudaRun> InProcessCudaRun(const ir::Job& job);

// The one-line kDeviceError of a device: cuda run on a machine without a usable GPU.
Status NoCudaDevice();

// The CudaDevice "cuda:<device>" of the session's stages (what a DeviceFactory returns).
Result<std::unique_ptr<Device>> MakeCudaDevice(int32_t device, std::vector<DeviceStages> stages,
                                               const CudaDeviceOptions& options);

}  // namespace pipecast::runtime::cuda
