// GreenContext (green_context.h) over driver entry points fetched at run time.
#include "runtime/cuda/green_context.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <string>

#include "runtime/cuda/cuda_status.h"

namespace pipecast::runtime::cuda {

struct GreenContext::Driver {
  PFN_cuDeviceGetDevResource_v12040 get_resource = nullptr;
  PFN_cuDevSmResourceSplitByCount_v12040 split = nullptr;
  PFN_cuDevResourceGenerateDesc_v12040 describe = nullptr;
  PFN_cuGreenCtxCreate_v12040 create = nullptr;
  PFN_cuGreenCtxDestroy_v12040 destroy = nullptr;
  PFN_cuGreenCtxStreamCreate_v12050 stream = nullptr;
  PFN_cuStreamDestroy_v4000 stream_destroy = nullptr;
};

namespace {

template <typename F>
Status Fetch(const char* symbol, unsigned int version, F* out) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t e =
      cudaGetDriverEntryPointByVersion(symbol, &fn, version, cudaEnableDefault, &found);
  if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || fn == nullptr) {
    (void)cudaGetLastError();
    return DeviceError(std::string("the CUDA driver has no ") + symbol +
                       ": green contexts need a driver of CUDA 12.4 or later; run without "
                       "SM partitioning");
  }
  *out = reinterpret_cast<F>(fn);
  return Status::Ok();
}

Status DriverStatus(CUresult r, const char* what) {
  if (r == CUDA_SUCCESS) return Status::Ok();
  return DeviceError(std::string(what) + " failed with CUresult " + std::to_string(r));
}

Result<std::shared_ptr<const GreenContext::Driver>> LoadDriver() {
  auto d = std::make_shared<GreenContext::Driver>();
  PIPECAST_RETURN_IF_ERROR(Fetch("cuDeviceGetDevResource", 12040, &d->get_resource));
  PIPECAST_RETURN_IF_ERROR(Fetch("cuDevSmResourceSplitByCount", 12040, &d->split));
  PIPECAST_RETURN_IF_ERROR(Fetch("cuDevResourceGenerateDesc", 12040, &d->describe));
  PIPECAST_RETURN_IF_ERROR(Fetch("cuGreenCtxCreate", 12040, &d->create));
  PIPECAST_RETURN_IF_ERROR(Fetch("cuGreenCtxDestroy", 12040, &d->destroy));
  PIPECAST_RETURN_IF_ERROR(Fetch("cuGreenCtxStreamCreate", 12050, &d->stream));
  PIPECAST_RETURN_IF_ERROR(Fetch("cuStreamDestroy", 4000, &d->stream_destroy));
  return std::shared_ptr<const GreenContext::Driver>(std::move(d));
}

}  // namespace

Result<SmSplit> PlanSmSplit(int32_t total_sms, int32_t granularity, int32_t parts) {
  if (parts < 1 || granularity < 1 || total_sms < 1)
    return InvalidArgument("an SM split needs positive counts");
  const int32_t groups = total_sms / granularity;
  if (groups < parts) {
    return InvalidArgument("the GPU's " + std::to_string(total_sms) + " SMs hold at most " +
                           std::to_string(groups) + " partitions of " +
                           std::to_string(granularity) + " SMs, not " + std::to_string(parts) +
                           ": put fewer stages on one GPU or turn SM partitioning off");
  }
  SmSplit s;
  s.per_part = groups / parts * granularity;
  s.left = total_sms - s.per_part * parts;
  return s;
}

Result<std::vector<std::shared_ptr<GreenContext>>> GreenContext::Split(int gpu, int32_t parts) {
  auto driver = LoadDriver();
  if (!driver.ok()) return driver.status();
  const Driver& d = **driver;
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu));
  PIPECAST_CUDA_RETURN_IF_ERROR(cudaFree(nullptr));  // the primary context, made once
  CUdevResource all{};
  PIPECAST_RETURN_IF_ERROR(
      DriverStatus(d.get_resource(static_cast<CUdevice>(gpu), &all, CU_DEV_RESOURCE_TYPE_SM),
                   "cuDeviceGetDevResource"));
  const int32_t granularity =
      static_cast<int32_t>(std::max(all.sm.minSmPartitionSize, all.sm.smCoscheduledAlignment));
  auto plan = PlanSmSplit(static_cast<int32_t>(all.sm.smCount), granularity, parts);
  if (!plan.ok()) return plan.status();
  std::vector<CUdevResource> groups(static_cast<size_t>(parts));
  unsigned int made = static_cast<unsigned int>(parts);
  CUdevResource rest{};
  PIPECAST_RETURN_IF_ERROR(DriverStatus(
      d.split(groups.data(), &made, &all, &rest, 0, static_cast<unsigned int>(plan->per_part)),
      "cuDevSmResourceSplitByCount"));
  if (made < static_cast<unsigned int>(parts)) {
    return DeviceError("the driver cut only " + std::to_string(made) + " SM groups of " +
                       std::to_string(plan->per_part) + " for " + std::to_string(parts) +
                       " stages");
  }
  std::vector<std::shared_ptr<GreenContext>> out;
  for (CUdevResource& g : groups) {
    CUdevResourceDesc desc{};
    PIPECAST_RETURN_IF_ERROR(DriverStatus(d.describe(&desc, &g, 1), "cuDevResourceGenerateDesc"));
    CUgreenCtx ctx{};
    PIPECAST_RETURN_IF_ERROR(
        DriverStatus(d.create(&ctx, desc, static_cast<CUdevice>(gpu), CU_GREEN_CTX_DEFAULT_STREAM),
                     "cuGreenCtxCreate"));
    out.push_back(std::shared_ptr<GreenContext>(
        new GreenContext(*driver, ctx, static_cast<int32_t>(g.sm.smCount))));
  }
  return out;
}

GreenContext::GreenContext(std::shared_ptr<const Driver> driver, void* context, int32_t sm_count)
    : driver_(std::move(driver)), context_(context), sm_count_(sm_count) {}

GreenContext::~GreenContext() {
  for (cudaStream_t s : streams_) (void)driver_->stream_destroy(reinterpret_cast<CUstream>(s));
  (void)driver_->destroy(static_cast<CUgreenCtx>(context_));
}

Result<cudaStream_t> GreenContext::CreateStream() {
  CUstream s{};
  PIPECAST_RETURN_IF_ERROR(DriverStatus(
      driver_->stream(&s, static_cast<CUgreenCtx>(context_), CU_STREAM_NON_BLOCKING, 0),
      "cuGreenCtxStreamCreate"));
  std::lock_guard<std::mutex> lock(mu_);
  streams_.push_back(reinterpret_cast<cudaStream_t>(s));
  return reinterpret_cast<cudaStream_t>(s);
}

void GreenContext::DestroyStream(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = std::find(streams_.begin(), streams_.end(), stream);
  PIPECAST_CHECK(it != streams_.end()) << "a stream this green context did not create";
  streams_.erase(it);
  (void)driver_->stream_destroy(reinterpret_cast<CUstream>(stream));
}

}  // namespace pipecast::runtime::cuda
