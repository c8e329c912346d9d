// Optimizer implementations. Each Do* loop follows torch's single-tensor implementation
// (torch/optim/{sgd,adam,adamw,rmsprop}.py, `_single_tensor_*`; Lion: the Lion paper's reference
// code) one tensor op at a time, with each op applied to one element in float.
#include "models/optimizer.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/check.h"

namespace pipecast::models {
namespace {

// Python float -> float tensor op argument: rounded once.
float F(double x) { return static_cast<float>(x); }

// torch.sign: -1, 0 or +1 (0 for ±0; NaN stays NaN).
float Sign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); }

std::string Fmt(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

// ---------------------------------------------------------------------------------------------
// SGD. torch `_single_tensor_sgd`:
//   g = grad (+ wd·p);  buf = first ? clone(g) : buf·μ + (1−τ)·g;  g = nesterov ? g + μ·buf : buf
//   p = p + (−lr)·g
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
    const OptimizerConfig& c = config();
    const bool first = steps() == 1;
    const float wd = F(c.weight_decay), mu = F(c.momentum), damp = F(1.0 - c.dampening);
    const float neg_lr = F(-lr);
    float* buf = has_momentum() ? state(0).data() : nullptr;
    float* last_grad = state(kGrad()).data();
    float* last_step = state(kStep()).data();
    for (size_t i = 0; i < params.size(); ++i) {
      float g = grad[i];
      last_grad[i] = g;
      if (c.weight_decay != 0) g = g + wd * params[i];
      if (buf != nullptr) {
        buf[i] = first ? g : buf[i] * mu + damp * g;
        g = c.nesterov ? g + mu * buf[i] : buf[i];
      }
      last_step[i] = g;
      params[i] = params[i] + neg_lr * g;
    }
  }

  bool DoSupports(DeltaRule rule) const override {
    return rule == DeltaRule::kPaper || rule == DeltaRule::kExact || rule == DeltaRule::kCode ||
           rule == DeltaRule::kSpecTrain;
  }

  void DoDeltaW(DeltaRule rule, std::span<float> out) const override {
    const OptimizerConfig& c = config();
    const std::vector<float>& last_grad = state(kGrad());
    const std::vector<float>& last_step = state(kStep());
    switch (rule) {
      case DeltaRule::kPaper:  // Table I: v_t, the momentum buffer (the step without momentum).
        std::copy_n((has_momentum() ? state(0) : last_step).begin(), out.size(), out.begin());
        return;
      case DeltaRule::kExact:
        std::copy_n(last_step.begin(), out.size(), out.begin());
        return;
      case DeltaRule::kCode:       // u·buf + (1−τ)·g
      case DeltaRule::kSpecTrain:  // γ·buf + g
      {
        const float mu = F(c.momentum);
        const float gc = rule == DeltaRule::kCode ? F(1.0 - c.dampening) : 1.0f;
        const float* g = last_grad.data();
        float* o = out.data();
        if (has_momentum()) {
          const float* buf = state(0).data();
          for (size_t i = 0; i < out.size(); ++i) o[i] = mu * buf[i] + gc * g[i];
        } else {
          for (size_t i = 0; i < out.size(); ++i) o[i] = mu * 0.0f + gc * g[i];
        }
        return;
      }
      case DeltaRule::kXPipe:
        break;
    }
    PIPECAST_CHECK(false) << "unsupported rule";
  }
};

// ---------------------------------------------------------------------------------------------
// Adam and AdamW. torch `_single_tensor_adam` / `_single_tensor_adamw` (torch >= 2.0):
//   AdamW: p = p·(1 − lr·λ)            Adam: g = grad + λ·p
//   m = lerp(m, g, 1−β1) = m + (1−β1)·(g − m);  v = v·β2 + (1−β2)·g·g
//   bc1 = 1 − β1^t;  bc2 = 1 − β2^t;  step_size = lr/bc1
//   amsgrad: vmax = max(vmax, v), then vmax replaces v below (torch keeps the max of the raw v)
//   denom = sqrt(v)/sqrt(bc2) + ε;  p = p + (−step_size)·(m/denom)
class Adam final : public Optimizer {
 public:
  Adam(const OptimizerConfig& c, size_t n) : Optimizer(c, n, Names(c)) {}

