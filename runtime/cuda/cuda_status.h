// CUDA, cuBLAS and NCCL return codes as pipecast Status values, and the two ways code in
// runtime/cuda/ reacts to them: PIPECAST_CUDA_RETURN_IF_ERROR for failures a user can meet (out
// of memory, no device, a lost peer: a kDeviceError naming the call and the CUDA message) and
// PIPECAST_CUDA_CHECK for calls that fail only through a bug in pipecast (abort with the call).
// Kernel launches are asynchronous: a fault inside a kernel surfaces at a later call, and is
// sticky (every later call on the GPU returns it). The launches and the device's own enqueues
// let it pass (launch_check.h), so CudaDevice::Synchronize reports it with the stage and lane
// it waited on; a PIPECAST_CUDA_CHECK that meets it first (the host copies between programs)
// aborts the process with CUDA's error, and a transport's wait returns it as a kDeviceError
// naming the message.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "common/check.h"
#include "common/status.h"

namespace pipecast::runtime::cuda {

// kOk for cudaSuccess, else kDeviceError "<what>: <CUDA's name>: <CUDA's message>".
Status CudaStatus(cudaError_t error, const std::string& what);
Status CublasStatus(cublasStatus_t status, const std::string& what);

}  // namespace pipecast::runtime::cuda

#define PIPECAST_CUDA_RETURN_IF_ERROR(expr)                        \
  do {                                                             \
    ::pipecast::Status pipecast_cuda_status_ =                     \
        ::pipecast::runtime::cuda::CudaStatus((expr), #expr);      \
    if (!pipecast_cuda_status_.ok()) return pipecast_cuda_status_; \
  } while (false)

#define PIPECAST_CUDA_CHECK(expr)                                          \
  do {                                                                     \
    const cudaError_t pipecast_cuda_error_ = (expr);                       \
    PIPECAST_CHECK(pipecast_cuda_error_ == cudaSuccess)                    \
        << #expr << ": " << cudaGetErrorName(pipecast_cuda_error_) << ": " \
        << cudaGetErrorString(pipecast_cuda_error_);                       \
  } while (false)

#define PIPECAST_CUBLAS_CHECK(expr)                                              \
  do {                                                                           \
    const cublasStatus_t pipecast_cublas_status_ = (expr);                       \
    PIPECAST_CHECK(pipecast_cublas_status_ == CUBLAS_STATUS_SUCCESS)             \
        << #expr << ": " << cublasLtGetStatusName(pipecast_cublas_status_) << ": " \
        << cublasLtGetStatusString(pipecast_cublas_status_);                       \
  } while (false)
