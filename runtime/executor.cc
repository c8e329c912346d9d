#include "runtime/executor.h"

#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "common/check.h"

namespace pipecast::runtime {
namespace {

using ir::Action;
using ir::ActionKind;
using ir::WeightSource;
using Clock = std::chrono::steady_clock;
using Key = std::pair<int32_t, int32_t>;  // (stage, microbatch)

// x * 0 is 0 for finite x and NaN for NaN or Inf, so a sum of them is 0 exactly when every value
// is finite. Eight independent partial sums keep the loop fast (it runs over every gradient at
// every step).
bool AllFinite(std::span<const float> v) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += v[i + k] * 0.0f;
  for (; i < v.size(); ++i) acc[0] += v[i] * 0.0f;
  float total = 0;
  for (float a : acc) total += a;
  return total == 0.0f;
}

// Shared by the device threads: the first error wins and stops everyone.
struct RunControl {
  std::mutex mu;
  Status first_error;
  std::vector<std::string> errors;             // per device, "" if it did not fail
  std::vector<std::atomic<int32_t>> position;  // per device: index of the action running
  explicit RunControl(size_t devices) : errors(devices), position(devices) {
    for (auto& p : position) p.store(-1);  // -1: not run by this process (yet)
  }
  void Fail(int32_t device, Status s, Transport& t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      errors[device] = s.message();
      if (first_error.ok()) first_error = std::move(s);
    }
    t.Abort();
  }
};

// One device: its weight store (current weights per stage live in the shared weights vector;
// only this device touches its stages), gradient buffers, stashes, 2BW's older buffer, kept
// explicit versions, PipeMare's velocity, and the tensors in flight between its actions.
class DeviceWorker {
 public:
  DeviceWorker(int32_t device, const ir::Program& p,
               std::vector<std::unique_ptr<StageBackend>>& stages,
               std::vector<std::unique_ptr<StageOptimizer>>& optimizers,
               std::vector<std::vector<float>>& weights, const std::vector<float>& loss_scale,
               DataFeed& data, Transport& transport, const ExecutorConfig& config,
               RunControl& control, ExecutionResult& result, Clock::time_point t0)
      : d_(device), p_(p), stages_(stages), optimizers_(optimizers), weights_(weights),
        loss_scale_(loss_scale), data_(data), transport_(transport), config_(config),
        control_(control), result_(result), t0_(t0) {}

  Status Run();

 private:
  // The weights an F/B/I uses, and the version record for the trace.
  std::span<const float> Resolve(const Action& a, VersionUse* use);
  Status Step();
  Result<Tensor> Take(std::map<Key, Tensor>& box, const Key& key, bool gradient);
  std::string Where(const Action& a) const {
    return p_.method + ", device " + std::to_string(d_) + ", stage " + std::to_string(a.stage) +
           ", step " + std::to_string(n_);
  }
  double Lr() const { return config_.learning_rate(d_, n_); }

  const int32_t d_;
  const ir::Program& p_;
  std::vector<std::unique_ptr<StageBackend>>& stages_;
  std::vector<std::unique_ptr<StageOptimizer>>& optimizers_;
  std::vector<std::vector<float>>& weights_;
  const std::vector<float>& loss_scale_;
  DataFeed& data_;
  Transport& transport_;
  const ExecutorConfig& config_;
  RunControl& control_;
  ExecutionResult& result_;
  const Clock::time_point t0_;

  int32_t n_ = 0;  // steps taken
  std::vector<int32_t> my_stages_;
  std::map<int32_t, std::vector<float>> grad_;
  struct Copy {
    int32_t version = 0;
    int32_t horizon = 0;
    std::vector<float> weights;
  };
  std::map<Key, Copy> stash_;                    // weights an F used, kept for its B
  std::map<Key, uint8_t> stash_needed_;          // B of (stage, mb) uses the stash
  bool two_buffers_ = false;
  std::map<int32_t, Copy> older_;                // 2BW: the older buffer per stage
  std::map<Key, int32_t> explicit_last_use_;  // (version, stage) -> last action index using it
  int32_t index_ = 0;                          // the action being run
  std::map<std::pair<int32_t, int32_t>, std::vector<float>> kept_;  // (version, stage)
  std::map<int32_t, std::vector<float>> velocity_;  // PipeMare's delta per stage
  bool corrects_ = false;
  std::map<int32_t, std::vector<float>> scratch_;
  // Tensors between actions: inputs received or produced locally, outputs waiting for a send.
  std::map<Key, Tensor> act_in_, grad_in_, act_out_, grad_out_;
};