 private:
  static constexpr size_t kExpAvg = 0, kExpAvgSq = 1;
  static std::vector<std::string> Names(const OptimizerConfig& c) {
    if (c.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "last_step"};
    return {"exp_avg", "exp_avg_sq", "last_step"};
  }
  bool decoupled() const { return config().kind == OptimizerKind::kAdamW; }
  size_t kMax() const { return 2; }
  size_t kStep() const { return config().amsgrad ? 3 : 2; }

  struct Scalars {
    float one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, inv_bc1;
  };
  Scalars ScalarsAt(int64_t t) const {
    const OptimizerConfig& c = config();
    const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(c.beta2, static_cast<double>(t));
    return {F(1.0 - c.beta1),  F(c.beta2), F(1.0 - c.beta2),
            F(std::sqrt(bc2)), F(c.eps),   F(1.0 / bc1)};
  }

  // m/(sqrt(v)/sqrt(bc2) + ε), torch's addcdiv operand.
  static float Ratio(float m, float v, const Scalars& s) {
    return m / (std::sqrt(v) / s.bc2_sqrt + s.eps);
  }

  void DoStep(std::span<float> params, std::span<const float> grad, double lr) override {
    const OptimizerConfig& c = config();
    const int64_t t = steps();
    const Scalars s = ScalarsAt(t);
    const double bc1 = 1.0 - std::pow(c.beta1, static_cast<double>(t));
    const float neg_step_size = F(-(lr / bc1));
    const float wd = F(c.weight_decay), decay = F(1.0 - lr * c.weight_decay);
    float* m = state(kExpAvg).data();
    float* v = state(kExpAvgSq).data();
    float* vmax = c.amsgrad ? state(kMax()).data() : nullptr;
    float* last_step = state(kStep()).data();
    for (size_t i = 0; i < params.size(); ++i) {
      float g = grad[i];
      float p = params[i];
      const float p_prev = p;
      if (c.weight_decay != 0) {
        if (decoupled()) {
          p = p * decay;
        } else {
          g = g + wd * p;
        }
      }
      m[i] = m[i] + s.one_minus_beta1 * (g - m[i]);
      v[i] = v[i] * s.beta2 + s.one_minus_beta2 * g * g;
      float v_used = v[i];
      if (vmax != nullptr) v_used = vmax[i] = std::max(vmax[i], v[i]);
      const float r = Ratio(m[i], v_used, s);
      params[i] = p + neg_step_size * r;
      float d = r * s.inv_bc1;  // m̂/(√v̂+ε), the same float expression kPaper evaluates
      if (decoupled() && c.weight_decay != 0) d = d + wd * p_prev;
      last_step[i] = d;
    }
  }

  bool DoSupports(DeltaRule rule) const override {
    return rule == DeltaRule::kPaper || rule == DeltaRule::kExact || rule == DeltaRule::kCode ||
           rule == DeltaRule::kXPipe;
  }

  void DoDeltaW(DeltaRule rule, std::span<float> out) const override {
    const OptimizerConfig& c = config();
    if (rule == DeltaRule::kExact) {
      std::copy_n(state(kStep()).begin(), out.size(), out.begin());
      return;
    }
    PIPECAST_CHECK(rule == DeltaRule::kPaper || rule == DeltaRule::kCode ||
                   rule == DeltaRule::kXPipe);
    const Scalars s = ScalarsAt(steps());
    const std::vector<float>& m = state(kExpAvg);
    const bool use_max = c.amsgrad && rule != DeltaRule::kXPipe;
    const std::vector<float>& v = use_max ? state(kMax()) : state(kExpAvgSq);
    for (size_t i = 0; i < out.size(); ++i) out[i] = Ratio(m[i], v[i], s) * s.inv_bc1;
  }
};

