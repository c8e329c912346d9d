#include "runtime/mpi_transport.h"

#include <mpi.h>

#include <cstdlib>
#include <thread>

#include "common/check.h"

namespace pipecast::runtime {

namespace {
constexpr int kHeader = 5;  // gradient, stage, microbatch, rows, cols (as floats' bit pattern)
}

struct MpiTransport::Pending {
  std::vector<int64_t> header;
  std::vector<float> data;
  MPI_Request requests[2];
};

MpiTransport::MpiTransport(std::vector<int32_t> placement) : placement_(std::move(placement)) {}

MpiTransport::~MpiTransport() { Flush(); }

void MpiTransport::Reap() {
  for (auto it = pending_.begin(); it != pending_.end();) {
    int done = 0;
    MPI_Testall(2, (*it)->requests, &done, MPI_STATUSES_IGNORE);
    it = done ? pending_.erase(it) : std::next(it);
  }
}

void MpiTransport::Flush() {
  for (auto& p : pending_) MPI_Waitall(2, p->requests, MPI_STATUSES_IGNORE);
  pending_.clear();
}

void MpiTransport::Send(int32_t src_device, int32_t dst_device, const MessageKey& key,
                        Tensor tensor) {
  (void)src_device;
  auto p = std::make_unique<Pending>();
  p->header = {key.gradient ? 1 : 0, key.stage, key.microbatch, tensor.rows, tensor.cols};
  p->data = std::move(tensor.data);
  const int tag = key.gradient ? 1 : 0;
  // Header and payload as two messages on the same stream keep MPI's non-overtaking order.
  MPI_Isend(p->header.data(), kHeader, MPI_INT64_T, dst_device, tag, MPI_COMM_WORLD,
            &p->requests[0]);
  MPI_Isend(p->data.data(), static_cast<int>(p->data.size()), MPI_FLOAT, dst_device, tag,
            MPI_COMM_WORLD, &p->requests[1]);
  pending_.push_back(std::move(p));
  Reap();
}

Result<Tensor> MpiTransport::Recv(int32_t device, const MessageKey& key,
                                  std::chrono::milliseconds timeout) {
  const int32_t src = placement_[key.gradient ? key.stage + 1 : key.stage - 1];
  const int tag = key.gradient ? 1 : 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int flag = 0;
  MPI_Status status;
  while (true) {
    MPI_Iprobe(src, tag, MPI_COMM_WORLD, &flag, &status);
    if (flag) break;
    Reap();
    if (std::chrono::steady_clock::now() > deadline) {
      return Status(StatusCode::kDeadlock,
                    "rank " + std::to_string(device) + " waited " +
                        std::to_string(timeout.count()) + " ms for the " + key.ToString() +
                        " from rank " + std::to_string(src));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  std::vector<int64_t> header(kHeader);
  MPI_Recv(header.data(), kHeader, MPI_INT64_T, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  const MessageKey got{header[0] != 0, static_cast<int32_t>(header[1]),
                       static_cast<int32_t>(header[2])};
  Tensor t;
  t.rows = header[3];
  t.cols = header[4];
  t.data.resize(static_cast<size_t>(t.rows * t.cols));
  MPI_Recv(t.data.data(), static_cast<int>(t.data.size()), MPI_FLOAT, src, tag, MPI_COMM_WORLD,
           MPI_STATUS_IGNORE);
  if (!(got == key)) {
    return InvalidArgument("rank " + std::to_string(device) + " expected the " + key.ToString() +
                           " but rank " + std::to_string(src) + " sent the " + got.ToString() +
                           " first: the two programs disagree on the order of this link");
  }
  return t;
}

void MpiTransport::Abort() {
  if (aborted_) return;
  aborted_ = true;
  // Other ranks may be blocked in their own waits; MPI_Abort ends the whole job with an error
  // code once the failing rank has printed its report (the caller does that first).
}

std::pair<int, int> InitMpi(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    PIPECAST_CHECK(provided >= MPI_THREAD_SERIALIZED) << "MPI lacks MPI_THREAD_SERIALIZED";
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return {rank, size};
}

void FinalizeMpi() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

void AbortMpi(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();  // MPI_Abort does not return; this satisfies [[noreturn]]
}

std::vector<std::vector<float>> GatherStages(const std::vector<int32_t>& placement,
                                             const std::vector<std::vector<float>>& all) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<std::vector<float>> out = all;
  for (size_t s = 0; s < placement.size(); ++s) {
    const int owner = placement[s];
    if (owner == 0) continue;
    if (rank == owner) {
      MPI_Send(all[s].data(), static_cast<int>(all[s].size()), MPI_FLOAT, 0, 2, MPI_COMM_WORLD);
    } else if (rank == 0) {
      MPI_Recv(out[s].data(), static_cast<int>(out[s].size()), MPI_FLOAT, owner, 2,
               MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
  }
  return out;
}

void ShareResults(const ir::Program& program, ExecutionResult& result) {
  for (int32_t s = 0; s < program.num_stages; ++s) {
    std::vector<float>& w = result.weights[s];
    MPI_Bcast(w.data(), static_cast<int>(w.size()), MPI_FLOAT, program.device_of(s),
              MPI_COMM_WORLD);
  }
  MPI_Bcast(result.losses.data(), static_cast<int>(result.losses.size()), MPI_DOUBLE,
            program.device_of(program.num_stages - 1), MPI_COMM_WORLD);
}

}  // namespace pipecast::runtime
