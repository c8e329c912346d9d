// Creating a rank's NCCL communicator: rank 0 makes the 128-byte ncclUniqueId, an exchange
// (MPI, the launcher's TCP store, or a test's fake) gives it to every rank, and every rank joins
// within a deadline. The communicator is non-blocking (every NCCL call returns at once and is
// then awaited with a deadline), so that a rank that never arrives, or a peer that is lost,
// ends in an error instead of a hang. ShareUniqueId is the host part, tested without a GPU.
#pragma once

#include <nccl.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace pipecast::runtime::cuda {

// Called once on every rank with rank 0's id (on rank 0, its NCCL_UNIQUE_ID_BYTES bytes) or ""
// (on the other ranks); returns rank 0's id on every rank, or the exchange's error.
using UniqueIdExchange = std::function<Result<std::string>(const std::string& id_from_rank0)>;

// The id every rank uses: rank 0's `own_id` (passed through the exchange, which must hand it
// back unchanged), or what the exchange returns on the other ranks. With one rank the exchange
// is not called. Errors: kInvalidArgument for a rank outside [0, world_size) or an id of the
// wrong size (naming the rank and the sizes), the exchange's own error prefixed with the rank.
Result<std::string> ShareUniqueId(int rank, int world_size, const std::string& own_id,
                                  const UniqueIdExchange& exchange);

// kOk for ncclSuccess, else kDeviceError "<what>: <NCCL's name for the code>: <NCCL's last
// error>" (a lost peer reads "... remote process exited or there was a network error").
Status NcclStatus(ncclResult_t result, const std::string& what, ncclComm_t comm = nullptr);

// NcclStatus for a call on a non-blocking communicator, where ncclInProgress means "started"
// (then AwaitNccl).
Status NcclStarted(ncclResult_t result, const std::string& what, ncclComm_t comm = nullptr);

// Waits until a non-blocking communicator's last call finished (ncclCommGetAsyncError leaves
// ncclInProgress), polling until `deadline`; `stop` (may be null) ends the wait early with
// kCancelled. Errors name `what`.
Status AwaitNccl(ncclComm_t comm, std::chrono::steady_clock::time_point deadline,
                 const std::string& what, const std::atomic<bool>* stop = nullptr);
// The same, building the message only on failure (the transports' per-message path allocates
// nothing).
Status AwaitNccl(ncclComm_t comm, std::chrono::steady_clock::time_point deadline,
                 const std::function<std::string()>& what, const std::atomic<bool>* stop);

// A communicator destroyed with ncclCommDestroy when dropped (ncclCommAbort after a failure:
// NcclChannels::Abort).
struct NcclCommDeleter {
  void operator()(ncclComm_t comm) const;
};
using NcclComm = std::unique_ptr<ncclComm, NcclCommDeleter>;

// This rank's communicator of `world_size` ranks on CUDA device `gpu` (made current). Rank 0
// calls ncclGetUniqueId; every rank gets the id through `exchange` and joins before `deadline`,
// else kDeadlineExceeded naming the rank and what to check; NCCL failures are kDeviceError.
Result<NcclComm> CreateCommunicator(int rank, int world_size, int gpu,
                                    const UniqueIdExchange& exchange,
                                    std::chrono::steady_clock::time_point deadline);

}  // namespace pipecast::runtime::cuda
