// GreenContext: a share of one GPU's SMs (a CUDA green context), so that the stages of a
// pipeline sharing one GPU each run on SMs of their own and the GPU shows the pipeline's real
// bubbles (docs/executor.md, "Several stages on one GPU"). Streams created from a green context
// run only on its SMs; memory stays the device's, shared by every context.
//
// The driver API is reached through cudaGetDriverEntryPointByVersion, never by linking libcuda
// (a binary that links it does not start on a machine without a driver). Green contexts need a
// driver of CUDA 12.4 or later; Split says so when the driver lacks them.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"

namespace pipecast::runtime::cuda {

// How `parts` equal groups are cut from a GPU's SMs: each group has `per_part` SMs, a multiple
// of the architecture's granularity (the larger of its minimum partition size and its
// co-scheduling alignment), and `left` SMs stay unused. Host arithmetic, tested without a GPU.
struct SmSplit {
  int32_t per_part = 0;
  int32_t left = 0;
};
// Errors: kInvalidArgument when the GPU has fewer than `parts` groups of the granularity
// (naming both numbers and the most parts it can hold).
Result<SmSplit> PlanSmSplit(int32_t total_sms, int32_t granularity, int32_t parts);

class GreenContext {
 public:
  // `parts` green contexts on GPU `gpu`, each with an equal share of the SMs (PlanSmSplit).
  // Errors: no driver or one without green contexts (kDeviceError saying so), too many parts.
  static Result<std::vector<std::shared_ptr<GreenContext>>> Split(int gpu, int32_t parts);
  ~GreenContext();
  GreenContext(const GreenContext&) = delete;
  GreenContext& operator=(const GreenContext&) = delete;

  int32_t sm_count() const { return sm_count_; }
  // A non-blocking stream on this context's SMs, destroyed by DestroyStream or with the context.
  Result<cudaStream_t> CreateStream();
  // Destroys a stream CreateStream made (a device built on the context is gone; the context is
  // shared by the devices of every method and seed of a run, so their streams must not pile up).
  void DestroyStream(cudaStream_t stream);

  struct Driver;  // green_context.cc: the driver entry points

 private:
  GreenContext(std::shared_ptr<const Driver> driver, void* context, int32_t sm_count);
  std::shared_ptr<const Driver> driver_;
  void* context_ = nullptr;  // CUgreenCtx
  int32_t sm_count_ = 0;
  std::mutex mu_;  // streams_
  std::vector<cudaStream_t> streams_;
};

}  // namespace pipecast::runtime::cuda