Result<Tensor> DeviceWorker::Take(std::map<Key, Tensor>& box, const Key& key, bool gradient) {
  auto it = box.find(key);
  if (it == box.end()) {
    return InvalidArgument("device " + std::to_string(d_) + " needs the " +
                           (gradient ? "gradient" : "activation") + " of microbatch " +
                           std::to_string(key.second) + " for stage " +
                           std::to_string(key.first) + " but no action produced or received it");
  }
  Tensor t = std::move(it->second);
  box.erase(it);
  return t;
}

std::span<const float> DeviceWorker::Resolve(const Action& a, VersionUse* use) {
  const int32_t s = a.stage;
  const Key key{s, a.microbatch};
  use->kind = a.kind;
  use->stage = s;
  use->microbatch = a.microbatch;
  use->counter = n_;
  use->version = n_;
  use->horizon = 0;
  std::vector<float>& current = weights_[s];
  switch (a.weights.source) {
    case WeightSource::kCurrent:
    case WeightSource::kBufferNewer:
      return current;
    case WeightSource::kBufferOlder: {
      auto it = older_.find(s);
      if (it == older_.end()) return current;  // before the first step both buffers are W0
      use->version = it->second.version;
      return it->second.weights;
    }
    case WeightSource::kPredicted: {
      std::vector<float>& out = scratch_[s];
      out.resize(current.size());
      optimizers_[s]->Predict(current, Lr(), a.weights.value, out);
      use->horizon = a.weights.value;
      return out;
    }
    case WeightSource::kCorrected: {
      std::vector<float>& out = scratch_[s];
      out = current;
      auto it = velocity_.find(s);
      const float gap = static_cast<float>(a.weights.value);
      if (it != velocity_.end())
        for (size_t i = 0; i < out.size(); ++i) out[i] -= gap * it->second[i];
      use->horizon = a.weights.value;
      return out;
    }
    case WeightSource::kVersion: {
      use->version = a.weights.value;
      if (a.weights.value == n_) return current;
      auto it = kept_.find({a.weights.value, s});
      PIPECAST_CHECK(it != kept_.end()) << "version " << a.weights.value << " not kept";
      // The copy is released after its last use (the caller copies what it must keep).
      if (explicit_last_use_[{a.weights.value, s}] == index_) {
        scratch_[s] = std::move(it->second);
        kept_.erase(it);
        return scratch_[s];
      }
      return it->second;
    }
    case WeightSource::kStashed: {
      auto it = stash_.find(key);
      PIPECAST_CHECK(it != stash_.end()) << "no stash for " << ir::ActionToken(a, true);
      use->version = it->second.version;
      use->horizon = it->second.horizon;
      return it->second.weights;
    }
  }
  return current;
}

Status DeviceWorker::Step() {
  for (int32_t s : my_stages_) {
    std::vector<float>& g = grad_[s];
    if (!AllFinite(g)) {
      return InvalidArgument("NaN or Inf in the gradient: " + p_.method + ", device " +
                             std::to_string(d_) + ", stage " + std::to_string(s) + ", step " +
                             std::to_string(n_ + 1));
    }
    std::vector<float>& w = weights_[s];
    // Versions that later actions name explicitly stay available.
    if (auto it = explicit_last_use_.find({n_, s});
        it != explicit_last_use_.end() && it->second > index_) {
      kept_[{n_, s}] = w;
    }
    if (two_buffers_) older_[s] = Copy{n_, 0, w};
    std::vector<float> before;
    if (corrects_) before = w;
    optimizers_[s]->Step(w, g, Lr());
    if (corrects_) {
      std::vector<float>& v = velocity_[s];
      v.resize(w.size(), 0.0f);
      const float gamma = static_cast<float>(config_.pipemare_decay);
      for (size_t i = 0; i < w.size(); ++i)
        v[i] = gamma * v[i] + (1.0f - gamma) * (w[i] - before[i]);
    }
    std::fill(g.begin(), g.end(), 0.0f);
  }
  ++n_;
  return Status::Ok();
}

