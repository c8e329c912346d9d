// CudaProcesses (cuda_processes.h).
#include "runtime/cuda/cuda_processes.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/generators.h"
#include "common/lower.h"
#include "common/validate.h"
#include "common/version_plan.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_run.h"
#include "runtime/cuda/nccl_transport.h"
#include "runtime/cuda/transport_order.h"
#include "runtime/session.h"

namespace pipecast::runtime::cuda {
namespace {

constexpr size_t kPiece = size_t{1} << 20;  // the store's largest value
constexpr int32_t kRecorderDepth = 64;

}  // namespace

CudaProcesses::CudaProcesses(LaunchEnv env, int gpu, NcclComm world,
                             std::unique_ptr<TcpStore> store)
    : env_(std::move(env)),
      gpu_(gpu),
      world_(std::move(world)),
      store_(std::move(store)),
      recorder_(env_.world_size, kRecorderDepth) {}

CudaProcesses::~CudaProcesses() = default;

Result<std::shared_ptr<CudaProcesses>> CudaProcesses::Create(const LaunchEnv& env,
                                                             const UniqueIdExchange& exchange,
                                                             std::unique_ptr<TcpStore> store,
                                                             Clock::time_point deadline) {
  const int visible = VisibleGpus();
  if (visible == 0) {
    return DeviceError("rank " + std::to_string(env.rank) +
                       ": no CUDA device was found (device: cuda needs an NVIDIA GPU per rank)");
  }
  auto gpu = ChooseGpu(env, visible);
  if (!gpu.ok()) return gpu.status();
  auto world = CreateCommunicator(env.rank, env.world_size, *gpu, exchange, deadline);
  if (!world.ok()) return world.status();
  return std::shared_ptr<CudaProcesses>(
      new CudaProcesses(env, *gpu, std::move(*world), std::move(store)));
}

Result<ir::Program> ChannelProgram(const ir::Job& job, const ir::MethodSpec& method) {
  const ir::PipelineSpec& pipe = job.pipeline;
  std::map<std::string, std::string> params = method.params;
  // The phase at which the first minibatch ends a period (as a segment starting there has it).
  if (method.name == "avgpipe") params["phase"] = std::to_string(AveragingPeriod(method) - 1);
  auto generated = ir::Generate({method.name, pipe.stages, pipe.microbatches, 2,
                                 pipe.microbatch_size, params, pipe.data_parallel});
  if (!generated.ok()) return generated.status();
  ir::Program program = ir::InsertCommunication(*generated);
  PIPECAST_RETURN_IF_ERROR(ir::ValidationStatus(ir::ValidateProgram(program),
                                                method.name + " generated an invalid program"));
  return program;
}

Status CudaProcesses::PrepareMethod(const ir::Job& job, const ir::MethodSpec& method,
                                    TrainOptions& train) {
  auto checked = ChannelProgram(job, method);
  if (!checked.ok()) return checked.status();
  const ir::Program& program = *checked;
  if (program.num_devices != env_.world_size) {
    return InvalidArgument(method.name + " runs on " + std::to_string(program.num_devices) +
                           " devices but " + std::to_string(env_.world_size) +
                           " ranks were started: start one rank per device");
  }
  const ir::VersionPlan plan = ir::BuildVersionPlan(program, ir::PlanDetail::kExecution);
  PIPECAST_RETURN_IF_ERROR(CheckProgramOrder(program, plan, TransferStreams::kPerChannel));
  const std::vector<Channel> channels = ChannelsOf(program, plan);
  channels_.reset();  // the previous method's, once its transports are gone
  auto made = NcclChannels::Create(world_.get(), env_.rank, gpu_, channels,
                                   Clock::now() + kProcessSetUpDeadline);
  if (!made.ok()) return made.status();
  channels_ = std::move(*made);
  local_ = nullptr;
  train.local_devices = {env_.rank};
  const int gpu = gpu_;
  CudaProcesses* self = this;
  const bool bf16 = job.bf16;
  train.make_device = [self, gpu, bf16](
                          int32_t device, int32_t,
                          std::vector<DeviceStages> stages) -> Result<std::unique_ptr<Device>> {
    CudaDeviceOptions options;
    options.bf16 = bf16;
    options.gpu = gpu;
    auto dev = MakeCudaDevice(device, std::move(stages), options);
    if (!dev.ok()) return dev.status();
    self->local_ = dev->get();
    return std::move(*dev);
  };
  train.make_transport = [self](int32_t, const MessageSpace& space) {
    PIPECAST_CHECK(self->local_ != nullptr) << "a transport before the rank's device";
    return std::unique_ptr<Transport>(
        new NcclTransport(*self->channels_, space, *self->local_, &self->recorder_));
  };
  return Status::Ok();
}

// Rank `root` sets pieces share/<n>/<k> of at most 1 MiB; the others get them; after a barrier
// (every rank has its copy) rank 0 deletes them, so the store holds one share at a time (keys
// are never reused: n counts the shares).
Status CudaProcesses::Share(int root, std::span<char> bytes) {
  PIPECAST_CHECK(store_ != nullptr) << "values shared without a store";
  const int64_t n = shares_++;
  const Clock::time_point deadline = Clock::now() + kProcessSetUpDeadline;
  for (size_t at = 0, k = 0; at < bytes.size() || (k == 0 && bytes.empty()); at += kPiece, ++k) {
    const size_t len = std::min(kPiece, bytes.size() - at);
    const std::string key = "share/" + std::to_string(n) + "/" + std::to_string(k);
    if (env_.rank == root) {
      PIPECAST_RETURN_IF_ERROR(store_->Set(key, std::string_view(bytes.data() + at, len)));
    } else {
      auto v = store_->Get(key, deadline);
      if (!v.ok()) return v.status();
      if (v->size() != len) {
        return InvalidArgument("rank " + std::to_string(root) + " shared " +
                               std::to_string(v->size()) + " bytes for piece " + key +
                               ", expected " + std::to_string(len));
      }
      std::memcpy(bytes.data() + at, v->data(), len);
    }
    if (bytes.empty()) break;
  }
  PIPECAST_RETURN_IF_ERROR(store_->Barrier("share/" + std::to_string(n), deadline));
  // Every rank has its copy: the store forgets the pieces.
  if (env_.rank == root) {
    const size_t pieces = bytes.empty() ? 1 : (bytes.size() + kPiece - 1) / kPiece;
    for (size_t k = 0; k < pieces; ++k)
      PIPECAST_RETURN_IF_ERROR(
          store_->Delete("share/" + std::to_string(n) + "/" + std::to_string(k)));
  }
  return Status::Ok();
}

Status CudaProcesses::ShareDoubles(int root, std::span<double> values) {
  return Share(root, {reinterpret_cast<char*>(values.data()), values.size_bytes()});
}

Status CudaProcesses::ShareFloats(int root, std::span<float> values) {
  return Share(root, {reinterpret_cast<char*>(values.data()), values.size_bytes()});
}

}  // namespace pipecast::runtime::cuda
