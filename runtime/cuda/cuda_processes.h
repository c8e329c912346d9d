// Multi-process CUDA runs: one pipeline device per process and one GPU per process (the GPU of
// its local rank), messages over NCCL, started by mpirun (`pipecast run --mpi`) or by torchrun
// or Slurm (their variables, runtime/launch_env.h; the ranks meet at a TCP store).
//
// CudaProcesses holds what outlives one method: the world communicator, the TCP store (torchrun,
// Slurm) and the flight recorder. PrepareMethod is collective (every rank calls it for the same
// method, in the same order, as `pipecast run` does): it generates the method's program
// (ChannelProgram), checks that NCCL's rendezvous cannot deadlock it (transport_order.h),
// connects one NCCL channel per (sender, receiver, class of message) it uses, and sets the
// TrainOptions' device and transport factories. Values every rank needs (losses, final weights)
// travel through the store in 1 MiB pieces; under mpirun the caller keeps MPI's broadcasts instead.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "common/job.h"
#include "common/status.h"
#include "runtime/cuda/nccl_bootstrap.h"
#include "runtime/flight_recorder.h"
#include "runtime/launch_env.h"
#include "runtime/tcp_store.h"
#include "runtime/trainer.h"

namespace pipecast::runtime::cuda {

class NcclChannels;
class CudaDevice;

class CudaProcesses {
 public:
  // This rank's GPU (ChooseGpu) and the world communicator, the id exchanged through
  // `exchange`; `store` (may be null under mpirun) carries the shared values. Errors: no GPU,
  // a local rank without a GPU of its own, NCCL's, the deadline.
  static Result<std::shared_ptr<CudaProcesses>> Create(const LaunchEnv& env,
                                                       const UniqueIdExchange& exchange,
                                                       std::unique_ptr<TcpStore> store,
                                                       Clock::time_point deadline);
  ~CudaProcesses();

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int gpu() const { return gpu_; }

  // Collective. Sets train.make_device, make_transport and local_devices for `method`.
  // Errors: a method whose devices differ from the world size, a program NCCL would deadlock,
  // the channels' connection.
  Status PrepareMethod(const ir::Job& job, const ir::MethodSpec& method, TrainOptions& train);

  // `values` of rank `root` on every rank, through the store (REQUIRES: a store).
  Status ShareDoubles(int root, std::span<double> values);
  Status ShareFloats(int root, std::span<float> values);

 private:
  CudaProcesses(LaunchEnv env, int gpu, NcclComm world, std::unique_ptr<TcpStore> store);
  Status Share(int root, std::span<char> bytes);

  LaunchEnv env_;
  int gpu_;
  NcclComm world_;
  std::unique_ptr<TcpStore> store_;
  FlightRecorder recorder_;
  std::unique_ptr<NcclChannels> channels_;
  Device* local_ = nullptr;  // the method's device, built by the session through make_device
  int64_t shares_ = 0;
};

// The program whose channels PrepareMethod connects and whose order it checks: every program
// the method's segments run must use no other channel. Two minibatches (the order across a
// step); for AvgPipe, starting at the phase where the first minibatch ends a period (a program
// that ends no period has no averaging, and then no channel for the averaging's messages).
// Host code.
Result<ir::Program> ChannelProgram(const ir::Job& job, const ir::MethodSpec& method);

// How long setting up (connecting, exchanging the id, splitting channels) may take.
inline constexpr std::chrono::seconds kProcessSetUpDeadline{120};

}  // namespace pipecast::runtime::cuda
