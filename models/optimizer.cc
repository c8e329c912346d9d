// Optimizer implementations. Each Do* loop follows torch's single-tensor implementation
// (torch/optim/{sgd,adam,adamw,rmsprop}.py, `_single_tensor_*`; Lion: the Lion paper's reference
// code) one tensor op at a time, with each op applied to one element in float: the element
// functions and the per-step coefficients are models/optimizer_math.h's, shared with the CUDA
// kernels.
#include "models/optimizer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/check.h"
#include "models/optimizer_math.h"

namespace pipecast::models {
namespace {

// Python float -> float tensor op argument: rounded once.
float F(double x) { return static_cast<float>(x); }

std::string Fmt(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// SGD (SgdStep). State: momentum_buffer (with momentum), last_grad, last_step.
class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerConfig& c, size_t n) : Optimizer(c, n, Names(c)) {}

 private:
  static std::vector<std::string> Names(const OptimizerConfig& c) {
    if (c.momentum != 0) return {"momentum_buffer", "last_grad", "last_step"};
    return {"last_grad", "last_step"};
  }
  bool has_momentum() const { return config().momentum != 0; }
  size_t kGrad() const { return has_momentum() ? 1 : 0; }
  size_t kStep() const { return has_momentum() ? 2 : 1; }

  void DoStep(std::span<float> params, std::span<const float> grad, double lr) override {
    const SgdCoefficients k = SgdCoefficientsFor(config(), steps(), lr);
    float* buf = has_momentum() ? state(0).data() : nullptr;
    float* last_grad = state(kGrad()).data();
    float* last_step = state(kStep()).data();
    float no_buf = 0.0f;
    for (size_t i = 0; i < params.size(); ++i) {
      last_grad[i] = grad[i];
      last_step[i] = SgdStep(params[i], grad[i], buf != nullptr ? buf[i] : no_buf, k);
    }
  }

  bool DoSupports(DeltaRule rule) const override {
    return rule == DeltaRule::kPaper || rule == DeltaRule::kExact || rule == DeltaRule::kCode ||
           rule == DeltaRule::kSpecTrain;
  }

  void DoDeltaW(DeltaRule rule, std::span<float> out) const override {
    const SgdDeltaCoefficients k = SgdDeltaCoefficientsFor(config(), rule);
    const float* buf = has_momentum() ? state(0).data() : nullptr;
    const float* last_grad = state(kGrad()).data();
    const float* last_step = state(kStep()).data();
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = SgdDeltaW(rule, buf != nullptr ? buf[i] : 0.0f, last_grad[i], last_step[i], k);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Adam and AdamW (AdamStep). State: exp_avg, exp_avg_sq, max_exp_avg_sq (amsgrad), last_step.
class Adam final : public Optimizer {
 public:
  Adam(const OptimizerConfig& c, size_t n) : Optimizer(c, n, Names(c)) {}

 private:
  static constexpr size_t kExpAvg = 0, kExpAvgSq = 1;
  static std::vector<std::string> Names(const OptimizerConfig& c) {
    if (c.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "last_step"};
    return {"exp_avg", "exp_avg_sq", "last_step"};
  }
  size_t kMax() const { return 2; }
  size_t kStep() const { return config().amsgrad ? 3 : 2; }

  void DoStep(std::span<float> params, std::span<const float> grad, double lr) override {
    const AdamCoefficients k = AdamCoefficientsFor(config(), steps(), lr);
    float* m = state(kExpAvg).data();
    float* v = state(kExpAvgSq).data();
    float* vmax = config().amsgrad ? state(kMax()).data() : nullptr;
    float* last_step = state(kStep()).data();
    float no_max = 0.0f;
    for (size_t i = 0; i < params.size(); ++i) {
      last_step[i] =
          AdamStep(params[i], grad[i], m[i], v[i], vmax != nullptr ? vmax[i] : no_max, k);
    }
  }

  bool DoSupports(DeltaRule rule) const override {
    return rule == DeltaRule::kPaper || rule == DeltaRule::kExact || rule == DeltaRule::kCode ||
           rule == DeltaRule::kXPipe;
  }

  void DoDeltaW(DeltaRule rule, std::span<float> out) const override {
    const AdamCoefficients k = AdamCoefficientsFor(config(), steps(), 0.0);
    const float* m = state(kExpAvg).data();
    const float* v = state(kExpAvgSq).data();
    const float* vmax = config().amsgrad ? state(kMax()).data() : nullptr;
    const float* last_step = state(kStep()).data();
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = AdamDeltaW(rule, m[i], v[i], vmax != nullptr ? vmax[i] : 0.0f, last_step[i], k);
    }
  }
};

// ---------------------------------------------------------------------------------------------
// RMSprop (RmspropStep). State: square_avg, momentum_buffer (momentum), grad_avg (centered),
// last_step.
class Rmsprop final : public Optimizer {
 public:
  Rmsprop(const OptimizerConfig& c, size_t n) : Optimizer(c, n, Names(c)) {}