Status DeviceWorker::Run() {
  const std::vector<Action>& prog = p_.devices[d_];
  for (int32_t s = 0; s < p_.num_stages; ++s) {
    if (p_.device_of(s) != d_) continue;
    my_stages_.push_back(s);
    grad_[s].assign(weights_[s].size(), 0.0f);
  }
  for (size_t i = 0; i < prog.size(); ++i) {
    const Action& a = prog[i];
    if (!ir::UsesWeights(a.kind)) continue;
    switch (a.weights.source) {
      case WeightSource::kStashed: stash_needed_[{a.stage, a.microbatch}] = 1; break;
      case WeightSource::kBufferOlder:
      case WeightSource::kBufferNewer: two_buffers_ = true; break;
      case WeightSource::kCorrected: corrects_ = true; break;
      case WeightSource::kVersion:
        explicit_last_use_[{a.weights.value, a.stage}] = static_cast<int32_t>(i);
        break;
      default: break;
    }
  }
  std::vector<VersionUse>& trace = result_.versions[d_];
  std::vector<ActionTime>& timing = result_.timing[d_];
  timing.resize(prog.size());
  const int32_t last = p_.num_stages - 1;
  auto now = [&] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0_).count();
  };

  for (size_t i = 0; i < prog.size(); ++i) {
    control_.position[d_].store(static_cast<int32_t>(i));
    index_ = static_cast<int32_t>(i);
    const Action& a = prog[i];
    const Key key{a.stage, a.microbatch};
    timing[i].start_ns = now();
    switch (a.kind) {
      case ActionKind::kForward: {
        Tensor x;
        if (a.stage == 0) {
          x = data_.Input(a.microbatch);
        } else {
          auto in = Take(act_in_, key, false);
          if (!in.ok()) return in.status();
          x = std::move(*in);
        }
        VersionUse use;
        std::span<const float> w = Resolve(a, &use);
        if (stash_needed_.count(key)) {
          stash_[key] = Copy{use.version, use.horizon, std::vector<float>(w.begin(), w.end())};
        }
        Tensor y = stages_[a.stage]->Forward(a.microbatch, w, x);
        trace.push_back(use);
        if (a.stage == last) {
          Tensor dlogits;
          const double loss = data_.Loss(a.microbatch, y, loss_scale_[a.microbatch], &dlogits);
          if (!std::isfinite(loss)) {
            return InvalidArgument("NaN or Inf in the loss of microbatch " +
                                   std::to_string(a.microbatch) + ": " + Where(a));
          }
          result_.losses[a.microbatch] = loss;
          grad_in_[key] = std::move(dlogits);
        } else if (p_.device_of(a.stage + 1) == d_) {
          act_in_[{a.stage + 1, a.microbatch}] = std::move(y);
        } else {
          act_out_[key] = std::move(y);
        }
        break;
      }
      case ActionKind::kBackward:
      case ActionKind::kBackwardInput: {
        auto dy = Take(grad_in_, key, true);
        if (!dy.ok()) return dy.status();
        VersionUse use;
        std::span<const float> w = Resolve(a, &use);
        Tensor dx = stages_[a.stage]->BackwardInput(a.microbatch, w, *dy, a.stage > 0);
        trace.push_back(use);
        if (a.kind == ActionKind::kBackward) {
          stages_[a.stage]->BackwardWeight(a.microbatch, grad_[a.stage]);
          stash_.erase(key);
        }
        if (a.stage > 0) {
          if (p_.device_of(a.stage - 1) == d_) {
            grad_in_[{a.stage - 1, a.microbatch}] = std::move(dx);
          } else {
            grad_out_[key] = std::move(dx);
          }
        }
        break;
      }
      case ActionKind::kWeightGrad:
        stages_[a.stage]->BackwardWeight(a.microbatch, grad_[a.stage]);
        stash_.erase(key);
        break;
      case ActionKind::kStep:
        if (Status s = Step(); !s.ok()) return s;
        break;
      case ActionKind::kSendActivation:
      case ActionKind::kSendGradient: {
        const bool grad = a.kind == ActionKind::kSendGradient;
        auto t = Take(grad ? grad_out_ : act_out_, key, grad);
        if (!t.ok()) return t.status();
        const int32_t to = grad ? a.stage - 1 : a.stage + 1;
        transport_.Send(d_, p_.device_of(to), MessageKey{grad, to, a.microbatch}, std::move(*t));
        break;
      }
      case ActionKind::kRecvActivation:
      case ActionKind::kRecvGradient: {
        const bool grad = a.kind == ActionKind::kRecvGradient;
        auto t = transport_.Recv(d_, MessageKey{grad, a.stage, a.microbatch}, config_.deadline);
        if (!t.ok()) return t.status();
        (grad ? grad_in_ : act_in_)[key] = std::move(*t);
        break;
      }
    }
    timing[i].end_ns = now();
  }
  control_.position[d_].store(static_cast<int32_t>(prog.size()));
  return Status::Ok();
}