// ---------------------------------------------------------------------------------------------
// RMSprop. torch `_single_tensor_rmsprop`:
//   g = grad (+ λ·p);  sa = sa·α + (1−α)·g·g
//   centered: ga = lerp(ga, g, 1−α);  avg = sqrt(sa − ga·ga)   else avg = sqrt(sa)
//   avg = avg + ε
//   momentum: buf = buf·μ + g/avg;  p = p + (−lr)·buf      else p = p + (−lr)·(g/avg)
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
    const float wd = F(c.weight_decay), alpha = F(c.alpha), one_minus_alpha = F(1.0 - c.alpha);
    const float eps = F(c.eps), mu = F(c.momentum), neg_lr = F(-lr);
    float* sa = state(0).data();
    float* buf = c.momentum > 0 ? state(kBuf()).data() : nullptr;
    float* ga = c.centered ? state(kGradAvg()).data() : nullptr;
    float* last_step = state(kStep()).data();
    for (size_t i = 0; i < params.size(); ++i) {
      float g = grad[i];
      if (c.weight_decay != 0) g = g + wd * params[i];
      sa[i] = sa[i] * alpha + one_minus_alpha * g * g;
      float avg;
      if (ga != nullptr) {
        ga[i] = ga[i] + one_minus_alpha * (g - ga[i]);
        avg = std::sqrt(sa[i] + -1.0f * ga[i] * ga[i]);
      } else {
        avg = std::sqrt(sa[i]);
      }
      avg = avg + eps;
      float d;
      if (buf != nullptr) {
        buf[i] = buf[i] * mu + g / avg;
        d = buf[i];
      } else {
        d = g / avg;
      }
      last_step[i] = d;
      params[i] = params[i] + neg_lr * d;
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
// Lion (Chen et al. 2023, reference code lion_pytorch.py; torch has no Lion):
//   p = p·(1 − lr·λ);  c = m·β1 + (1−β1)·g;  p = p + (−lr)·sign(c);  m = m·β2 + (1−β2)·g
// i.e. θ_t = θ_{t−1} − lr·(sign(c) + λ·θ_{t−1}).
class Lion final : public Optimizer {
 public:
  Lion(const OptimizerConfig& c, size_t n)
      : Optimizer(c, n, {"exp_avg", "last_sign", "last_step"}) {}

 private:
  static constexpr size_t kExpAvg = 0, kSign = 1, kStep = 2;

  void DoStep(std::span<float> params, std::span<const float> grad, double lr) override {
    const OptimizerConfig& c = config();
    const float decay = F(1.0 - lr * c.weight_decay), wd = F(c.weight_decay);
    const float beta1 = F(c.beta1), one_minus_beta1 = F(1.0 - c.beta1);
    const float beta2 = F(c.beta2), one_minus_beta2 = F(1.0 - c.beta2), neg_lr = F(-lr);
    float* m = state(kExpAvg).data();
    float* last_sign = state(kSign).data();
    float* last_step = state(kStep).data();
    for (size_t i = 0; i < params.size(); ++i) {
      const float g = grad[i];
      const float p_prev = params[i];
      float p = c.weight_decay != 0 ? p_prev * decay : p_prev;
      const float u = Sign(m[i] * beta1 + one_minus_beta1 * g);
      params[i] = p + neg_lr * u;
      m[i] = m[i] * beta2 + one_minus_beta2 * g;
      last_sign[i] = u;
      last_step[i] = c.weight_decay != 0 ? u + wd * p_prev : u;
    }
  }

  bool DoSupports(DeltaRule rule) const override {
    return rule == DeltaRule::kPaper || rule == DeltaRule::kExact;
  }

  void DoDeltaW(DeltaRule rule, std::span<float> out) const override {
    const std::vector<float>& src = rule == DeltaRule::kPaper ? state(kSign) : state(kStep);
    std::copy_n(src.begin(), out.size(), out.begin());
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
  if (lr == 0 || s == 0) {
    PIPECAST_CHECK(DoSupports(rule)) << SupportsRule(rule).message();
    std::copy(params.begin(), params.end(), out.begin());
    return;
  }
  DeltaW(params, rule, out);
  const float neg_scale = F(-lr * s);
  for (size_t i = 0; i < out.size(); ++i) out[i] = params[i] + neg_scale * out[i];
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