 private:
  static std::vector<std::string> Names(const OptimizerConfig& c) {
    std::vector<std::string> names = {"square_avg"};
    if (c.momentum > 0) names.push_back("momentum_buffer");
    if (c.centered) names.push_back("grad_avg");
    names.push_back("last_step");
    return names;
  }
  size_t kBuf() const { return 1; }
  size_t kGradAvg() const { return config().momentum > 0 ? 2 : 1; }
  size_t kStep() const { return 1 + (config().momentum > 0) + config().centered; }

  void DoStep(std::span<float> params, std::span<const float> grad, double lr) override {
    const OptimizerConfig& c = config();
    const RmspropCoefficients k = RmspropCoefficientsFor(c, lr);
    float* sa = state(0).data();
    float* buf = c.momentum > 0 ? state(kBuf()).data() : nullptr;
    float* ga = c.centered ? state(kGradAvg()).data() : nullptr;
    float* last_step = state(kStep()).data();
    float no_buf = 0.0f, no_ga = 0.0f;
    for (size_t i = 0; i < params.size(); ++i) {
      last_step[i] = RmspropStep(params[i], grad[i], sa[i], buf != nullptr ? buf[i] : no_buf,
                                 ga != nullptr ? ga[i] : no_ga, k);
    }
  }

  bool DoSupports(DeltaRule rule) const override {
    return rule == DeltaRule::kPaper || rule == DeltaRule::kExact;
  }

  void DoDeltaW(DeltaRule /*rule*/, std::span<float> out) const override {
    std::copy_n(state(kStep()).begin(), out.size(), out.begin());
  }
};

// ---------------------------------------------------------------------------------------------
// Lion (LionStep), θ_t = θ_{t−1} − lr·(sign(c) + λ·θ_{t−1}); torch has no Lion.
// State: exp_avg, last_sign, last_step.
class Lion final : public Optimizer {
 public:
  Lion(const OptimizerConfig& c, size_t n)
      : Optimizer(c, n, {"exp_avg", "last_sign", "last_step"}) {}

 private:
  static constexpr size_t kExpAvg = 0, kSign = 1, kStep = 2;

  void DoStep(std::span<float> params, std::span<const float> grad, double lr) override {
    const LionCoefficients k = LionCoefficientsFor(config(), lr);
    float* m = state(kExpAvg).data();
    float* last_sign = state(kSign).data();
    float* last_step = state(kStep).data();
    for (size_t i = 0; i < params.size(); ++i) {
      last_step[i] = LionStep(params[i], grad[i], m[i], last_sign[i], k);
    }
  }

  bool DoSupports(DeltaRule rule) const override {
    return rule == DeltaRule::kPaper || rule == DeltaRule::kExact;
  }

