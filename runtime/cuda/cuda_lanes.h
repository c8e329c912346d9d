// CudaLanes: what a device-side transport needs from a CUDA device besides the Device
// interface: the stream behind each lane, the CUDA event behind a Device::Event, and the GPU
// the device runs on. CudaDevice implements it; transports (NCCL, same-process copies) reach it
// with dynamic_cast from the Device they are handed.
#pragma once

#include <cuda_runtime.h>

#include "common/status.h"
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
  // A device transport's failure, from any thread: the device's next Synchronize returns it
  // (the first one noted), because a transfer its lanes wait for may have been cut off without
  // its data (NcclTransport's watchdog aborting a receive whose wait returned already). Prepare
  // forgets it.
  virtual void NoteTransportFailure(const Status& failure) = 0;
};

}  // namespace pipecast::runtime::cuda
