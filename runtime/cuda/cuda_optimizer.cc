// CudaOptimizer: the state in one device allocation, laid out as models::Optimizer's state
// tensors (same names, same order), and one fused kernel launch per step or prediction
// (optimizer_kernels.h); the coefficients and the choice of op are optimizer_dispatch.h's.
#include "runtime/cuda/cuda_optimizer.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/check.h"
#include "models/optimizer_math.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/launch_check.h"
#include "runtime/cuda/optimizer_kernels.h"

namespace pipecast::runtime::cuda {

struct CudaOptimizer::Impl {
  models::OptimizerConfig config;
  int64_t steps = 0;
  // A host optimizer of no parameters: the configuration's validation, state names and rules,
  // exactly models::Optimizer's.
  std::unique_ptr<models::Optimizer> shape;
  StateLayout state;  // base: one device allocation of every tensor

  ~Impl() {
    if (state.base != nullptr) cudaFree(state.base);
  }
  int64_t n() const { return state.n; }
  int64_t bytes() const { return state.floats() * static_cast<int64_t>(sizeof(float)); }
};

namespace {

bool Overlap(const float* a, const float* b, int64_t n) { return a < b + n && b < a + n; }

}  // namespace

CudaOptimizer::CudaOptimizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaOptimizer::~CudaOptimizer() = default;

Result<std::unique_ptr<CudaOptimizer>> CudaOptimizer::Create(const models::OptimizerConfig& config,
                                                             int64_t num_params) {
  if (num_params < 0) {
    return InvalidArgument("CudaOptimizer: negative parameter count " + std::to_string(num_params));
  }
  Result<std::unique_ptr<models::Optimizer>> shape = models::Optimizer::Create(config, 0);
  if (!shape.ok()) return shape.status();
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->shape = std::move(shape).value();
  impl->state.n = num_params;
  impl->state.stride = StateLayout::StrideFor(num_params);
  for (const models::StateTensor& t : impl->shape->StateTensors()) {
    impl->state.names.push_back(t.first);
  }
  if (impl->bytes() > 0) {
    void* p = nullptr;
    PIPECAST_RETURN_IF_ERROR(CudaStatus(
        cudaMalloc(&p, static_cast<size_t>(impl->bytes())),
        "optimizer " + std::string(models::OptimizerKindName(config.kind)) + " state of " +
            std::to_string(impl->bytes()) + " bytes (" + std::to_string(impl->state.names.size()) +
            " tensors of " + std::to_string(num_params) + " floats)"));
    impl->state.base = static_cast<float*>(p);
    PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemset(p, 0, static_cast<size_t>(impl->bytes())));
    // Programs run on streams that need not wait for the legacy stream.
    PIPECAST_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  }
  return std::unique_ptr<CudaOptimizer>(new CudaOptimizer(std::move(impl)));
}

const models::OptimizerConfig& CudaOptimizer::config() const { return impl_->config; }
int64_t CudaOptimizer::num_params() const { return impl_->n(); }
int64_t CudaOptimizer::steps() const { return impl_->steps; }
int64_t CudaOptimizer::state_bytes() const { return impl_->bytes(); }
Status CudaOptimizer::SupportsRule(models::DeltaRule rule) const {
  return impl_->shape->SupportsRule(rule);
}

void CudaOptimizer::Step(float* params, const float* grad, double lr, cudaStream_t stream,
                         const StepExtras& extras) {
  PIPECAST_CHECK(lr >= 0) << "lr " << lr;
  const Impl& o = *impl_;
  const int64_t t = ++impl_->steps;
  if (extras.predicted != nullptr) {
    PIPECAST_CHECK(SupportsRule(extras.rule).ok()) << SupportsRule(extras.rule).message();
    PIPECAST_CHECK(!Overlap(extras.predicted, params, o.n())) << "the prediction is out of place";
  }
  if (o.n() == 0) return;
  LaunchStep(o.config, o.state, t, params, grad, lr, MakeFusedExtras(extras, t), stream);
}

void CudaOptimizer::Predict(const float* params, double lr, int32_t s, models::DeltaRule rule,
                            float* out, cudaStream_t stream) const {
  const Impl& o = *impl_;
  PIPECAST_CHECK(SupportsRule(rule).ok()) << SupportsRule(rule).message();
  PIPECAST_CHECK(!Overlap(out, params, o.n())) << "Predict is out of place";
  if (o.n() == 0) return;
  const models::PredictCoefficients p = models::PredictCoefficientsFor(lr, s, o.steps);
  if (p.copy) {
    CheckEnqueued(cudaMemcpyAsync(out, params, static_cast<size_t>(o.n()) * sizeof(float),
                                  cudaMemcpyDeviceToDevice, stream),
                  "optimizer prediction (a copy)");
    return;
  }
  LaunchPredict(o.config, o.state, o.steps, params, p, rule, out, stream);
}

Result<std::vector<models::StateTensor>> CudaOptimizer::StateTensors() const {
  const Impl& o = *impl_;
  std::vector<models::StateTensor> out;
  if (o.bytes() > 0) PIPECAST_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  for (const std::string& name : o.state.names) {
    std::vector<float> values(static_cast<size_t>(o.n()));
    if (!values.empty()) {
      PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemcpy(values.data(), o.state.Tensor(name),
                                               values.size() * sizeof(float),
                                               cudaMemcpyDeviceToHost));
    }
    out.emplace_back(name, std::move(values));
  }
  return out;
}

Status CudaOptimizer::LoadState(int64_t steps, const std::vector<models::StateTensor>& tensors) {
  Impl& o = *impl_;
  const std::string who =
      "optimizer " + std::string(models::OptimizerKindName(o.config.kind)) + ": ";
  if (steps < 0) return InvalidArgument(who + "negative step count " + std::to_string(steps));
  if (tensors.size() != o.state.names.size()) {
    return InvalidArgument(who + "expected " + std::to_string(o.state.names.size()) +
                           " state tensors, got " + std::to_string(tensors.size()));
  }
  // Names as models::Optimizer::LoadState checks them (its own check, on the empty optimizer).
  std::vector<models::StateTensor> names_only;
  for (const models::StateTensor& t : tensors) {
    if (static_cast<int64_t>(t.second.size()) != o.n()) {
      return InvalidArgument(who + "state tensor '" + t.first + "' has " +
                             std::to_string(t.second.size()) + " values, expected " +
                             std::to_string(o.n()));
    }
    names_only.emplace_back(t.first, std::vector<float>());
  }
  PIPECAST_RETURN_IF_ERROR(o.shape->LoadState(steps, names_only));
  if (o.bytes() > 0) PIPECAST_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  for (const models::StateTensor& t : tensors) {
    if (t.second.empty()) break;
    PIPECAST_CUDA_RETURN_IF_ERROR(cudaMemcpy(o.state.Tensor(t.first), t.second.data(),
                                             t.second.size() * sizeof(float),
                                             cudaMemcpyHostToDevice));
  }
  // A pageable copy can return before its transfer ends; kernels on other streams follow.
  if (o.bytes() > 0) PIPECAST_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  o.steps = steps;
  return Status::Ok();
}

}  // namespace pipecast::runtime::cuda
