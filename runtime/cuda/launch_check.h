// How the kernels and layers of runtime/cuda/ check what they enqueue (kernel launches, async
// copies and sets, CUB's sort): an error meaning the work was not enqueued through a bug (a bad
// launch configuration, no kernel image for this GPU, a bad pointer, size or stream) aborts,
// naming the work; a fault of earlier work (an illegal address inside a kernel, ...) is sticky,
// so it is left for the next synchronising call to report with its stage and lane
// (cuda_status.h, CudaDevice::Synchronize).
//
// The runtime's last-error slot (cudaGetLastError) also keeps the non-sticky errors of earlier
// calls that were handled where they happened: cudaErrorNotReady from a cudaEventQuery or
// cudaStreamQuery poll, a cudaErrorMemoryAllocation turned into a Status. A launch is checked
// through that slot, so it is cleared before every launch (ClearStaleError); otherwise a stale
// error would be read back as the launch's own and abort a healthy program.
#pragma once

#include <cuda_runtime.h>

#include "common/check.h"

namespace pipecast::runtime::cuda {

// Drops a stale non-sticky error from the last-error slot. A sticky error cannot be cleared: it
// stays, and the next synchronising call reports it.
inline void ClearStaleError() { (void)cudaGetLastError(); }

// True for the sticky errors of a fault in earlier work: the context is unusable and every later
// call returns the same error, so the next synchronising call reports it.
inline bool IsDeferredFault(cudaError_t error) {
  switch (error) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
    case cudaErrorContained:
    case cudaErrorTensorMemoryLeak:
    case cudaErrorExternalDevice:
      return true;
    default:
      return false;
  }
}

// The result of enqueuing `what`: returns on success or a deferred fault, aborts on anything else
// (the work was not enqueued).
inline void CheckEnqueued(cudaError_t error, const char* what) {
  if (error == cudaSuccess || IsDeferredFault(error)) return;
  (void)cudaGetLastError();  // not sticky: clear it for the message's sake
  PIPECAST_CHECK(false) << what << ": " << cudaGetErrorName(error) << ": "
                        << cudaGetErrorString(error);
}

// After a kernel launch preceded by ClearStaleError: the launch's own error, if any.
inline void CheckLaunch(const char* what) { CheckEnqueued(cudaPeekAtLastError(), what); }

}  // namespace pipecast::runtime::cuda