  void DoDeltaW(DeltaRule rule, std::span<float> out) const override {
    const float* sign = state(kSign).data();
    const float* last_step = state(kStep).data();
    for (size_t i = 0; i < out.size(); ++i) out[i] = LionDeltaW(rule, sign[i], last_step[i]);
  }
};

Status Validate(const OptimizerConfig& c) {
  const std::string kind(OptimizerKindName(c.kind));
  auto bad = [&](const std::string& what) {
    return InvalidArgument("optimizer " + kind + ": " + what);
  };
  auto finite = [](double x) { return std::isfinite(x); };
  if (!finite(c.lr) || c.lr < 0) return bad("invalid learning rate " + Fmt(c.lr));
  if (!finite(c.weight_decay) || c.weight_decay < 0) {
    return bad("invalid weight_decay " + Fmt(c.weight_decay));
  }
  const bool sgd = c.kind == OptimizerKind::kSgd;
  const bool rmsprop = c.kind == OptimizerKind::kRmsprop;
  const bool adam = c.kind == OptimizerKind::kAdam || c.kind == OptimizerKind::kAdamW;
  const bool lion = c.kind == OptimizerKind::kLion;
  if (!finite(c.momentum) || c.momentum < 0) return bad("invalid momentum " + Fmt(c.momentum));
  if (c.momentum != 0 && !(sgd || rmsprop)) {
    return bad("momentum does not apply (only sgd and rmsprop take it; adam uses beta1)");
  }
  if (c.dampening != 0 && !sgd) return bad("dampening applies only to sgd");
  if (!finite(c.dampening)) return bad("invalid dampening " + Fmt(c.dampening));
  if (c.nesterov && !sgd) return bad("nesterov applies only to sgd");
  if (c.nesterov && (c.momentum <= 0 || c.dampening != 0)) {
    return bad("Nesterov momentum requires a momentum and zero dampening");
  }
  if (c.amsgrad && !adam) return bad("amsgrad applies only to adam and adamw");
  if (c.centered && !rmsprop) return bad("centered applies only to rmsprop");
  if (adam || rmsprop) {
    if (!finite(c.eps) || c.eps < 0) return bad("invalid epsilon " + Fmt(c.eps));
  }
  if (adam) {
    if (!(c.beta1 >= 0 && c.beta1 < 1)) return bad("invalid beta1 " + Fmt(c.beta1));
    if (!(c.beta2 >= 0 && c.beta2 < 1)) return bad("invalid beta2 " + Fmt(c.beta2));
  }
  if (lion) {  // the reference code allows [0, 1]
    if (!(c.beta1 >= 0 && c.beta1 <= 1)) return bad("invalid beta1 " + Fmt(c.beta1));
    if (!(c.beta2 >= 0 && c.beta2 <= 1)) return bad("invalid beta2 " + Fmt(c.beta2));
  }
  if (rmsprop && !(finite(c.alpha) && c.alpha >= 0)) return bad("invalid alpha " + Fmt(c.alpha));
  return Status::Ok();
}

}  // namespace

// The coefficients of models/optimizer_math.h, each a double expression rounded to float once.
SgdCoefficients SgdCoefficientsFor(const OptimizerConfig& c, int64_t t, double lr) {
  SgdCoefficients k;
  k.weight_decay = F(c.weight_decay);
  k.momentum = F(c.momentum);
  k.dampening_complement = F(1.0 - c.dampening);
  k.neg_lr = F(-lr);
  k.decay = c.weight_decay != 0;
  k.has_momentum = c.momentum != 0;
  k.nesterov = c.nesterov;
  k.first = t == 1;
  return k;
}

SgdDeltaCoefficients SgdDeltaCoefficientsFor(const OptimizerConfig& c, DeltaRule rule) {
  SgdDeltaCoefficients k;
  k.momentum = F(c.momentum);
  k.grad_scale = rule == DeltaRule::kCode ? F(1.0 - c.dampening) : 1.0f;
  k.has_momentum = c.momentum != 0;
  return k;
}

AdamCoefficients AdamCoefficientsFor(const OptimizerConfig& c, int64_t t, double lr) {
  const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(t));
  AdamCoefficients k;
  k.one_minus_beta1 = F(1.0 - c.beta1);
  k.beta2 = F(c.beta2);
  k.one_minus_beta2 = F(1.0 - c.beta2);
  k.bc2_sqrt = F(std::sqrt(bc2));
  k.eps = F(c.eps);
  k.inv_bc1 = F(1.0 / bc1);
  k.neg_step_size = F(-(lr / bc1));
  k.weight_decay = F(c.weight_decay);
  k.decay = F(1.0 - lr * c.weight_decay);
  k.has_decay = c.weight_decay != 0;
  k.decoupled = c.kind == OptimizerKind::kAdamW;
  k.amsgrad = c.amsgrad;
  return k;
}

