#include "runtime/cuda/nccl_bootstrap.h"

#include <cuda_runtime.h>

#include <cstring>
#include <thread>

#include "runtime/cuda/cuda_status.h"

namespace pipecast::runtime::cuda {

Result<std::string> ShareUniqueId(int rank, int world_size, const std::string& own_id,
                                  const UniqueIdExchange& exchange) {
  const std::string who = "rank " + std::to_string(rank);
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return InvalidArgument(who + " is not a rank of a job of " + std::to_string(world_size) +
                           " ranks");
  }
  const size_t bytes = sizeof(ncclUniqueId);
  if (rank == 0 && own_id.size() != bytes) {
    return InvalidArgument("rank 0's NCCL id has " + std::to_string(own_id.size()) +
                           " bytes, not " + std::to_string(bytes));
  }
  if (world_size == 1) return own_id;
  Result<std::string> got = exchange(rank == 0 ? own_id : std::string());
  if (!got.ok()) {
    return Status(got.status().code(),
                  who + " could not get rank 0's NCCL id: " + got.status().message());
  }
  if (got->size() != bytes) {
    return InvalidArgument(who + " received an NCCL id of " + std::to_string(got->size()) +
                           " bytes from the exchange, expected " + std::to_string(bytes) +
                           ": the ranks do not use the same exchange or it truncates binary data");
  }
  if (rank == 0 && *got != own_id) {
    return InvalidArgument("the exchange did not hand rank 0 its own NCCL id back");
  }
  return got;
}

Status NcclStatus(ncclResult_t result, const std::string& what, ncclComm_t comm) {
  if (result == ncclSuccess) return Status::Ok();
  const char* last = ncclGetLastError(comm);
  return DeviceError(what + ": " + ncclGetErrorString(result) +
                     (last != nullptr && last[0] != '\0' ? std::string(": ") + last : ""));
}

Status NcclStarted(ncclResult_t result, const std::string& what, ncclComm_t comm) {
  return result == ncclInProgress ? Status::Ok() : NcclStatus(result, what, comm);
}

Status AwaitNccl(ncclComm_t comm, std::chrono::steady_clock::time_point deadline,
                 const std::function<std::string()>& what, const std::atomic<bool>* stop) {
  while (true) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm, &state);
    if (rc != ncclSuccess) return NcclStatus(rc, what(), comm);
    if (state == ncclSuccess) return Status::Ok();
    if (state != ncclInProgress) return NcclStatus(state, what(), comm);
    if (stop != nullptr && stop->load()) return Cancelled(what() + ": the transport was aborted");
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceeded(what() + ": NCCL did not finish before the deadline");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

Status AwaitNccl(ncclComm_t comm, std::chrono::steady_clock::time_point deadline,
                 const std::string& what, const std::atomic<bool>* stop) {
  return AwaitNccl(comm, deadline, std::function<std::string()>([&] { return what; }), stop);
}

void NcclCommDeleter::operator()(ncclComm_t comm) const {
  if (comm != nullptr) (void)ncclCommDestroy(comm);
}

Result<NcclComm> CreateCommunicator(int rank, int world_size, int gpu,
                                    const UniqueIdExchange& exchange,
                                    std::chrono::steady_clock::time_point deadline) {
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu));
  ncclUniqueId id{};
  std::string own;
  if (rank == 0) {
    PIPECAST_RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "rank 0: ncclGetUniqueId"));
    own.assign(id.internal, sizeof(id.internal));
  }
  Result<std::string> shared = ShareUniqueId(rank, world_size, own, exchange);
  if (!shared.ok()) return shared.status();
  std::memcpy(id.internal, shared->data(), sizeof(id.internal));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const std::string what = "rank " + std::to_string(rank) + " joining the NCCL communicator of " +
                           std::to_string(world_size) + " ranks on GPU " + std::to_string(gpu);
  Status s = NcclStarted(ncclCommInitRankConfig(&comm, world_size, id, rank, &config), what);
  if (s.ok()) s = AwaitNccl(comm, deadline, what);
  if (!s.ok()) {
    if (comm != nullptr) (void)ncclCommAbort(comm);
    if (s.code() == StatusCode::kDeadlineExceeded) {
      return DeadlineExceeded(s.message() +
                              " (a rank did not start, or cannot reach rank 0's address)");
    }
    return s;
  }
  return NcclComm(comm);
}

}  // namespace pipecast::runtime::cuda
