#include "runtime/session.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/check.h"
#include "common/generators.h"
#include "common/lower.h"
#include "common/validate.h"
#include "runtime/cpu/cpu_device.h"

namespace pipecast::runtime {
namespace {

std::shared_ptr<const models::ClassificationData> Share(models::ClassificationData d) {
  return std::make_shared<const models::ClassificationData>(std::move(d));
}

// Seeded clusters sharing their centres (same seed); test examples come after the train ones in
// one draw so both sets have the same distribution.
void SyntheticClusters(const ir::Job& job, int64_t train_limit, int64_t test_limit,
                       models::ClassificationData* train, models::ClassificationData* test) {
  const int64_t n_train = train_limit > 0 ? train_limit : 4096;
  const int64_t n_test = test_limit > 0 ? test_limit : 1024;
  models::ClassificationData all =
      models::MakeGaussianClusters(n_train + n_test, 32, 10, 1.0, 1.0, job.seed);
  *train = all;
  train->count = n_train;
  train->x.resize(static_cast<size_t>(n_train) * all.features);
  train->labels.resize(static_cast<size_t>(n_train));
  test->count = n_test;
  test->features = all.features;
  test->num_classes = all.num_classes;
  test->x.assign(all.x.begin() + static_cast<long>(n_train) * all.features, all.x.end());
  test->labels.assign(all.labels.begin() + n_train, all.labels.end());
}

Result<TrainingData> LoadClassification(const ir::Job& job) {
  const ir::JobData& d = job.data;
  const int64_t train_limit = d.train_examples > 0 ? d.train_examples : -1;
  const int64_t test_limit = d.test_examples > 0 ? d.test_examples : -1;
  models::ClassificationData train, test;
  if (d.dataset == "fashion-mnist") {
    auto tr = models::LoadFashionMnist(models::FashionMnistSplit::kTrain, models::kFashionMnistDir,
                                       train_limit);
    if (!tr.ok()) return tr.status();
    auto te = models::LoadFashionMnist(models::FashionMnistSplit::kTest, models::kFashionMnistDir,
                                       test_limit);
    if (!te.ok()) return te.status();
    train = std::move(*tr);
    test = std::move(*te);
  } else {
    SyntheticClusters(job, train_limit, test_limit, &train, &test);
  }
  TrainingData out;
  out.input_width = train.features;
  out.classes = train.num_classes;
  out.train = models::MakeClassificationDataset(Share(std::move(train)), d.dataset + "/train");
  out.test = models::MakeClassificationDataset(Share(std::move(test)), d.dataset + "/test");
  return out;
}

Result<TrainingData> LoadText(const ir::Job& job) {
  const ir::JobData& d = job.data;
  models::TokenCorpus corpus;
  if (d.dataset == "fortunes") {
    auto c = models::LoadFortunes();
    if (!c.ok()) return c.status();
    corpus = std::move(*c);
  } else {
    corpus = models::MakeSyntheticTokens(200000, 64, 0.8, 0.1, job.seed);
  }
  const int32_t seq = job.model.sequence;
  auto limit = [seq](std::vector<int32_t> ids, int64_t examples) {
    if (examples > 0 && static_cast<int64_t>(ids.size()) > examples * seq + 1)
      ids.resize(static_cast<size_t>(examples * seq + 1));
    return std::make_shared<const std::vector<int32_t>>(std::move(ids));
  };
  auto train = models::MakeTokenWindows(limit(corpus.train, d.train_examples), seq,
                                        corpus.vocab_size, d.dataset + "/train");
  if (!train.ok()) return train.status();
  auto test = models::MakeTokenWindows(limit(corpus.heldout, d.test_examples), seq,
                                       corpus.vocab_size, d.dataset + "/heldout");
  if (!test.ok()) return test.status();
  TrainingData out;
  out.train = *train;
  out.test = *test;
  out.input_width = 1;
  out.classes = corpus.vocab_size;
  out.language = true;
  return out;
}

Result<models::LrSchedule> ScheduleOf(const ir::Job& job, int64_t per_epoch, int64_t total) {
  const ir::JobSchedule& s = job.lr_schedule;
  if (s.type == "constant") return models::LrSchedule::Constant(job.optimizer.lr);
  if (s.type == "step") {
    std::vector<int64_t> milestones;
    for (double e : s.milestones)
      milestones.push_back(static_cast<int64_t>(std::llround(e * per_epoch)));
    return models::LrSchedule::MultiStep(job.optimizer.lr, milestones, s.gamma);
  }
  const auto warmup = std::max<int64_t>(1, std::llround(s.warmup * total));
  return models::LrSchedule::WarmupCosine(job.optimizer.lr, std::max(total, warmup + 1), warmup,
                                          s.floor);
}

}  // namespace

int64_t AveragingPeriod(const ir::MethodSpec& method) {
  if (method.name != "avgpipe") return 1;
  const auto it = method.params.find("period");
  int64_t period = 1;
  if (it != method.params.end()) {
    const std::string& v = it->second;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), period);
    if (ec != std::errc() || end != v.data() + v.size() || period < 1) period = 1;
  }
  return period;
}

