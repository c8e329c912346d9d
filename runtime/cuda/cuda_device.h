// CudaDevice: the Device of device.h on one NVIDIA GPU, over GpuStage (the layers' kernels and
// cuBLASLt GEMMs) and CudaOptimizer (the fused optimizer kernels), with the CPU device's
// semantics operation for operation (runtime/cpu/cpu_device.h), so that the executor drives
// both alike and their results can be compared.
//
// Lanes are streams (compute, send, receive) and events are CUDA events from a ring per lane
// created with the device (Create). Per stage the device holds, in device memory, the current
// weights, the gradient, the optimizer state (allocated by Create), PipeMare's velocity and
// AvgPipe's reference weights (allocated when a program first needs them), and, in one pool planned
// and allocated by Prepare (pool_plan.h; 256-byte aligned, reused while it is large enough), the
// plan's copy slots, the activation records, the reduction buffers, the evaluation buffers, the
// prediction-tracking copies, the labels, the losses and the non-finite flags. Nothing is allocated
// while a program runs, and nothing synchronises the device before Synchronize: a non-finite
// gradient sets a flag that Synchronize reads, naming the first bad step or loss in issue order;
// losses are read back once per program (by Synchronize, for ReadLosses). Host inputs and labels
// are staged through a ring of pinned buffers whose reuse waits on the copy that read them.
//
// Several CudaDevices may share one GPU (one thread each, the stages of one pipeline); with
// CudaDeviceOptions::green they run on green contexts holding disjoint sets of SMs
// (green_context.h), so that a single GPU shows the pipeline's bubbles. Thread-safety: one
// thread at a time drives a device (each operation makes the device's GPU current first).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/optimizer.h"
#include "models/stage.h"
#include "runtime/cuda/cuda_lanes.h"
#include "runtime/device.h"

namespace pipecast::runtime::cuda {

class GreenContext;

// One virtual stage a CudaDevice runs.
struct CudaStageSpec {
  int32_t stage = 0;
  models::Stage<float> layers;
  models::OptimizerConfig optimizer;
};

struct CudaDeviceOptions {
  int gpu = 0;                     // the CUDA device ordinal
  int64_t memory_limit_bytes = 0;  // what Prepare may plan (0: the GPU's free memory then)
  // Run the device's streams on a green context of these SMs (null: the whole GPU).
  std::shared_ptr<GreenContext> green;
  // The GEMMs' inputs rounded to bfloat16, fp32 accumulation (Gemm::UseBfloat16Inputs; job key
  // precision: bf16); weights, gradients, optimizer state and every other kernel stay fp32.
  bool bf16 = false;
};

// The number of CUDA devices this process sees; 0 without a GPU or a driver (never an error).
int VisibleGpus();

class CudaDevice final : public Device, public CudaLanes {
 public:
  // Errors: no such GPU (kDeviceError naming the ordinal and how many exist), a stage with a
  // layer the device does not implement, an optimizer configuration Optimizer::Create rejects,
  // out of memory for the weights and optimizer state (naming the stage and the bytes).
  static Result<std::unique_ptr<CudaDevice>> Create(std::vector<CudaStageSpec> stages,
                                                    std::string name,
                                                    const CudaDeviceOptions& options);
  ~CudaDevice() override;

  // CudaLanes
  int gpu() const override { return gpu_; }
  cudaStream_t stream(Lane lane) override { return streams_[static_cast<int>(lane)]; }
  cudaEvent_t event(Event event) override;
  void NoteTransportFailure(const Status& failure) override;

  // Device
  std::string name() const override { return name_; }
  PIPECAST_DEVICE_OVERRIDES;
  std::span<const ServedWeights> Served() override { return served_; }

  struct StageData;  // cuda_stage.h
  struct Impl;       // cuda_device.cc: streams' GEMMs, pool, staging, flags

 private:
  CudaDevice(std::string name, int gpu);
  // Makes this device's GPU the calling thread's current one (the executor drives each device
  // from a thread of its own and the evaluator drives every device from one, and a kernel
  // launch or a cuBLASLt call on a stream of another GPU than the current one fails), then
  // launches a deferred optimizer step. Every operation starts with it.
  void Bind();
  void MakeCurrent() const;
  // Step defers its update by one operation: when that operation is the prediction of the same
  // stage (Apply with kPredict), the step and the prediction run as one fused kernel (one pass
  // over W and the optimizer state, cuda_optimizer.h); any other operation that enqueues work
  // or records an event launches the step first (Bind), so Record's event covers it. The views
  // Buffer, Gradient, Weights, Reference, ReduceBuffer and EvalBuffer hand out launch nothing:
  // a transport reads them after a Record, and what it receives into (records, reduction
  // buffers; the gradient and W~ only after a Record of the copy's own send) the step does not
  // touch. `predicted` null: the step alone.
  void LaunchPendingStep(float* predicted, double predict_lr, int32_t horizon);
  Status CreateStreams(const CudaDeviceOptions& options);
  Status AddStage(CudaStageSpec spec);
  StageData& At(int32_t stage);
  const float* WeightsOf(StageData& s, int32_t slot);
  void Serve(const ir::Action& action, const StageData& s, int32_t slot);
  // Copies host values to device memory on the compute stream through the pinned ring.
  void Upload(void* device, const void* host, size_t bytes);
  Status PlanPool(const DeviceSetup& setup);
  // Bytes the next program's pool and new persistent buffers may take (PlanPool).
  Result<int64_t> Available() const;
  void ResetProgramState(const DeviceSetup& setup);
  Status CheckFlags();
  Status TransportFailure();  // NoteTransportFailure's, or ok

  std::string name_;
  int gpu_ = 0;
  bool bf16_ = false;
  cudaStream_t streams_[3] = {nullptr, nullptr, nullptr};
  std::vector<std::unique_ptr<StageData>> stages_;
  std::vector<int32_t> index_;  // program stage -> position in stages_, or -1
  std::unique_ptr<Impl> impl_;
  std::string method_;
  int32_t device_ = 0;
  std::vector<ServedWeights> served_;
};

}  // namespace pipecast::runtime::cuda
