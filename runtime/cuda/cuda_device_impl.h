// CudaDevice's device-wide state (internal to runtime/cuda/): the GEMM engine of the compute
// stream, the pool and its program-wide regions (scratch, losses, flags, measurements,
// evaluation totals), the event ring of each lane, the pinned staging ring, and what
// Synchronize read back.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/gemm.h"
#include "runtime/cuda/gpu_stage.h"

namespace pipecast::runtime::cuda {

// Events per lane: a Device::Event names a point of its lane until that lane has recorded this
// many more; every wait on an event is enqueued right after it is recorded (executor.cc,
// transports), far inside that window.
inline constexpr int32_t kEventRing = 4096;
// Pinned staging buffers for host inputs and labels; the eighth upload in flight waits for the
// first to be copied.
inline constexpr int32_t kStagingSlots = 8;

struct CudaDevice::Impl {
  // A place where a non-finite value is detected, in issue order: the loss of a microbatch
  // (losses[where] read back) or the gradient of a step (flags[flag] set by FlagNonFinite).
  struct Check {
    bool loss = false;
    int32_t stage = 0;
    int64_t where = 0;
    int32_t flag = -1;
  };

  std::unique_ptr<Gemm> gemm;
  GpuContext ctx;
  // CudaDeviceOptions::memory_limit_bytes less what this device's programs took from it (the
  // pool, velocity, reference weights), when `limited`; else each Prepare plans against the
  // GPU's free memory then (devices sharing the GPU take theirs between Creates and Prepares).
  bool limited = false;
  int64_t memory_limit = 0;
  std::shared_ptr<GreenContext> green;

  // The pool and its program-wide regions.
  void* pool = nullptr;
  int64_t pool_bytes = 0;
  float* scratch = nullptr;
  double* dscratch = nullptr;  // loss and measurement reductions
  double* losses = nullptr;    // per global microbatch
  long long* correct = nullptr;
  int32_t* flags = nullptr;
  int32_t flag_capacity = 0, flags_used = 0;
  double* measures = nullptr;  // 4 sums per measurement
  int32_t measure_capacity = 0, measures_used = 0;
  // With bf16: the largest GEMM operand of the program in elements (PlanPool), the size
  // Prepare grows the GEMM's bf16 operand buffers to.
  int64_t bf16_elements = 1;
  double* eval_loss = nullptr;  // [0]: the chunk's mean, [1]: the running sum of mean·rows
  long long* eval_correct = nullptr;
  int64_t eval_rows_done = 0;
  std::vector<Check> checks;
  // The reduction buffers' pointers handed to a sum or an average (capacity set by Prepare, so
  // that the operations allocate nothing).
  std::vector<const float*> buffers;

  // Read back by Synchronize.
  std::vector<double> host_losses;
  std::vector<uint8_t> has_loss;
  long long host_correct = 0;

  std::array<std::vector<cudaEvent_t>, 3> ring;
  std::array<int64_t, 3> recorded = {0, 0, 0};
  std::array<cudaEvent_t, 3> sync_events = {nullptr, nullptr, nullptr};

  void* pinned = nullptr;
  int64_t slot_bytes = 0;
  std::array<cudaEvent_t, kStagingSlots> slot_events = {};
  std::array<bool, kStagingSlots> slot_used = {};
  int32_t next_slot = 0;

  // CudaLanes::NoteTransportFailure's first failure since Prepare (any thread: under the lock).
  std::mutex failure_mu;
  Status transport_failure;

  // A step Step deferred (cuda_device.h, LaunchPendingStep): its stage (-1: none), rate and the
  // measurement slot of a tracked prediction it completes (-1: none).
  struct PendingStep {
    int32_t stage = -1;
    double lr = 0;
    int32_t measure_slot = -1;
  };
  PendingStep pending;

  // The last operation issued, for the message of a kernel fault.
  const char* last_op = "nothing";
  int32_t last_stage = -1;
};

// Polls `e` (backing off from microseconds to a millisecond) until it completes: kOk; a device
// error (kDeviceError naming `what` and CUDA's message); or the deadline (kDeadlineExceeded).
Status PollEvent(cudaEvent_t e, Clock::time_point deadline, const std::string& what);

}  // namespace pipecast::runtime::cuda
