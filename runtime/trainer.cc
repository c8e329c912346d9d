#include "runtime/trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/generators.h"
#include "common/lower.h"
#include "common/version_plan.h"
#include "models/data.h"
#include "models/loss.h"
#include "models/lr_schedule.h"
#include "models/model.h"
#include "runtime/cpu_backend.h"
#include "runtime/inproc_transport.h"
#include "runtime/safetensors.h"

#include <nlohmann/json.hpp>

namespace pipecast::runtime {
namespace {

struct JobData {
  std::shared_ptr<const models::Dataset> train, test;
  int64_t input_width = 0;
  int32_t classes = 0;
  bool language = false;
};

std::shared_ptr<const models::ClassificationData> Share(models::ClassificationData d) {
  return std::make_shared<const models::ClassificationData>(std::move(d));
}

Result<JobData> LoadJobData(const ir::Job& job) {
  JobData out;
  const ir::JobData& d = job.data;
  const int64_t train_limit = d.train_examples > 0 ? d.train_examples : -1;
  const int64_t test_limit = d.test_examples > 0 ? d.test_examples : -1;
  if (d.dataset == "fashion-mnist" || d.dataset == "synthetic") {
    models::ClassificationData train, test;
    if (d.dataset == "fashion-mnist") {
      auto tr = models::LoadFashionMnist(models::FashionMnistSplit::kTrain,
                                         models::kFashionMnistDir, train_limit);
      if (!tr.ok()) return tr.status();
      auto te = models::LoadFashionMnist(models::FashionMnistSplit::kTest,
                                         models::kFashionMnistDir, test_limit);
      if (!te.ok()) return te.status();
      train = std::move(*tr);
      test = std::move(*te);
    } else {
      // Seeded clusters sharing their centres (same seed); test examples come after the train
      // ones in one draw so both sets have the same distribution.
      const int64_t n_train = train_limit > 0 ? train_limit : 4096;
      const int64_t n_test = test_limit > 0 ? test_limit : 1024;
      models::ClassificationData all =
          models::MakeGaussianClusters(n_train + n_test, 32, 10, 1.0, 1.0, job.seed);
      train = all;
      train.count = n_train;
      train.x.resize(static_cast<size_t>(n_train) * all.features);
      train.labels.resize(static_cast<size_t>(n_train));
      test.count = n_test;
      test.features = all.features;
      test.num_classes = all.num_classes;
      test.x.assign(all.x.begin() + static_cast<long>(n_train) * all.features, all.x.end());
      test.labels.assign(all.labels.begin() + n_train, all.labels.end());
    }
    out.input_width = train.features;
    out.classes = train.num_classes;
    out.train = models::MakeClassificationDataset(Share(std::move(train)), d.dataset + "/train");
    out.test = models::MakeClassificationDataset(Share(std::move(test)), d.dataset + "/test");
    return out;
  }
  if (d.dataset == "fortunes" || d.dataset == "synthetic-text") {
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
    out.train = *train;
    out.test = *test;
    out.input_width = 1;
    out.classes = corpus.vocab_size;
    out.language = true;
    return out;
  }
  return InvalidArgument("unknown dataset '" + d.dataset +
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

// The dW rule the method asks for, or the paper rule where this optimizer does not define it.
Result<models::DeltaRule> RuleFor(const ir::Program& p, models::OptimizerKind kind) {
  const ir::DeltaRule rule = p.options.delta;
  const bool sgd = kind == models::OptimizerKind::kSgd;
  const bool adam = kind == models::OptimizerKind::kAdam || kind == models::OptimizerKind::kAdamW;
  if (rule == ir::DeltaRule::kSpecTrain && !sgd) return models::DeltaRule::kPaper;
  if (rule == ir::DeltaRule::kXPipe && !adam) return models::DeltaRule::kPaper;
  return rule;
}

Result<models::LrSchedule> ScheduleOf(const ir::Job& job, int64_t minibatches_per_epoch,
                                      int64_t total_minibatches) {
  const ir::JobSchedule& s = job.lr_schedule;
  if (s.type == "constant") return models::LrSchedule::Constant(job.optimizer.lr);
  if (s.type == "step") {
    std::vector<int64_t> milestones;
    for (double e : s.milestones)
      milestones.push_back(static_cast<int64_t>(std::llround(e * minibatches_per_epoch)));
    return models::LrSchedule::MultiStep(job.optimizer.lr, milestones, s.gamma);
  }
  const auto warmup = std::max<int64_t>(1, std::llround(s.warmup * total_minibatches));
  return models::LrSchedule::WarmupCosine(job.optimizer.lr, std::max(total_minibatches, warmup + 1),
                                          warmup, s.floor);
}

struct TestScore {
  double loss = 0, accuracy = 0;
};

TestScore Evaluate(const std::vector<models::Stage<float>>& stages,
                   const std::vector<std::vector<float>>& weights, const models::Dataset& test) {
  TestScore score;
  const int64_t chunk = 256;
  double loss_sum = 0;
  int64_t rows = 0, correct = 0;
  for (int64_t first = 0; first < test.size(); first += chunk) {
    const int64_t count = std::min(chunk, test.size() - first);
    const models::Batch b = test.Range(first, count);
    models::Matrix<float> x = b.x;
    for (size_t s = 0; s < stages.size(); ++s) x = stages[s].Forward(weights[s], x, nullptr);
    const auto r = models::SoftmaxCrossEntropy<float>(x, b.labels, 1.0);
    loss_sum += r.loss * static_cast<double>(x.rows());
    correct += models::CountCorrect<float>(x, b.labels);
    rows += x.rows();
  }
  if (rows > 0) {
    score.loss = loss_sum / rows;
    score.accuracy = static_cast<double>(correct) / rows;
  }
  return score;
}

std::string Identity(const ir::Job& job, const ir::MethodSpec& method) {
  nlohmann::json j = {{"job", job.name}, {"method", method.name}, {"params", method.params},
                      {"seed", job.seed}, {"epochs", job.epochs}};
  return j.dump();
}

nlohmann::json EvaluationsJson(const std::vector<Evaluation>& evs) {
  nlohmann::json a = nlohmann::json::array();
  for (const Evaluation& e : evs)
    a.push_back({e.epoch, e.minibatches, e.train_loss, e.test_loss, e.test_accuracy,
                 e.test_perplexity, e.wall_s, e.samples_per_s});
  return a;
}

std::vector<Evaluation> EvaluationsFrom(const nlohmann::json& a) {
  std::vector<Evaluation> evs;
  for (const auto& v : a) {
    Evaluation e;
    e.epoch = v[0];
    e.minibatches = v[1];
    e.train_loss = v[2];
    e.test_loss = v[3];
    e.test_accuracy = v[4];
    e.test_perplexity = v[5];
    e.wall_s = v[6];
    e.samples_per_s = v[7];
    evs.push_back(e);
  }
  return evs;
}

}  // namespace

Result<MethodTraining> TrainMethod(const ir::Job& job, const ir::MethodSpec& method,
                                   const TrainOptions& options) {
  auto data = LoadJobData(job);
  if (!data.ok()) return data.status();
  Result<models::Model<float>> model =
      job.model.type == "gpt"
          ? models::MakeGpt<float>({data->classes, job.model.sequence, job.model.hidden,
                                    job.model.heads, job.model.layers})
          : models::MakeMlp<float>(data->input_width, job.model.hidden_sizes, data->classes);
  if (!model.ok()) return model.status();

  const int32_t d = job.pipeline.stages;
  const int32_t m = job.pipeline.microbatches;
  const int32_t mbs = job.pipeline.microbatch_size;
  models::Loader loader(data->train, job.seed);
  if (data->train->size() < static_cast<int64_t>(mbs) * m) {
    return InvalidArgument("the training set has " + std::to_string(data->train->size()) +
                           " examples, fewer than one minibatch (" + std::to_string(m) + " x " +
                           std::to_string(mbs) + ")");
  }
  const int64_t per_epoch = loader.BatchesPerEpoch(mbs) / m;  // minibatches
  const int64_t total = std::max<int64_t>(1, std::llround(job.epochs * per_epoch));
  const int64_t evaluations =
      std::clamp<int64_t>(job.evaluations > 0 ? job.evaluations
                                              : static_cast<int64_t>(std::ceil(job.epochs)),
                          1, total);
  auto schedule = ScheduleOf(job, per_epoch, total);
  if (!schedule.ok()) return schedule.status();
  auto opt_config = OptimizerConfigOf(job.optimizer);
  if (!opt_config.ok()) return opt_config.status();

  // One program per segment length (segments differ by at most one minibatch).
  std::map<int64_t, ir::Program> programs;
  auto program_for = [&](int64_t n) -> Result<ir::Program> {
    if (auto it = programs.find(n); it != programs.end()) return it->second;
    auto p = ir::Generate({method.name, d, m, static_cast<int32_t>(n), mbs, method.params});
    if (!p.ok()) return p.status();
    programs[n] = ir::InsertCommunication(*p);
    return programs[n];
  };
  auto first = program_for(total / evaluations);
  if (!first.ok()) return first.status();
  const int32_t num_stages = first->num_stages;
  auto stages = models::Partition(*model, num_stages);
  if (!stages.ok()) return stages.status();
  auto rule = RuleFor(*first, opt_config->kind);
  if (!rule.ok()) return rule.status();

  std::vector<std::unique_ptr<StageBackend>> backends;
  std::vector<std::unique_ptr<StageOptimizer>> optimizers;
  std::vector<std::vector<float>> weights;
  const std::vector<float> init = model->Init(job.seed);
  for (const models::Stage<float>& s : *stages) {
    backends.push_back(std::make_unique<CpuStageBackend>(s));
    auto o = models::Optimizer::Create(*opt_config, static_cast<size_t>(s.num_params()));
    if (!o.ok()) return o.status();
    if (Status st = (*o)->SupportsRule(*rule); !st.ok()) return st;
    optimizers.push_back(std::make_unique<ModelOptimizer>(std::move(*o), *rule));
    weights.emplace_back(init.begin() + s.param_offset(),
                         init.begin() + s.param_offset() + s.num_params());
  }

  MethodTraining out;
  out.method = method.name;
  out.params = method.params;
  out.stages.resize(d);
  // PipeMare's T1: stage k's rate is scaled by tau^-p_t with tau = 2(D - k) and
  // p_t = max(0, 1 - t/K) for its first K steps.
  const int64_t pipemare_k =
      first->options.pipemare.lr_warmup_steps;
  std::vector<int64_t> steps_before(d, 0);
  int64_t done = 0;
  double wall = 0;
  int64_t start_segment = 0;
  const std::string identity = Identity(job, method);
  if (options.resume && !options.checkpoint.empty() &&
      std::filesystem::exists(options.checkpoint)) {
    auto ck = ReadSafetensors(options.checkpoint);
    if (!ck.ok()) return ck.status();
    const auto& md = ck->metadata;
    if (!md.count("identity") || md.at("identity") != identity) {
      return InvalidArgument(options.checkpoint + ": the checkpoint is from another run (" +
                             (md.count("identity") ? md.at("identity") : "unknown") +
                             "); remove it or drop --resume");
    }
    try {
      const auto state = nlohmann::json::parse(md.at("state"));
      start_segment = state.at("segment");
      done = state.at("minibatches");
      wall = state.at("wall_s");
      steps_before = state.at("steps_before").get<std::vector<int64_t>>();
      out.evaluations = EvaluationsFrom(state.at("evaluations"));
      const auto opt_steps = state.at("optimizer_steps").get<std::vector<int64_t>>();
      for (int32_t s = 0; s < num_stages; ++s) {
        const std::string prefix = "stage" + std::to_string(s) + ".";
        weights[s] = ck->tensors.at(prefix + "weights").data;
        std::vector<models::StateTensor> st;
        for (const auto& [name, t] : ck->tensors)
          if (name.rfind(prefix + "opt.", 0) == 0)
            st.emplace_back(name.substr(prefix.size() + 4), t.data);
        auto& opt = static_cast<ModelOptimizer&>(*optimizers[s]).optimizer();
        // LoadState wants the optimizer's own order.
        std::vector<models::StateTensor> ordered = opt.StateTensors();
        for (auto& [name, values] : ordered) {
          auto it = std::find_if(st.begin(), st.end(),
                                 [&](const auto& x) { return x.first == name; });
          if (it == st.end()) return InvalidArgument(options.checkpoint + ": missing " + name);
          values = it->second;
        }
        if (Status ls = opt.LoadState(opt_steps[s], ordered); !ls.ok()) return ls;
      }
    } catch (const std::exception& e) {
      return InvalidArgument(options.checkpoint + ": corrupt checkpoint state: " + e.what());
    }
    for (const Evaluation& ev : out.evaluations) {
      out.best_accuracy = std::max(out.best_accuracy, ev.test_accuracy);
      out.final_accuracy = ev.test_accuracy;
    }
    out.resumed = true;
  }
  for (int64_t e = start_segment; e < evaluations; ++e) {
    const int64_t n = total / evaluations + (e < total % evaluations ? 1 : 0);
    auto p = program_for(n);
    if (!p.ok()) return p.status();
    std::vector<int64_t> steps_in(d, 0);
    for (int32_t dev = 0; dev < d; ++dev)
      for (const ir::Action& a : p->devices[dev]) steps_in[dev] += a.kind == ir::ActionKind::kStep;
    ExecutorConfig config;
    config.deadline = options.deadline;
    config.pipemare_decay = p->options.pipemare.decay;
    const int64_t base = done;
    config.learning_rate = [&, base, n](int32_t dev, int64_t step) {
      // The schedule is in minibatches: a device that steps more often than once per minibatch
      // moves through it proportionally.
      const double progress = base + static_cast<double>(step) * n /
                                         static_cast<double>(std::max<int64_t>(1, steps_in[dev]));
      const double lr = schedule->LrAt(static_cast<int64_t>(progress));
      return models::PipeMareStageLr(lr, 2.0 * (d - dev), steps_before[dev] + step, pipemare_k);
    };
    LoaderFeed feed(loader, mbs, base * m);
    config.local_devices = options.local_devices;
    std::unique_ptr<Transport> transport = options.make_transport
                                               ? options.make_transport(*p)
                                               : std::make_unique<InProcessTransport>(d);
    auto r = Execute(*p, backends, optimizers, std::move(weights), feed, *transport, config);
    if (!r.ok()) return r.status();
    transport.reset();  // flushes outstanding sends (MPI)
    if (options.share) options.share(*p, *r);
    weights = std::move(r->weights);
    for (int32_t dev = 0; dev < d; ++dev) steps_before[dev] += steps_in[dev];
    done += n;
    wall += static_cast<double>(r->wall_ns) * 1e-9;

    // Measured version gap and delay.
    const ir::VersionPlan table = ir::BuildVersionPlan(*p);
    for (int32_t dev = 0; dev < d; ++dev) {
      std::map<std::pair<int32_t, int32_t>, VersionUse> forward;
      if (r->versions[dev].empty()) {
        // Run by another process: its trace equals the static accounting (tested), use that.
        for (const ir::Action& a : p->devices[dev]) {
          if (!ir::UsesWeights(a.kind)) continue;
          const ir::VersionRecord& rec = table.At(a.stage, a.microbatch);
          r->versions[dev].push_back(a.kind == ir::ActionKind::kForward
                                         ? VersionUse{a.kind, a.stage, a.microbatch, rec.f_counter,
                                                      rec.f_version, rec.f_horizon}
                                         : VersionUse{a.kind, a.stage, a.microbatch, rec.b_counter,
                                                      rec.b_version, rec.b_horizon});
        }
      }
      for (const VersionUse& u : r->versions[dev]) {
        const auto key = std::make_pair(u.stage, u.microbatch);
        if (u.kind == ir::ActionKind::kForward) {
          forward[key] = u;
          continue;
        }
        const VersionUse& f = forward[key];
        StageVersions& sv = out.stages[dev];
        sv.version_gap_max = std::max(sv.version_gap_max, u.counter - f.counter);
        const int32_t applied = table.At(u.stage, u.microbatch).applied_step;
        if (applied >= 1)
          sv.gradient_delay_max =
              std::max(sv.gradient_delay_max, applied - 1 - (f.version + f.horizon));
      }
    }

    Evaluation ev;
    ev.minibatches = done;
    ev.epoch = static_cast<double>(done) / per_epoch;
    double loss_sum = 0;
    for (double l : r->losses) loss_sum += l;
    ev.train_loss = r->losses.empty() ? 0 : loss_sum / r->losses.size();
    const TestScore score = Evaluate(*stages, weights, *data->test);
    ev.test_loss = score.loss;
    ev.test_accuracy = score.accuracy;
    ev.test_perplexity = data->language ? std::exp(score.loss) : 0;
    ev.wall_s = wall;
    ev.samples_per_s = static_cast<double>(n) * m * mbs / (static_cast<double>(r->wall_ns) * 1e-9);
    if (!std::isfinite(ev.test_loss)) {
      return InvalidArgument(method.name + ": the test loss became NaN or Inf after " +
                             std::to_string(done) + " minibatches (learning rate too high?)");
    }
    out.evaluations.push_back(ev);
    out.best_accuracy = std::max(out.best_accuracy, ev.test_accuracy);
    out.final_accuracy = ev.test_accuracy;
    out.wall_s = wall;
    out.last_program = *p;
    out.last_timing = std::move(r->timing);
    if (!options.checkpoint.empty()) {
      SafetensorsFile ck;
      std::vector<int64_t> opt_steps;
      for (int32_t s = 0; s < num_stages; ++s) {
        const std::string prefix = "stage" + std::to_string(s) + ".";
        ck.tensors[prefix + "weights"] = {{static_cast<int64_t>(weights[s].size())}, weights[s]};
        auto& opt = static_cast<ModelOptimizer&>(*optimizers[s]).optimizer();
        for (auto& [name, values] : opt.StateTensors())
          ck.tensors[prefix + "opt." + name] = {{static_cast<int64_t>(values.size())}, values};
        opt_steps.push_back(opt.steps());
      }
      const nlohmann::json state = {{"segment", e + 1},
                                    {"minibatches", done},
                                    {"wall_s", wall},
                                    {"steps_before", steps_before},
                                    {"optimizer_steps", opt_steps},
                                    {"data_position", (done * m)},
                                    {"evaluations", EvaluationsJson(out.evaluations)}};
      ck.metadata["identity"] = identity;
      ck.metadata["state"] = state.dump();
      ck.metadata["format"] = "pipecast-checkpoint-1";
      if (Status ws = WriteSafetensors(options.checkpoint, ck); !ws.ok()) return ws;
    }
    if (options.on_evaluation) options.on_evaluation(out, ev);
    if (options.stop_after > 0 && e + 1 - start_segment >= options.stop_after) break;
  }
  out.final_weights = std::move(weights);
  return out;
}

}  // namespace pipecast::runtime