Result<TrainingData> LoadTrainingData(const ir::Job& job) {
  const std::string& d = job.data.dataset;
  if (d == "fashion-mnist" || d == "synthetic") return LoadClassification(job);
  if (d == "fortunes" || d == "synthetic-text") return LoadText(job);
  return InvalidArgument("unknown dataset '" + d +
                         "'; use fashion-mnist, fortunes, synthetic or synthetic-text");
}

Result<models::OptimizerConfig> OptimizerConfigOf(const ir::JobOptimizer& o) {
  auto kind = models::ParseOptimizerKind(o.name);
  if (!kind.ok()) return kind.status();
  models::OptimizerConfig c = models::DefaultOptimizerConfig(*kind);
  c.lr = o.lr;
  c.weight_decay = o.weight_decay;
  if (*kind == models::OptimizerKind::kSgd || *kind == models::OptimizerKind::kRmsprop)
    c.momentum = o.momentum;
  if (*kind == models::OptimizerKind::kSgd) {
    c.dampening = o.dampening;
    c.nesterov = o.nesterov;
  }
  if (*kind != models::OptimizerKind::kSgd && *kind != models::OptimizerKind::kRmsprop) {
    c.beta1 = o.beta1;
    c.beta2 = o.beta2;
  }
  c.eps = o.eps;
  return c;
}

Session::Session(const ir::Job& job, const ir::MethodSpec& method, const SessionOptions& options)
    : job_(job),
      method_(method),
      options_(options),
      schedule_(models::LrSchedule::Constant(job.optimizer.lr)) {}

