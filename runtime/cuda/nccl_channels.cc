// NcclChannels (nccl_transport.h): one communicator and stream per channel, split from the world
// communicator and connected up front.
#include <cuda_runtime.h>

#include <thread>

#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/nccl_transport.h"

namespace pipecast::runtime::cuda {
namespace {

std::string ChannelText(const Channel& c) {
  const char* cls = c.cls == 0 ? "activations" : c.cls == 1 ? "gradients" : "reductions";
  return std::string("the NCCL channel of ") + cls + " from rank " + std::to_string(c.from) +
         " to rank " + std::to_string(c.to);
}

// Polls `stream` until its work is done, NCCL reports an error, or the deadline passes.
Status AwaitStream(cudaStream_t stream, ncclComm_t comm, Clock::time_point deadline,
                   const std::string& what) {
  while (true) {
    const cudaError_t q = cudaStreamQuery(stream);
    if (q == cudaSuccess) return Status::Ok();
    if (q != cudaErrorNotReady) return CudaStatus(q, what);
    ncclResult_t state = ncclSuccess;
    (void)ncclCommGetAsyncError(comm, &state);
    if (state != ncclSuccess && state != ncclInProgress) return NcclStatus(state, what, comm);
    if (Clock::now() > deadline) return DeadlineExceeded(what + ": the peer did not take part");
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

}  // namespace

Result<std::unique_ptr<NcclChannels>> NcclChannels::Create(ncclComm_t world, int32_t rank, int gpu,
                                                           std::span<const Channel> channels,
                                                           Clock::time_point deadline) {
  std::unique_ptr<NcclChannels> out(new NcclChannels(rank, gpu));
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu));
  const std::string me = "rank " + std::to_string(rank);
  for (const Channel& c : channels) {
    const bool in = rank == c.from || rank == c.to;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t sub = nullptr;
    const std::string what = me + " creating " + ChannelText(c);
    PIPECAST_RETURN_IF_ERROR(NcclStarted(
        ncclCommSplit(world, in ? 0 : NCCL_SPLIT_NOCOLOR, rank == c.from ? 0 : 1, &sub, &config),
        what, world));
    PIPECAST_RETURN_IF_ERROR(AwaitNccl(world, deadline, what));
    if (sub == nullptr) continue;
    Mine m{c, sub, nullptr};
    out->mine_.push_back(m);  // owned from here on, so that an error below releases it
    PIPECAST_RETURN_IF_ERROR(AwaitNccl(sub, deadline, what));
    PIPECAST_CUDA_RETURN_IF_ERROR(
        cudaStreamCreateWithFlags(&out->mine_.back().stream, cudaStreamNonBlocking));
  }
  // Connect every channel now, in the shared order (both ranks of the earliest unconnected
  // channel are at it), so that a first transfer never waits inside NCCL for its peer's.
  float* probe = nullptr;
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaMalloc(&probe, 2 * sizeof(float)));
  Status s;
  for (int32_t i = 0; i < out->size() && s.ok(); ++i) {
    const Channel& c = out->channel(i);
    const std::string what = me + " connecting " + ChannelText(c);
    const int32_t peer = out->peer_rank(i);
    s = out->Enqueue(
        i,
        [&](ncclComm_t comm, cudaStream_t stream) {
          ncclResult_t r = ncclSuccess;
          if (c.from == rank) r = ncclSend(probe, 1, ncclFloat, peer, comm, stream);
          if (r == ncclSuccess && c.to == rank)
            r = ncclRecv(probe + 1, 1, ncclFloat, peer, comm, stream);
          return r;
        },
        deadline, [&] { return what; });
    if (s.ok()) s = AwaitStream(out->stream(i), out->mine_[i].comm, deadline, what);
  }
  (void)cudaFree(probe);
  if (!s.ok()) return s;
  return out;
}

NcclChannels::~NcclChannels() {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (Mine& m : mine_) {
    if (m.comm != nullptr) {
      const bool clean = NcclStarted(ncclCommFinalize(m.comm), "finalising a channel").ok() &&
                         AwaitNccl(m.comm, deadline, "finalising a channel").ok();
      (void)(clean ? ncclCommDestroy(m.comm) : ncclCommAbort(m.comm));
    }
    if (m.stream != nullptr) (void)cudaStreamDestroy(m.stream);
  }
}

int32_t NcclChannels::Find(const Channel& c) const {
  for (int32_t i = 0; i < size(); ++i)
    if (mine_[i].channel == c) return i;
  return -1;
}

int32_t NcclChannels::peer_rank(int32_t i) const {
  const Channel& c = mine_[i].channel;
  if (c.from == c.to) return 0;
  return rank_ == c.from ? 1 : 0;
}

Status NcclChannels::Enqueue(int32_t i,
                             const std::function<ncclResult_t(ncclComm_t, cudaStream_t)>& ops,
                             Clock::time_point deadline, const std::function<std::string()>& what) {
  std::lock_guard<std::mutex> lock(mu_);
  Mine& m = mine_[i];
  if (aborted_.load() || m.comm == nullptr)
    return Cancelled(what() + ": the NCCL channels were aborted");
  const ncclResult_t start = ncclGroupStart();
  if (start != ncclSuccess && start != ncclInProgress) return NcclStatus(start, what(), m.comm);
  const ncclResult_t r = ops(m.comm, m.stream);
  const ncclResult_t end = ncclGroupEnd();
  if (r != ncclSuccess && r != ncclInProgress) return NcclStatus(r, what(), m.comm);
  if (end != ncclSuccess && end != ncclInProgress) return NcclStatus(end, what(), m.comm);
  return AwaitNccl(m.comm, deadline, what, &aborted_);
}

Status NcclChannels::AsyncError() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Mine& m : mine_) {
    if (m.comm == nullptr) continue;
    ncclResult_t state = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(m.comm, &state);
    if (rc != ncclSuccess) state = rc;
    if (state != ncclSuccess && state != ncclInProgress) {
      return NcclStatus(state, "rank " + std::to_string(rank_) + ", " + ChannelText(m.channel),
                        m.comm);
    }
  }
  return Status::Ok();
}

void NcclChannels::Abort() {
  if (aborted_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(mu_);  // an Enqueue in progress sees aborted_ and returns
  for (Mine& m : mine_) {
    if (m.comm != nullptr) (void)ncclCommAbort(m.comm);
    m.comm = nullptr;
  }
}

}  // namespace pipecast::runtime::cuda
