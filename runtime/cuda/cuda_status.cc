// Status conversions of cuda_status.h.
#include "runtime/cuda/cuda_status.h"

namespace pipecast::runtime::cuda {

Status CudaStatus(cudaError_t error, const std::string& what) {
  if (error == cudaSuccess) return Status::Ok();
  return DeviceError(what + ": " + cudaGetErrorName(error) + ": " + cudaGetErrorString(error));
}

Status CublasStatus(cublasStatus_t status, const std::string& what) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return DeviceError(what + ": " + cublasLtGetStatusName(status) + ": " +
                     cublasLtGetStatusString(status));
}

}  // namespace pipecast::runtime::cuda