RmspropCoefficients RmspropCoefficientsFor(const OptimizerConfig& c, double lr) {
  RmspropCoefficients k;
  k.weight_decay = F(c.weight_decay);
  k.alpha = F(c.alpha);
  k.one_minus_alpha = F(1.0 - c.alpha);
  k.eps = F(c.eps);
  k.momentum = F(c.momentum);
  k.neg_lr = F(-lr);
  k.decay = c.weight_decay != 0;
  k.has_momentum = c.momentum > 0;
  k.centered = c.centered;
  return k;
}

LionCoefficients LionCoefficientsFor(const OptimizerConfig& c, double lr) {
  LionCoefficients k;
  k.decay = F(1.0 - lr * c.weight_decay);
  k.weight_decay = F(c.weight_decay);
  k.beta1 = F(c.beta1);
  k.one_minus_beta1 = F(1.0 - c.beta1);
  k.beta2 = F(c.beta2);
  k.one_minus_beta2 = F(1.0 - c.beta2);
  k.neg_lr = F(-lr);
  k.has_decay = c.weight_decay != 0;
  return k;
}

PredictCoefficients PredictCoefficientsFor(double lr, int64_t s, int64_t steps) {
  PredictCoefficients k;
  k.neg_scale = F(-lr * static_cast<double>(s));
  k.copy = lr == 0 || s == 0;
  k.zero_delta = steps == 0;
  return k;
}

std::string_view OptimizerKindName(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
    case OptimizerKind::kRmsprop:
      return "rmsprop";
    case OptimizerKind::kLion:
      return "lion";
  }
  return "?";
}

Result<OptimizerKind> ParseOptimizerKind(std::string_view name) {
  for (OptimizerKind k : {OptimizerKind::kSgd, OptimizerKind::kAdam, OptimizerKind::kAdamW,
                          OptimizerKind::kRmsprop, OptimizerKind::kLion}) {
    if (OptimizerKindName(k) == name) return k;
  }
  return InvalidArgument("unknown optimizer '" + std::string(name) +
                         "': expected sgd, adam, adamw, rmsprop or lion");
}

EffectiveRule EffectiveDeltaRule(DeltaRule requested, OptimizerKind kind) {
  const bool sgd = kind == OptimizerKind::kSgd;
  const bool adam = kind == OptimizerKind::kAdam || kind == OptimizerKind::kAdamW;
  if ((requested == DeltaRule::kSpecTrain && !sgd) || (requested == DeltaRule::kXPipe && !adam))
    return {DeltaRule::kPaper, true};
  return {requested, false};
}

Result<DeltaRule> ParseDeltaRule(std::string_view name) {
  for (DeltaRule r : {DeltaRule::kPaper, DeltaRule::kExact, DeltaRule::kCode, DeltaRule::kSpecTrain,
                      DeltaRule::kXPipe}) {
    if (DeltaRuleName(r) == name) return r;
  }
  return InvalidArgument("unknown delta rule '" + std::string(name) +
                         "': expected paper, exact, code, spectrain or xpipe");
}

OptimizerConfig DefaultOptimizerConfig(OptimizerKind kind) {
  OptimizerConfig c;
  c.kind = kind;
  switch (kind) {
    case OptimizerKind::kSgd:
    case OptimizerKind::kAdam:
      c.lr = 1e-3;
      break;
    case OptimizerKind::kAdamW:
      c.lr = 1e-3;
      c.weight_decay = 1e-2;
      break;
    case OptimizerKind::kRmsprop:
      c.lr = 1e-2;
      break;
    case OptimizerKind::kLion:
      c.lr = 1e-4;
      c.beta1 = 0.9;
      c.beta2 = 0.99;
      break;
  }
  return c;
}

Optimizer::Optimizer(const OptimizerConfig& config, size_t num_params,
                     std::vector<std::string> names)
    : config_(config), num_params_(num_params) {
  for (std::string& name : names) {
    state_.emplace_back(std::move(name), std::vector<float>(num_params, 0.0f));
  }
}

