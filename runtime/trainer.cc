#include "runtime/trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "runtime/checkpointer.h"
#include "runtime/evaluator.h"
#include "runtime/inproc_transport.h"
#include "runtime/loader_feed.h"
#include "runtime/session.h"

namespace pipecast::runtime {
namespace {

// Where a run is: segments and minibatches done, each device's steps, training time.
struct RunState {
  int64_t segment = 0;
  int64_t done = 0;
  double wall = 0;
  std::vector<int64_t> steps_before;
};

struct SegmentOutcome {
  ExecutionResult exec;
  const ir::Program* program = nullptr;
  std::vector<ir::DeviceVersionStats> versions;  // per device, measured
  std::vector<PredictionStats> predictions;      // per stage
};

// True if some action computes with predicted weights.
bool Predicts(const ir::Program& p) {
  return std::any_of(p.devices.begin(), p.devices.end(), [](const std::vector<ir::Action>& d) {
    return std::any_of(d.begin(), d.end(), [](const ir::Action& a) {
      return a.weights.source == ir::WeightSource::kPredicted && a.weights.value > 0;
    });
  });
}

std::unique_ptr<Transport> MakeTransport(const TrainOptions& o, int32_t devices,
                                         const MessageSpace& space) {
  if (o.make_transport) return o.make_transport(devices, space);
  return std::make_unique<InProcessTransport>(devices, space);
}

// The plan's records with the F/B fields of local devices replaced by what they served.
std::vector<ir::VersionRecord> MeasuredRecords(const ir::VersionPlan& plan,
                                               const ExecutionResult& r) {
  std::vector<ir::VersionRecord> records = plan.records;
  for (const std::vector<ServedWeights>& device : r.served) {
    for (const ServedWeights& u : device) {
      ir::VersionRecord& rec =
          records[static_cast<size_t>(u.stage) * plan.total_microbatches + u.microbatch];
      if (u.kind == ir::ActionKind::kForward) {
        rec.f_counter = u.counter;
        rec.f_version = u.version;
        rec.f_horizon = u.horizon;
      } else {
        rec.b_counter = u.counter;
        rec.b_version = u.version;
        rec.b_horizon = u.horizon;
      }
    }
  }
  return records;
}

// DeviceVersionStats as doubles and back, to share them between processes.
std::vector<double> Pack(const ir::DeviceVersionStats& v) {
  return {static_cast<double>(v.gap_max),
          v.gap_mean,
          static_cast<double>(v.delay_max),
          v.delay_mean,
          static_cast<double>(v.horizon_forward_max),
          static_cast<double>(v.horizon_backward_max),
          v.crossing_fraction,
          static_cast<double>(v.live_versions_max),
          static_cast<double>(v.steps),
          static_cast<double>(v.microbatches),
          static_cast<double>(v.delayed)};
}
ir::DeviceVersionStats Unpack(const std::vector<double>& p) {
  ir::DeviceVersionStats v;
  v.gap_max = static_cast<int32_t>(p[0]);
  v.gap_mean = p[1];
  v.delay_max = static_cast<int32_t>(p[2]);
  v.delay_mean = p[3];
  v.horizon_forward_max = static_cast<int32_t>(p[4]);
  v.horizon_backward_max = static_cast<int32_t>(p[5]);
  v.crossing_fraction = p[6];
  v.live_versions_max = static_cast<int32_t>(p[7]);
  v.steps = static_cast<int32_t>(p[8]);
  v.microbatches = static_cast<int64_t>(p[9]);
  v.delayed = static_cast<int64_t>(p[10]);
  return v;
}

// The learning rate of device `dev`'s step `step` of a segment starting at minibatch `base`:
// the schedule is in minibatches, and a device that steps more often moves through it
// proportionally; PipeMare's T1 scales it by τ^(-p_t) with τ the device's delay (its most
// updates between a microbatch's F and B, from the plan).
std::function<double(int32_t, int64_t)> LearningRate(const Session& s, const ir::Program& p,
                                                     const ir::VersionPlan& plan, int64_t base,
                                                     int64_t n, const RunState& st) {
  const std::vector<ir::DeviceVersionStats> stats = ir::ComputeVersionStats(p, plan);
  std::vector<double> tau(p.num_devices, 0.0);
  std::vector<int64_t> steps_in(p.num_devices, 1);
  for (int32_t d = 0; d < p.num_devices; ++d) {
    tau[d] = stats[d].gap_max;
    steps_in[d] = std::max<int64_t>(1, plan.steps[d]);
  }
  const int64_t k = p.options.pipemare.lr_warmup_steps;
  const models::LrSchedule schedule = s.schedule();
  const std::vector<int64_t> before = st.steps_before;
  return [=](int32_t dev, int64_t step) {
    const double progress =
        base + static_cast<double>(step) * n / static_cast<double>(steps_in[dev]);
    const double lr = schedule.LrAt(static_cast<int64_t>(progress));
    return models::PipeMareStageLr(lr, tau[dev], before[dev] + step, k);
  };
}

// Every process learns every device's version stats and every stage's prediction stats.
Status ShareStats(const Session& s, const ir::Program& p, const TrainOptions& o,
                  SegmentOutcome& out) {
  if (!o.share_doubles) return Status::Ok();
  for (int32_t d = 0; d < p.num_devices; ++d) {
    std::vector<double> v = Pack(out.versions[d]);
    PIPECAST_RETURN_IF_ERROR(o.share_doubles(d, v));
    out.versions[d] = Unpack(v);
  }
  for (int32_t st = 0; st < p.num_stages; ++st) {
    PredictionStats& ps = out.predictions[st];
    double v[3] = {static_cast<double>(ps.count), ps.error_sum, ps.cosine_sum};
    PIPECAST_RETURN_IF_ERROR(o.share_doubles(p.device_of(st), v));
    ps = {static_cast<int64_t>(v[0]), v[1], v[2]};
  }
  // Each copy's last stage computed the losses of its replica's microbatches.
  (void)s;
  const int32_t last = p.num_stages - 1;
  if (p.replicas == 1) return o.share_doubles(p.device_of(last), out.exec.losses);
  std::vector<double> losses = out.exec.losses;
  for (int32_t r = 0; r < p.replicas; ++r) {
    std::vector<double> from = out.exec.losses;
    PIPECAST_RETURN_IF_ERROR(o.share_doubles(p.device_of_replica(last, r), from));
    for (int32_t j = 0; j < p.total_microbatches(); ++j)
      if (p.replica_of(j) == r) losses[j] = from[j];
  }
  out.exec.losses = std::move(losses);
  return Status::Ok();
}

Result<SegmentOutcome> RunSegment(Session& s, int64_t n, const RunState& st,
                                  const TrainOptions& o) {
  auto program = s.ProgramFor(n, st.done);
  if (!program.ok()) return program.status();
  const ir::Program& p = **program;
  const ir::VersionPlan& plan = s.PlanFor(p);
  const bool predicts = Predicts(p);
  for (int32_t d : s.local_devices()) {
    DeviceSetup setup{&p,
                      &plan,
                      d,
                      static_cast<int32_t>(s.microbatch_rows()),
                      static_cast<int32_t>(s.eval_rows()),
                      predicts ? o.track_predictions_every : 0};
    PIPECAST_RETURN_IF_ERROR(s.devices()[d]->Prepare(setup));
  }
  // Minibatch n's microbatches (every copy's) are the loader's batches n·m .. n·m + m - 1.
  const int32_t m = p.microbatches;
  LoaderFeed feed(s.loader(), s.job().pipeline.microbatch_size, st.done * m);
  auto transport = MakeTransport(o, p.num_devices, TrainingSpace(p));
  ExecutorConfig config;
  config.deadline = o.deadline;
  config.learning_rate = LearningRate(s, p, plan, st.done, n, st);
  config.steps_before = st.steps_before;
  config.local_devices = o.local_devices;
  auto r = Execute(p, plan, s.devices(), feed, *transport, config);
  if (!r.ok()) return r.status();
  transport.reset();
  SegmentOutcome out;
  out.program = &p;
  out.exec = std::move(*r);
  const std::vector<ir::VersionRecord> measured = MeasuredRecords(plan, out.exec);
  out.versions = ir::ComputeVersionStats(p, plan, measured);
  out.predictions.assign(p.num_stages, PredictionStats{});
  for (int32_t stage = 0; stage < p.num_stages; ++stage)
    if (s.IsLocal(p.device_of(stage)))
      out.predictions[stage] = s.devices()[p.device_of(stage)]->Predictions(stage);
  PIPECAST_RETURN_IF_ERROR(ShareStats(s, p, o, out));
  return out;
}

std::vector<StagePrediction> Means(const std::vector<PredictionStats>& stats) {
  std::vector<StagePrediction> out;
  for (const PredictionStats& p : stats) {
    StagePrediction sp;
    sp.count = p.count;
    if (p.count > 0) {
      sp.error_mean = p.error_sum / p.count;
      sp.cosine_mean = p.cosine_sum / p.count;
    }
    out.push_back(sp);
  }
  return out;
}

nlohmann::json EvaluationsJson(const std::vector<Evaluation>& evs) {
  nlohmann::json a = nlohmann::json::array();
  for (const Evaluation& e : evs) {
    nlohmann::json pred = nlohmann::json::array();
    for (const StagePrediction& p : e.predictions)
      pred.push_back({p.count, p.error_mean, p.cosine_mean});
    a.push_back({e.epoch, e.minibatches, e.train_loss, e.test_loss, e.test_accuracy,
                 e.test_perplexity, e.wall_s, e.samples_per_s, pred});
  }
  return a;
}

std::vector<Evaluation> EvaluationsFrom(const nlohmann::json& a) {
  std::vector<Evaluation> evs;
  for (const auto& v : a) {
    Evaluation e;
    e.epoch = v.at(0);
    e.minibatches = v.at(1);
    e.train_loss = v.at(2);
    e.test_loss = v.at(3);
    e.test_accuracy = v.at(4);
    e.test_perplexity = v.at(5);
    e.wall_s = v.at(6);
    e.samples_per_s = v.at(7);
    if (v.size() > 8)
      for (const auto& p : v.at(8)) e.predictions.push_back({p.at(0), p.at(1), p.at(2)});
    evs.push_back(e);
  }
  return evs;
}

// Folds one segment into the run's totals and evaluation history.
Status Record(Session& s, const SegmentOutcome& seg, int64_t n, const TrainOptions& o, RunState& st,
              std::vector<PredictionStats>& predictions, MethodTraining& out) {
  const ir::Program& p = *seg.program;
  for (int32_t d = 0; d < p.num_devices; ++d) {
    out.versions[d] = ir::Merge(out.versions[d], seg.versions[d]);
    st.steps_before[d] += s.PlanFor(p).steps[d];
  }
  for (int32_t stage = 0; stage < p.num_stages; ++stage) {
    predictions[stage].count += seg.predictions[stage].count;
    predictions[stage].error_sum += seg.predictions[stage].error_sum;
    predictions[stage].cosine_sum += seg.predictions[stage].cosine_sum;
  }
  st.done += n;
  const double seconds = static_cast<double>(seg.exec.wall_ns) * 1e-9;
  st.wall += seconds;
  auto transport = MakeTransport(o, p.num_devices, EvalSpace(s));
  auto score = Evaluate(s, *transport, o.deadline, o.share_doubles);
  if (!score.ok()) return score.status();
  Evaluation ev;
  ev.minibatches = st.done;
  ev.epoch = static_cast<double>(st.done) / s.minibatches_per_epoch();
  double loss_sum = 0;
  for (double l : seg.exec.losses) loss_sum += l;
  ev.train_loss = seg.exec.losses.empty() ? 0 : loss_sum / seg.exec.losses.size();
  ev.test_loss = score->loss;
  ev.test_accuracy = score->accuracy;
  ev.test_perplexity = s.data().language ? std::exp(score->loss) : 0;
  ev.wall_s = st.wall;
  ev.samples_per_s = static_cast<double>(n) * s.microbatches_per_minibatch() *
                     s.job().pipeline.microbatch_size / seconds;
  if (out.predicts) ev.predictions = Means(seg.predictions);
  if (!std::isfinite(ev.test_loss)) {
    return NonFinite(out.method + ": the test loss became NaN or Inf after " +
                     std::to_string(st.done) + " minibatches (learning rate too high?)");
  }
  out.evaluations.push_back(ev);
  out.best_accuracy = std::max(out.best_accuracy, ev.test_accuracy);
  out.final_accuracy = ev.test_accuracy;
  out.wall_s = st.wall;
  out.last_program = p;
  out.last_timing = seg.exec.timing;
  ++st.segment;
  return Status::Ok();
}

Status Resume(Session& s, const TrainOptions& o, RunState& st, MethodTraining& out) {
  if (!o.resume || o.checkpoint.empty() || !std::filesystem::exists(o.checkpoint))
    return Status::Ok();
  auto pos = LoadCheckpoint(o.checkpoint, s);
  if (!pos.ok()) return pos.status();
  st.segment = pos->segment;
  st.done = pos->minibatches;
  st.wall = pos->wall_s;
  st.steps_before = pos->steps_before;
  try {
    out.evaluations = EvaluationsFrom(nlohmann::json::parse(pos->evaluations_json));
  } catch (const std::exception& e) {
    return InvalidArgument(o.checkpoint + ": corrupt checkpoint state: " + e.what());
  }
  for (const Evaluation& ev : out.evaluations) {
    out.best_accuracy = std::max(out.best_accuracy, ev.test_accuracy);
    out.final_accuracy = ev.test_accuracy;
  }
  out.resumed = true;
  return Status::Ok();
}

Status FinalWeights(Session& s, const TrainOptions& o, MethodTraining& out) {
  out.final_weights.clear();
  for (int32_t stage = 0; stage < s.num_stages(); ++stage) {
    std::vector<float> w(static_cast<size_t>(s.stages()[stage].num_params()));
    const int32_t owner = out.last_program.num_stages > 0 ? out.last_program.device_of(stage) : 0;
    if (s.IsLocal(owner)) s.devices()[owner]->ReadWeights(stage, w);
    if (o.share_floats) PIPECAST_RETURN_IF_ERROR(o.share_floats(owner, w));
    out.final_weights.push_back(std::move(w));
  }
  return Status::Ok();
}

MethodTraining Describe(const Session& s, const ir::Program& p) {
  MethodTraining out;
  out.method = s.method().name;
  out.params = s.method().params;
  out.optimizer = s.job().optimizer.name;
  out.seed = s.job().seed;
  out.predicts = Predicts(p);
  out.delta_rule = std::string(ir::DeltaRuleName(s.delta_rule().rule));
  out.delta_fallback = s.delta_rule().fell_back;
  out.versions.assign(p.num_devices, ir::DeviceVersionStats{});
  out.last_program = p;
  for (const models::Stage<float>& st : s.stages()) out.stage_params.push_back(st.num_params());
  auto probe = models::Optimizer::Create(s.optimizer(), 1);
  if (probe.ok())
    out.optimizer_state_tensors = static_cast<int32_t>((*probe)->StateTensors().size());
  return out;
}

}  // namespace

Result<MethodTraining> TrainMethod(const ir::Job& job, const ir::MethodSpec& method,
                                   const TrainOptions& options) {
  SessionOptions so;
  so.local_devices = options.local_devices;
  so.track_predictions_every = options.track_predictions_every;
  so.make_device = options.make_device;
  auto session = Session::Create(job, method, so);
  if (!session.ok()) return session.status();
  Session& s = **session;
  auto first = s.ProgramFor(s.SegmentLength(0));
  if (!first.ok()) return first.status();
  MethodTraining out = Describe(s, **first);
  RunState st;
  st.steps_before.assign(s.num_devices(), 0);
  PIPECAST_RETURN_IF_ERROR(Resume(s, options, st, out));
  std::vector<PredictionStats> predictions(s.num_stages());
  const int64_t start = st.segment;
  for (int64_t e = st.segment; e < s.evaluations(); ++e) {
    const int64_t n = s.SegmentLength(e);
    auto seg = RunSegment(s, n, st, options);
    if (!seg.ok()) return seg.status();
    PIPECAST_RETURN_IF_ERROR(Record(s, *seg, n, options, st, predictions, out));
    if (!options.checkpoint.empty()) {
      const RunPosition pos{st.segment, st.done, st.wall, st.steps_before,
                            EvaluationsJson(out.evaluations).dump()};
      PIPECAST_RETURN_IF_ERROR(SaveCheckpoint(options.checkpoint, s, pos));
    }
    if (options.on_evaluation) options.on_evaluation(out, out.evaluations.back());
    if (options.stop_after > 0 && e + 1 - start >= options.stop_after) break;
  }
  if (out.predicts) out.predictions = Means(predictions);
  PIPECAST_RETURN_IF_ERROR(FinalWeights(s, options, out));
  return out;
}

Result<std::vector<MethodTraining>> TrainSeeds(const ir::Job& job, const ir::MethodSpec& method,
                                               int32_t seeds, const TrainOptions& options) {
  std::vector<MethodTraining> out;
  for (int32_t k = 0; k < std::max(1, seeds); ++k) {
    ir::Job j = job;
    j.seed = job.seed + static_cast<uint64_t>(k);
    auto r = TrainMethod(j, method, options);
    if (!r.ok()) return r.status();
    out.push_back(std::move(*r));
  }
  return out;
}

}  // namespace pipecast::runtime
