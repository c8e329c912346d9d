// MPI transport: one device per rank, launched by `mpirun`. Messages between two ranks travel
// in send order on one (source, tag) stream per direction and kind (tag 0 activations, 1
// gradients); the validator guarantees that receives on a link come in the same order as the
// sends, and every message carries its key, which Recv checks. Sends are non-blocking
// (MPI_Isend, buffers kept until complete) so two ranks sending to each other never deadlock.
// Recv polls until the deadline. Requires MPI_THREAD_SERIALIZED or better: one device thread per
// rank calls MPI.
#pragma once

#include <list>
#include <memory>
#include <vector>

#include "common/ir.h"
#include "runtime/executor.h"
#include "runtime/transport.h"

namespace pipecast::runtime {

class MpiTransport : public Transport {
 public:
  // `placement[stage]` = device = rank. REQUIRES: MPI is initialised.
  explicit MpiTransport(std::vector<int32_t> placement);
  ~MpiTransport() override;

  void Send(int32_t src_device, int32_t dst_device, const MessageKey& key,
            Tensor tensor) override;
  Result<Tensor> Recv(int32_t device, const MessageKey& key,
                      std::chrono::milliseconds timeout) override;
  void Abort() override;
  // Waits for every outstanding send; call before MPI_Finalize.
  void Flush();

 private:
  struct Pending;
  void Reap();
  std::vector<int32_t> placement_;
  std::list<std::unique_ptr<Pending>> pending_;
  bool aborted_ = false;
};

// Runs MPI_Init_thread (MPI_THREAD_SERIALIZED) if needed; returns (rank, size).
std::pair<int, int> InitMpi(int* argc, char*** argv);
void FinalizeMpi();
// Ends every rank of the job with `code` (a failing rank calls it after printing its report).
[[noreturn]] void AbortMpi(int code);
// Collects each rank's flat buffers on rank 0 (others receive nothing). `local` holds the
// buffers of the stages this rank owns, in stage order.
std::vector<std::vector<float>> GatherStages(const std::vector<int32_t>& placement,
                                             const std::vector<std::vector<float>>& all);

// After a segment run with one device per rank: broadcasts every stage's weights from the rank
// that owns it and every microbatch's loss from the last stage's rank, so each rank holds the
// whole model (for evaluation) and all losses.
void ShareResults(const ir::Program& program, ExecutionResult& result);

}  // namespace pipecast::runtime