Result<std::unique_ptr<Optimizer>> Optimizer::Create(const OptimizerConfig& config,
                                                     size_t num_params) {
  PIPECAST_RETURN_IF_ERROR(Validate(config));
  std::unique_ptr<Optimizer> opt;
  switch (config.kind) {
    case OptimizerKind::kSgd:
      opt = std::make_unique<Sgd>(config, num_params);
      break;
    case OptimizerKind::kAdam:
    case OptimizerKind::kAdamW:
      opt = std::make_unique<Adam>(config, num_params);
      break;
    case OptimizerKind::kRmsprop:
      opt = std::make_unique<Rmsprop>(config, num_params);
      break;
    case OptimizerKind::kLion:
      opt = std::make_unique<Lion>(config, num_params);
      break;
  }
  if (opt == nullptr) return InvalidArgument("unknown optimizer kind");
  return opt;
}

void Optimizer::Step(std::span<float> params, std::span<const float> grad, double lr) {
  PIPECAST_CHECK(params.size() == num_params_ && grad.size() == num_params_)
      << "params " << params.size() << ", grad " << grad.size() << ", optimizer " << num_params_;
  PIPECAST_CHECK(lr >= 0) << "lr " << lr;
  ++steps_;
  DoStep(params, grad, lr);
}

Status Optimizer::SupportsRule(DeltaRule rule) const {
  if (DoSupports(rule)) return Status::Ok();
  return InvalidArgument(
      "delta rule '" + std::string(DeltaRuleName(rule)) + "' is not defined for optimizer " +
      std::string(OptimizerKindName(config_.kind)) + " (see docs/optimizers.md)");
}

void Optimizer::DeltaW(std::span<const float> params, DeltaRule rule, std::span<float> out) const {
  PIPECAST_CHECK(params.size() == num_params_ && out.size() == num_params_)
      << "params " << params.size() << ", out " << out.size() << ", optimizer " << num_params_;
  PIPECAST_CHECK(DoSupports(rule)) << SupportsRule(rule).message();
  if (steps_ == 0) {
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  DoDeltaW(rule, out);
}

void Optimizer::Predict(std::span<const float> params, double lr, int s, DeltaRule rule,
                        std::span<float> out) const {
  PIPECAST_CHECK(params.size() == num_params_ && out.size() == num_params_)
      << "params " << params.size() << ", out " << out.size() << ", optimizer " << num_params_;
  PIPECAST_CHECK(out.data() + out.size() <= params.data() ||
                 params.data() + params.size() <= out.data())
      << "Predict is out of place";
  const PredictCoefficients k = PredictCoefficientsFor(lr, s, steps_);
  if (k.copy) {
    PIPECAST_CHECK(DoSupports(rule)) << SupportsRule(rule).message();
    std::copy(params.begin(), params.end(), out.begin());
    return;
  }
  DeltaW(params, rule, out);
  for (size_t i = 0; i < out.size(); ++i) out[i] = AddScaled(params[i], k.neg_scale, out[i]);
}

std::vector<StateTensor> Optimizer::StateTensors() const { return state_; }

Status Optimizer::LoadState(int64_t steps, const std::vector<StateTensor>& tensors) {
  const std::string who = "optimizer " + std::string(OptimizerKindName(config_.kind)) + ": ";
  if (steps < 0) return InvalidArgument(who + "negative step count " + std::to_string(steps));
  if (tensors.size() != state_.size()) {
    return InvalidArgument(who + "expected " + std::to_string(state_.size()) +
                           " state tensors, got " + std::to_string(tensors.size()));
  }
  std::vector<const std::vector<float>*> source(state_.size(), nullptr);
  for (const StateTensor& t : tensors) {
    auto it = std::find_if(state_.begin(), state_.end(),
                           [&](const StateTensor& s) { return s.first == t.first; });
    if (it == state_.end()) {
      return InvalidArgument(who + "unexpected state tensor '" + t.first + "'");
    }
    const size_t index = static_cast<size_t>(it - state_.begin());
    if (source[index] != nullptr) {
      return InvalidArgument(who + "state tensor '" + t.first + "' given twice");
    }
    if (t.second.size() != num_params_) {
      return InvalidArgument(who + "state tensor '" + t.first + "' has " +
                             std::to_string(t.second.size()) + " values, expected " +
                             std::to_string(num_params_));
    }
    source[index] = &t.second;
  }
  for (size_t i = 0; i < state_.size(); ++i) state_[i].second = *source[i];
  steps_ = steps;
  return Status::Ok();
}

}  // namespace pipecast::models