// 1 / (gradients each step applies), per microbatch, read off the last stage's device: the loss
// of a microbatch is scaled so that a step applies the mean of its microbatches' gradients.
std::vector<float> LossScales(const ir::Program& p) {
  std::vector<float> scale(p.total_microbatches(), 1.0f);
  const int32_t last = p.num_stages - 1;
  std::vector<int32_t> group;
  for (const Action& a : p.devices[p.device_of(last)]) {
    if (ir::ProducesWeightGrad(a.kind) && a.stage == last) group.push_back(a.microbatch);
    if (a.kind == ActionKind::kStep || &a == &p.devices[p.device_of(last)].back()) {
      for (int32_t j : group) scale[j] = 1.0f / static_cast<float>(group.size());
      group.clear();
    }
  }
  return scale;
}

std::string Describe(const ir::Program& p, const RunControl& control) {
  std::string s;
  for (size_t d = 0; d < p.devices.size(); ++d) {
    const int32_t i = control.position[d].load();
    s += "\n  device " + std::to_string(d) + ": ";
    if (i < 0) {
      s += "not run by this process";
      continue;
    }
    if (i >= static_cast<int32_t>(p.devices[d].size())) {
      s += "finished";
      continue;
    }
    s += "at action " + std::to_string(i) + " (" + ir::ActionToken(p.devices[d][i], true) + ")";
    if (i > 0) s += ", after " + ir::ActionToken(p.devices[d][i - 1], true);
    if (!control.errors[d].empty()) s += ": " + control.errors[d];
  }
  return s;
}

}  // namespace

Result<ExecutionResult> Execute(const ir::Program& program,
                                std::vector<std::unique_ptr<StageBackend>>& stages,
                                std::vector<std::unique_ptr<StageOptimizer>>& optimizers,
                                std::vector<std::vector<float>> weights, DataFeed& data,
                                Transport& transport, const ExecutorConfig& config) {
  const auto num_stages = static_cast<size_t>(program.num_stages);
  PIPECAST_CHECK(stages.size() == num_stages && optimizers.size() == num_stages &&
                 weights.size() == num_stages)
      << "one backend, optimizer and weight buffer per stage";
  for (size_t s = 0; s < num_stages; ++s)
    PIPECAST_CHECK(static_cast<int64_t>(weights[s].size()) == stages[s]->num_params())
        << "stage " << s;
  const size_t devices = program.devices.size();
  ExecutionResult result;
  result.losses.assign(program.total_microbatches(), 0.0);
  result.versions.resize(devices);
  result.timing.resize(devices);
  const std::vector<float> scale = LossScales(program);
  RunControl control(devices);
  const Clock::time_point t0 = Clock::now();
  std::vector<int32_t> local = config.local_devices;
  if (local.empty())
    for (size_t d = 0; d < devices; ++d) local.push_back(static_cast<int32_t>(d));
  auto run_device = [&](int32_t d) {
    DeviceWorker worker(d, program, stages, optimizers, weights, scale, data, transport, config,
                        control, result, t0);
    Status s = worker.Run();
    if (!s.ok()) control.Fail(d, std::move(s), transport);
  };
  if (local.size() == 1) {
    run_device(local[0]);
  } else {
    std::vector<std::thread> threads;
    threads.reserve(local.size());
    for (int32_t d : local) threads.emplace_back(run_device, d);
    for (auto& t : threads) t.join();
  }
  result.wall_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  if (!control.first_error.ok()) {
    return Status(control.first_error.code(),
                  program.method + ": " + control.first_error.message() +
                      "\nwhere every device was:" + Describe(program, control));
  }
  result.weights = std::move(weights);
  return result;
}

}  // namespace pipecast::runtime
