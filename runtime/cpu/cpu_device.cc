// CpuDevice: construction, sizing (Prepare), weights, results and state. The operations are in
// cpu_device_ops.cc.
#include "runtime/cpu/cpu_device.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "runtime/cpu/cpu_stage.h"

namespace pipecast::runtime {
namespace {

int64_t PhysicalMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : int64_t{1} << 40;
}

std::string Gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  return buf;
}

}  // namespace

CpuDevice::CpuDevice(std::string name, int64_t memory_limit_bytes)
    : name_(std::move(name)),
      memory_limit_(memory_limit_bytes > 0 ? memory_limit_bytes : PhysicalMemory()) {}

CpuDevice::~CpuDevice() = default;

Result<std::unique_ptr<CpuDevice>> CpuDevice::Create(std::vector<CpuStageSpec> stages,
                                                     std::string name, int64_t memory_limit_bytes) {
  std::unique_ptr<CpuDevice> dev(new CpuDevice(std::move(name), memory_limit_bytes));
  for (CpuStageSpec& spec : stages) {
    auto opt =
        models::Optimizer::Create(spec.optimizer, static_cast<size_t>(spec.layers.num_params()));
    if (!opt.ok()) return opt.status();
    auto s = std::make_unique<StageData>(spec.stage, std::move(spec.layers), std::move(*opt));
    if (static_cast<int32_t>(dev->index_.size()) <= spec.stage)
      dev->index_.resize(spec.stage + 1, -1);
    PIPECAST_CHECK(dev->index_[spec.stage] < 0) << "stage " << spec.stage << " given twice";
    dev->index_[spec.stage] = static_cast<int32_t>(dev->stages_.size());
    dev->stages_.push_back(std::move(s));
  }
  return dev;
}

CpuDevice::StageData& CpuDevice::At(int32_t stage) {
  PIPECAST_CHECK(stage >= 0 && stage < static_cast<int32_t>(index_.size()) && index_[stage] >= 0)
      << name_ << " does not run stage " << stage;
  return *stages_[index_[stage]];
}

const CpuDevice::StageData& CpuDevice::At(int32_t stage) const {
  return const_cast<CpuDevice*>(this)->At(stage);
}

models::EffectiveRule CpuDevice::rule(int32_t stage) const { return At(stage).rule; }

Status CpuDevice::Prepare(const DeviceSetup& setup) {
  const ir::Program& p = *setup.program;
  const ir::VersionPlan& plan = *setup.plan;
  method_ = p.method;
  device_ = setup.device;
  int64_t bytes = 0, scratch = 0;
  for (auto& sp : stages_) {
    StageData& s = *sp;
    PIPECAST_CHECK(s.stage < p.num_stages && p.holds(setup.device, s.stage))
        << name_ << ": stage " << s.stage << " is not on device " << setup.device;
    s.rule = models::EffectiveDeltaRule(p.options.delta, s.optimizer->config().kind);
    PIPECAST_RETURN_IF_ERROR(s.optimizer->SupportsRule(s.rule.rule));
    const ir::StageBuffers& b = plan.buffers[s.stage];
    const int64_t need = s.Size(b, setup);
    if (bytes + need > memory_limit_) {
      return DeviceError(name_ + ": stage " + std::to_string(s.stage) + " needs " + Gib(need) +
                         " for the plan's " + std::to_string(b.weight_copies) +
                         " weight copies and " + std::to_string(b.records) +
                         " activation records, beyond the device's " + Gib(memory_limit_) + " (" +
                         Gib(bytes) + " already planned for other stages)");
    }
    bytes += need;
    scratch = std::max(scratch, s.Scratch(setup));
  }
  for (auto& sp : stages_) {
    StageData& s = *sp;
    const ir::StageBuffers& b = plan.buffers[s.stage];
    s.Allocate(b, setup, static_cast<float>(VelocityDecay(setup, s.stage)));
  }
  scratch_.assign(static_cast<size_t>(scratch), 0.0f);
  losses_.assign(p.total_microbatches(), 0.0);
  has_loss_.assign(p.total_microbatches(), 0);
  correct_ = 0;
  size_t uses = 0;
  for (const ir::Action& a : p.devices[setup.device]) uses += ir::UsesWeights(a.kind) ? 1 : 0;
  served_.clear();
  served_.reserve(uses);
  bad_ = false;
  eval_loss_ = 0;
  eval_correct_ = eval_rows_done_ = 0;
  return Status::Ok();
}

