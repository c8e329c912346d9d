#include "runtime/mpi_transport.h"

#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "common/check.h"

namespace pipecast::runtime {
namespace {

constexpr int kHeader = 5;  // kind, stage, microbatch, count, replica

int TagOf(MessageKey::Kind kind) { return static_cast<int>(kind); }

std::string WaitedMs(Clock::time_point start, Clock::time_point deadline) {
  const double ms = std::chrono::duration<double, std::milli>(deadline - start).count();
  return std::to_string(static_cast<int64_t>(ms + 0.5)) + " ms";
}

}  // namespace

struct MpiTransport::Slot {
  int64_t header[kHeader] = {0, 0, 0, 0, 0};
  MPI_Request requests[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  MessageKey key;
  int32_t peer = -1;
  int64_t count = 0;
  bool active = false;
};

MpiTransport::MpiTransport(const MessageSpace& space)
    : space_(space), slots_(static_cast<size_t>(2) * space.size()) {
  // Sends and receives in two interleaved tables (a rank could send and receive one key only to
  // itself, which a program never does, but keeping them apart costs nothing).
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
}

MpiTransport::~MpiTransport() {
  for (Slot& s : slots_) {
    for (MPI_Request& r : s.requests) {
      if (r != MPI_REQUEST_NULL) {
        MPI_Cancel(&r);
        MPI_Request_free(&r);
      }
    }
  }
}

Handle MpiTransport::Send(int32_t /*from*/, int32_t to, const MessageKey& key, BufferView buffer,
                          Device& producer, Event ready) {
  producer.HostWait(ready);
  const int32_t index = space_.Index(key);
  Slot& s = slots_[2 * index];
  PIPECAST_CHECK(!s.active) << "duplicate message: " << key.ToString();
  s = Slot{};
  s.header[0] = static_cast<int64_t>(key.kind);
  s.header[1] = key.stage;
  s.header[2] = key.microbatch;
  s.header[3] = buffer.count;
  s.header[4] = key.replica;
  s.key = key;
  s.peer = to;
  s.count = buffer.count;
  s.active = true;
  const int tag = TagOf(key.kind);
  // Header and payload on the same stream keep MPI's non-overtaking order. Errors are reported
  // by the wait (a failed start leaves the request null and the code in `header`).
  int rc = MPI_Isend(s.header, kHeader, MPI_INT64_T, to, tag, MPI_COMM_WORLD, &s.requests[0]);
  if (rc == MPI_SUCCESS)
    rc = MPI_Isend(buffer.data, static_cast<int>(buffer.count), MPI_FLOAT, to, tag, MPI_COMM_WORLD,
                   &s.requests[1]);
  if (rc != MPI_SUCCESS) s.header[3] = -1 - rc;
  return {2 * index};
}

Handle MpiTransport::Recv(int32_t /*at*/, int32_t from, const MessageKey& key, BufferView buffer) {
  const int32_t index = space_.Index(key);
  Slot& s = slots_[2 * index + 1];
  PIPECAST_CHECK(!s.active) << "message received twice: " << key.ToString();
  s = Slot{};
  s.key = key;
  s.peer = from;
  s.count = buffer.count;
  s.active = true;
  const int tag = TagOf(key.kind);
  int rc = MPI_Irecv(s.header, kHeader, MPI_INT64_T, from, tag, MPI_COMM_WORLD, &s.requests[0]);
  if (rc == MPI_SUCCESS)
    rc = MPI_Irecv(buffer.data, static_cast<int>(buffer.count), MPI_FLOAT, from, tag,
                   MPI_COMM_WORLD, &s.requests[1]);
  if (rc != MPI_SUCCESS) s.count = -1 - rc;
  return {2 * index + 1};
}

Status MpiTransport::Poll(Slot& s, bool send, Clock::time_point deadline) {
  const Clock::time_point start = Clock::now();
  const std::string what = (send ? "sending the " : "receiving the ") + s.key.ToString() +
                           (send ? " to rank " : " from rank ") + std::to_string(s.peer);
  const int64_t failed = send ? s.header[3] : s.count;
  if (failed < 0)
    return MpiError(static_cast<int>(-1 - failed), "rank " + std::to_string(rank_) + " " + what);
  while (true) {
    if (aborted_.load()) {
      return Cancelled("rank " + std::to_string(rank_) + " stopped while " + what +
                       " (another rank or device failed)");
    }
    int done = 0;
    MPI_Status statuses[2];
    const int rc = MPI_Testall(2, s.requests, &done, statuses);
    if (rc != MPI_SUCCESS) return MpiError(rc, "rank " + std::to_string(rank_) + " " + what);
    if (done) break;
    if (Clock::now() > deadline) {
      return DeadlineExceeded("rank " + std::to_string(rank_) + " waited " +
                              WaitedMs(start, deadline) + " " + what);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  s.active = false;
  return Status::Ok();
}

Status MpiTransport::WaitReceived(Handle handle, Device& /*consumer*/, Lane /*lane*/,
                                  Clock::time_point deadline) {
  PIPECAST_CHECK(handle.valid() && handle.id % 2 == 1) << "not a receive handle";
  Slot& s = slots_[handle.id];
  PIPECAST_RETURN_IF_ERROR(Poll(s, false, deadline));
  const MessageKey got{static_cast<MessageKey::Kind>(s.header[0]),
                       static_cast<int32_t>(s.header[1]), static_cast<int32_t>(s.header[2]),
                       static_cast<int32_t>(s.header[4])};
  if (!(got == s.key) || s.header[3] != s.count) {
    return InvalidArgument("rank " + std::to_string(rank_) + " expected the " + s.key.ToString() +
                           " (" + std::to_string(s.count) + " values) but rank " +
                           std::to_string(s.peer) + " sent the " + got.ToString() + " (" +
                           std::to_string(s.header[3]) +
                           " values) first: the two programs disagree on the order of this link");
  }
  return Status::Ok();
}

Status MpiTransport::WaitSent(Handle handle, Clock::time_point deadline) {
  PIPECAST_CHECK(handle.valid() && handle.id % 2 == 0) << "not a send handle";
  return Poll(slots_[handle.id], true, deadline);
}

void MpiTransport::Abort() {
  if (aborted_.exchange(true)) return;
  // Receives not yet matched can be cancelled; sends stay with MPI until the job ends (the
  // caller ends it with AbortMpi after printing its report).
  for (size_t i = 1; i < slots_.size(); i += 2) {
    Slot& s = slots_[i];
    if (!s.active) continue;
    for (MPI_Request& r : s.requests)
      if (r != MPI_REQUEST_NULL) MPI_Cancel(&r);
  }
}

std::pair<int, int> InitMpi(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    PIPECAST_CHECK(provided >= MPI_THREAD_SERIALIZED) << "MPI lacks MPI_THREAD_SERIALIZED";
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
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

Status MpiError(int code, const std::string& what) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return DeviceError("MPI error while " + what + ": " + std::string(text, length));
}

Status GatherStages(const std::vector<int32_t>& placement, std::vector<std::vector<float>>& all) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (size_t s = 0; s < placement.size(); ++s) {
    const int owner = placement[s];
    if (owner == 0) continue;
    int rc = MPI_SUCCESS;
    if (rank == owner) {
      rc =
          MPI_Send(all[s].data(), static_cast<int>(all[s].size()), MPI_FLOAT, 0, 8, MPI_COMM_WORLD);
    } else if (rank == 0) {
      rc = MPI_Recv(all[s].data(), static_cast<int>(all[s].size()), MPI_FLOAT, owner, 8,
                    MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    if (rc != MPI_SUCCESS) return MpiError(rc, "gathering stage " + std::to_string(s));
  }
  return Status::Ok();
}

Status BroadcastStages(const std::vector<int32_t>& placement,
                       std::vector<std::vector<float>>& all) {
  for (size_t s = 0; s < placement.size(); ++s) {
    const int rc = MPI_Bcast(all[s].data(), static_cast<int>(all[s].size()), MPI_FLOAT,
                             placement[s], MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return MpiError(rc, "broadcasting stage " + std::to_string(s));
  }
  return Status::Ok();
}

Status BroadcastDoubles(int root, std::span<double> values) {
  const int rc =
      MPI_Bcast(values.data(), static_cast<int>(values.size()), MPI_DOUBLE, root, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS)
    return MpiError(rc, "broadcasting results from rank " + std::to_string(root));
  return Status::Ok();
}

}  // namespace pipecast::runtime