// The method, its program and its ΔW rule against the optimizer, before any data is loaded.
Status Session::CheckMethod() {
  auto opt = OptimizerConfigOf(job_.optimizer);
  if (!opt.ok()) return opt.status();
  optimizer_ = *opt;
  auto probe = ProgramFor(1);
  if (!probe.ok()) return probe.status();
  devices_ = (*probe)->num_devices;
  microbatches_ = (*probe)->microbatches;
  rule_ = models::EffectiveDeltaRule((*probe)->options.delta, optimizer_.kind);
  auto check = models::Optimizer::Create(optimizer_, 1);
  if (!check.ok()) return check.status();
  const bool predicts = std::any_of(
      (*probe)->devices.begin(), (*probe)->devices.end(), [](const std::vector<ir::Action>& d) {
        return std::any_of(d.begin(), d.end(), [](const ir::Action& a) {
          return a.weights.source == ir::WeightSource::kPredicted && a.weights.value > 0;
        });
      });
  if (predicts) PIPECAST_RETURN_IF_ERROR((*check)->SupportsRule(rule_.rule));
  if (job_.device == ir::JobDevice::kCuda && !options_.make_device) {
    return DeviceError(
        "this build of pipecast has no CUDA device (device: cuda needs a build with nvcc and a "
        "GPU); use device: cpu");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Session>> Session::Create(const ir::Job& job, const ir::MethodSpec& method,
                                                 const SessionOptions& options) {
  std::unique_ptr<Session> s(new Session(job, method, options));
  PIPECAST_RETURN_IF_ERROR(s->CheckMethod());
  auto data = LoadTrainingData(job);
  if (!data.ok()) return data.status();
  s->data_ = std::move(*data);
  // A minibatch is every copy's microbatches (data_parallel x microbatches of them).
  const int32_t m = s->microbatches_per_minibatch(), mbs = job.pipeline.microbatch_size;
  if (s->data_.train->size() < static_cast<int64_t>(mbs) * m) {
    return InvalidArgument("the training set has " + std::to_string(s->data_.train->size()) +
                           " examples, fewer than one minibatch (" + std::to_string(m) + " x " +
                           std::to_string(mbs) + ")");
  }
  s->loader_ = std::make_unique<models::Loader>(s->data_.train, job.seed);
  s->per_epoch_ = s->loader_->BatchesPerEpoch(mbs) / m;
  s->total_ = std::max<int64_t>(1, std::llround(job.epochs * s->per_epoch_));
  s->evaluations_ = std::clamp<int64_t>(
      job.evaluations > 0 ? job.evaluations : static_cast<int64_t>(std::ceil(job.epochs)), 1,
      s->total_);
  auto schedule = ScheduleOf(job, s->per_epoch_, s->total_);
  if (!schedule.ok()) return schedule.status();
  s->schedule_ = *schedule;
  Result<models::Model<float>> model =
      job.model.type == "gpt"
          ? models::MakeGpt<float>({s->data_.classes, job.model.sequence, job.model.hidden,
                                    job.model.heads, job.model.layers})
          : models::MakeMlp<float>(s->data_.input_width, job.model.hidden_sizes, s->data_.classes);
  if (!model.ok()) return model.status();
  s->model_ = std::make_unique<models::Model<float>>(std::move(*model));
  auto first = s->ProgramFor(s->SegmentLength(0));
  if (!first.ok()) return first.status();
  auto stages = models::Partition(*s->model_, (*first)->num_stages);
  if (!stages.ok()) return stages.status();
  s->stages_ = std::move(*stages);
  PIPECAST_RETURN_IF_ERROR(s->BuildDevices(s->model_->Init(job.seed)));
  return s;
}

Result<std::unique_ptr<Device>> Session::MakeDevice(int32_t dev, const ir::Program& p) const {
  if (job_.device == ir::JobDevice::kCuda) {
    std::vector<DeviceStages> stages;
    for (int32_t s = 0; s < num_stages(); ++s)
      if (p.holds(dev, s)) stages.push_back({s, stages_[s], optimizer_});
    return options_.make_device(dev, num_devices(), std::move(stages));
  }
  std::vector<CpuStageSpec> specs;
  for (int32_t s = 0; s < num_stages(); ++s)
    if (p.holds(dev, s)) specs.push_back({s, stages_[s], optimizer_});
  auto cpu = CpuDevice::Create(std::move(specs), "cpu:" + std::to_string(dev),
                               options_.memory_limit_bytes);
  if (!cpu.ok()) return cpu.status();
  return std::unique_ptr<Device>(std::move(*cpu));
}

Status Session::BuildDevices(const std::vector<float>& init) {
  const int32_t d = num_devices();
  local_ = options_.local_devices;
  if (local_.empty())
    for (int32_t k = 0; k < d; ++k) local_.push_back(k);
  owned_.clear();
  device_ptrs_.assign(d, nullptr);
  const ir::Program& p = programs_.begin()->second->program;  // every program, one placement
  // Every copy of a stage starts from the same weights and a fresh optimizer of its own.
  for (int32_t dev : local_) {
    Result<std::unique_ptr<Device>> device = MakeDevice(dev, p);
    if (!device.ok()) return device.status();
    for (int32_t s = 0; s < num_stages(); ++s) {
      if (!p.holds(dev, s)) continue;
      const models::Stage<float>& st = stages_[s];
      (*device)->SetWeights(
          s, std::span<const float>(init).subspan(st.param_offset(), st.num_params()));
    }
    device_ptrs_[dev] = device->get();
    owned_.push_back(std::move(*device));
  }
  return Status::Ok();
}

bool Session::IsLocal(int32_t device) const {
  return device >= 0 && device < static_cast<int32_t>(device_ptrs_.size()) &&
         device_ptrs_[device] != nullptr;
}

Device& Session::DeviceOf(int32_t stage) const {
  const ir::Program& p = programs_.begin()->second->program;
  Device* d = device_ptrs_[p.device_of(stage)];
  PIPECAST_CHECK(d != nullptr) << "stage " << stage << " runs in another process";
  return *d;
}

int64_t Session::SegmentLength(int64_t segment) const {
  return total_ / evaluations_ + (segment < total_ % evaluations_ ? 1 : 0);
}

int64_t Session::microbatch_rows() const {
  return static_cast<int64_t>(job_.pipeline.microbatch_size) * data_.train->rows_per_example();
}

int64_t Session::eval_rows() const {
  return std::min<int64_t>(kEvalChunk, data_.test->size()) * data_.test->rows_per_example();
}

Result<const ir::Program*> Session::ProgramFor(int64_t minibatches, int64_t minibatches_before) {
  // AvgPipe steps once per minibatch on every copy: the segment's phase in its period.
  std::map<std::string, std::string> params = method_.params;
  int64_t phase = 0;
  if (method_.name == "avgpipe") {
    phase = minibatches_before % AveragingPeriod(method_);
    params["phase"] = std::to_string(phase);
  }
  const std::pair<int64_t, int64_t> key{minibatches, phase};
  if (auto it = programs_.find(key); it != programs_.end()) return &it->second->program;
  const ir::PipelineSpec& pipe = job_.pipeline;
  auto p =
      ir::Generate({method_.name, pipe.stages, pipe.microbatches, static_cast<int32_t>(minibatches),
                    pipe.microbatch_size, params, pipe.data_parallel});
  if (!p.ok()) return p.status();
  auto lowered = std::make_unique<Lowered>();
  lowered->program = ir::InsertCommunication(*p);
  PIPECAST_RETURN_IF_ERROR(ir::ValidationStatus(ir::ValidateProgram(lowered->program),
                                                method_.name + " generated an invalid program"));
  lowered->plan = ir::BuildVersionPlan(lowered->program, ir::PlanDetail::kExecution);
  const ir::Program* program = &lowered->program;
  programs_[key] = std::move(lowered);
  return program;
}

const ir::VersionPlan& Session::PlanFor(const ir::Program& program) const {
  for (const auto& [n, l] : programs_)
    if (&l->program == &program) return l->plan;
  PIPECAST_CHECK(false) << "no plan for this program";
  return programs_.begin()->second->plan;
}

}  // namespace pipecast::runtime