void CpuDevice::SetWeights(int32_t stage, std::span<const float> weights) {
  StageData& s = At(stage);
  PIPECAST_CHECK(weights.size() == s.weights.size())
      << "stage " << stage << ": " << weights.size() << " weights for " << s.weights.size();
  std::copy(weights.begin(), weights.end(), s.weights.begin());
  s.reference.clear();  // the next program that averages the stage starts W~ from these weights
}

void CpuDevice::ReadWeights(int32_t stage, std::span<float> out) {
  const StageData& s = At(stage);
  PIPECAST_CHECK(out.size() == s.weights.size());
  std::copy(s.weights.begin(), s.weights.end(), out.begin());
}

Status CpuDevice::Synchronize(Clock::time_point /*deadline*/) {
  if (!bad_) return Status::Ok();
  if (bad_loss_) {
    return NonFinite("NaN or Inf in the loss of microbatch " + std::to_string(bad_where_) + ": " +
                     method_ + ", device " + std::to_string(device_) + ", stage " +
                     std::to_string(bad_stage_));
  }
  return NonFinite("NaN or Inf in the gradient: " + method_ + ", device " +
                   std::to_string(device_) + ", stage " + std::to_string(bad_stage_) + ", step " +
                   std::to_string(bad_where_));
}

void CpuDevice::NoteNonFinite(bool loss, int32_t stage, int64_t where) {
  if (bad_) return;
  bad_ = true;
  bad_loss_ = loss;
  bad_stage_ = stage;
  bad_where_ = where;
}

void CpuDevice::ReadLosses(std::span<double> losses, int64_t* correct) {
  PIPECAST_CHECK(losses.size() == losses_.size());
  for (size_t j = 0; j < losses_.size(); ++j)
    if (has_loss_[j]) losses[j] = losses_[j];
  *correct = correct_;
}

PredictionStats CpuDevice::Predictions(int32_t stage) {
  StageData& s = At(stage);
  const PredictionStats out = s.stats;
  s.stats = {};
  return out;
}

void CpuDevice::ReadEval(double* loss_sum, int64_t* correct, int64_t* rows) {
  *loss_sum = eval_loss_;
  *correct = eval_correct_;
  *rows = eval_rows_done_;
  eval_loss_ = 0;
  eval_correct_ = eval_rows_done_ = 0;
}

Result<StageState> CpuDevice::State(int32_t stage) {
  const StageData& s = At(stage);
  StageState st;
  st.optimizer_steps = s.optimizer->steps();
  st.tensors.emplace_back("weights", s.weights);
  for (auto& [name, values] : s.optimizer->StateTensors())
    st.tensors.emplace_back("opt." + name, std::move(values));
  if (!s.velocity.empty()) st.tensors.emplace_back("velocity", s.velocity);
  if (!s.reference.empty()) st.tensors.emplace_back("reference", s.reference);
  return st;
}

Status CpuDevice::LoadState(int32_t stage, const StageState& state) {
  StageData& s = At(stage);
  auto find = [&](const std::string& name) -> const std::vector<float>* {
    for (const auto& [n, v] : state.tensors)
      if (n == name) return &v;
    return nullptr;
  };
  const std::vector<float>* w = find("weights");
  if (w == nullptr || w->size() != s.weights.size())
    return InvalidArgument("stage " + std::to_string(stage) + ": missing or mis-sized weights");
  std::vector<models::StateTensor> opt = s.optimizer->StateTensors();
  for (auto& [name, values] : opt) {
    const std::vector<float>* v = find("opt." + name);
    if (v == nullptr)
      return InvalidArgument("stage " + std::to_string(stage) + ": missing " + name);
    values = *v;
  }
  PIPECAST_RETURN_IF_ERROR(s.optimizer->LoadState(state.optimizer_steps, opt));
  s.weights = *w;
  const std::vector<float>* ref = find("reference");
  if (ref != nullptr && ref->size() != s.weights.size())
    return InvalidArgument("stage " + std::to_string(stage) + ": mis-sized reference weights");
  if (const std::vector<float>* v = find("velocity")) s.velocity = *v;
  if (ref != nullptr) s.reference = *ref;
  return Status::Ok();
}

}  // namespace pipecast::runtime
