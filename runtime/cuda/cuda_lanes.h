// CudaLanes: what a device-side transport needs from a CUDA device besides the Device
// interface: the stream behind each lane, the CUDA event behind a Device::Event, and the GPU
// the device runs on. CudaDevice implements it; transports (NCCL, same-process copies) reach it
// with dynamic_cast from the Device they are handed.
#pragma once

#include <cuda_runtime.h>

#include "runtime/device.h"

namespace pipecast::runtime::cuda {

class CudaLanes {
 public:
  virtual ~CudaLanes() = default;
  // The CUDA device ordinal of this device's GPU.
  virtual int gpu() const = 0;
  // The stream of `lane` (kCompute, kSend, kReceive), created at construction.
  virtual cudaStream_t stream(Lane lane) = 0;
  // The CUDA event recorded for `event` (from Device::Record), or null for an event that is
  // already complete (sequence -1).
  virtual cudaEvent_t event(Event event) = 0;
};

}  // namespace pipecast::runtime::cuda
