// MPI transport: one device per rank, launched by `mpirun`. Every message is a small header
// (kind, stage, microbatch, count) and its payload, both non-blocking (MPI_Isend / MPI_Irecv)
// on one stream per (peer, kind); MPI keeps each stream's order and the validator guarantees
// that a link's receives come in the order of its sends, so a receive posted at the program's
// receive action matches its send, and the header, checked on completion, catches any
// disagreement. Requests and headers live in tables sized once (MessageSpace). Waits poll with
// the deadline; every MPI return code is checked (the communicator returns errors instead of
// aborting); Abort cancels what is outstanding and stops every wait. Requires
// MPI_THREAD_SERIALIZED: only the device's thread calls MPI.
//
// The all-reduce of replicated stages uses the same point-to-point messages (transport.h:
// gradients to the replica-0 copy, summed there in replica order, the sum sent back), not
// MPI_Allreduce, whose reduction order MPI leaves unspecified: the copies' weights stay
// bit-identical to each other and to a run on threads. Each all-reduce kind has its own stream
// per peer; a device completes an all-reduce before its next action and the validator rejects
// programs whose all-reduces could wait on each other, so two devices meet their shared
// all-reduces in the same order and each stream's order matches.
#pragma once

#include <atomic>
#include <vector>

#include "common/ir.h"
#include "runtime/executor.h"
#include "runtime/transport.h"

namespace pipecast::runtime {

class MpiTransport : public Transport {
 public:
  // REQUIRES: MPI is initialised (InitMpi).
  explicit MpiTransport(const MessageSpace& space);
  ~MpiTransport() override;

  PIPECAST_TRANSPORT_OVERRIDES;

 private:
  struct Slot;
  Status Poll(Slot& slot, bool send, Clock::time_point deadline);

  MessageSpace space_;
  std::vector<Slot> slots_;
  std::atomic<bool> aborted_{false};
  int rank_ = 0;
};

// Runs MPI_Init_thread (MPI_THREAD_SERIALIZED) if needed and makes MPI_COMM_WORLD return errors
// instead of aborting; returns (rank, size).
std::pair<int, int> InitMpi(int* argc, char*** argv);
void FinalizeMpi();
// Ends every rank of the job with `code` (a failing rank calls it after printing its report).
[[noreturn]] void AbortMpi(int code);
// A message for an MPI return code (MPI_Error_string), naming what was being done.
Status MpiError(int code, const std::string& what);

// Rank 0 receives every stage's buffer from the rank that owns it (others send theirs and get
// theirs back unchanged). `all` holds one buffer per stage, those of this rank filled.
Status GatherStages(const std::vector<int32_t>& placement, std::vector<std::vector<float>>& all);
// Every rank gets every stage's buffer from its owner (for whole-model results on each rank).
Status BroadcastStages(const std::vector<int32_t>& placement, std::vector<std::vector<float>>& all);
// Every rank gets `values` from rank `root`.
Status BroadcastDoubles(int root, std::span<double> values);

}  // namespace pipecast::runtime
