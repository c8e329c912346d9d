// Optimizers over one stage's flat parameter buffer, and the ΔW that weight prediction uses.
//
// The executor keeps a stage's parameters and gradients as flat float buffers (models/layer.h),
// so an optimizer here owns only its state (momentum buffers, moments, step count) and updates
// whatever parameter buffer it is handed. Update rules are PyTorch's documented ones
// (torch.optim's documentation and source; docs/optimizers.md has every formula):
//   SGD (momentum, dampening, Nesterov, coupled L2), Adam (optional amsgrad, coupled L2),
//   AdamW (decoupled decay), RMSprop (optional momentum and centering), Lion (decoupled decay).
// Arithmetic is float, element by element, in the operation order of torch's single-tensor
// (foreach=False) implementation; scalar coefficients (lr, 1-beta, bias corrections) are
// computed in double and rounded to float once, as torch does when it passes a Python float to
// a float tensor op. The result is deterministic (no threads, no reductions), not bitwise torch.
//
// Weight prediction (SpecTrain, XPipe, PipeOptim; docs/methods.md cites the papers) computes
// Ŵ = W − lr·s·ΔW from the state after the latest step. DeltaRule picks how ΔW is read from
// that state; not every rule is defined for every optimizer (see SupportsRule).
//
// Thread-safety: const methods may run concurrently; Step and LoadState need exclusive access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/method_options.h"
#include "common/status.h"

namespace pipecast::models {

enum class OptimizerKind { kSgd, kAdam, kAdamW, kRmsprop, kLion };

// "sgd", "adam", "adamw", "rmsprop", "lion".
std::string_view OptimizerKindName(OptimizerKind kind);
Result<OptimizerKind> ParseOptimizerKind(std::string_view name);

// Hyperparameters, named as torch names them. Fields that do not apply to `kind` must keep their
// defaults (Create rejects e.g. nesterov for Adam), except beta1/beta2/eps/alpha, which are
// simply unused where they do not apply.
struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  double lr = 1e-3;  // the base rate a schedule scales; Step takes the rate to use explicitly
  // SGD and RMSprop.
  double momentum = 0;
  // SGD only.
  double dampening = 0;
  bool nesterov = false;
  // SGD, Adam, RMSprop: coupled L2 (added to the gradient). AdamW, Lion: decoupled.
  double weight_decay = 0;
  // Adam, AdamW, Lion. Lion's usual betas are (0.9, 0.99): see DefaultOptimizerConfig.
  double beta1 = 0.9;
  double beta2 = 0.999;
  // Adam, AdamW, RMSprop.
  double eps = 1e-8;
  // RMSprop's smoothing constant.
  double alpha = 0.99;
  bool centered = false;  // RMSprop only
  bool amsgrad = false;   // Adam, AdamW only
};

// torch's defaults for `kind` (SGD lr 1e-3; Adam lr 1e-3; AdamW lr 1e-3, weight_decay 1e-2;
// RMSprop lr 1e-2; Lion lr 1e-4, betas (0.9, 0.99), from the Lion paper's reference code).
OptimizerConfig DefaultOptimizerConfig(OptimizerKind kind);

// How ΔW is read from the optimizer state after the latest step (t steps taken, last raw
// gradient g_t, last applied step θ_{t-1} − θ_t = lr_t·d_t). Zero before the first step.
// The rules are ir::DeltaRule (common/method_options.h); per optimizer they read:
//   kPaper: PipeOptim Table I (arXiv 2312.00839). SGD: the momentum buffer b_t (d_t without momentum); Adam
//     and AdamW: m̂_t/(√v̂_t + ε) (v̂max with amsgrad) with no decoupled decay; RMSprop: its step
//     direction; Lion: sign(c_t) with no decoupled decay.
//   kExact: the last applied step divided by its learning rate, d_t, decoupled decay included
//     (AdamW: m̂/(√v̂+ε) + λ·θ_{t-1}; Lion: sign(c_t) + λ·θ_{t-1}). Equal to kPaper elsewhere,
//     except for Nesterov SGD (g + μ·b_t instead of b_t).
//   kCode: the official PipeOptim code. SGD: μ·b_t + (1−τ)·g_t, a one-step look-ahead of the
//     buffer from the raw last gradient; Adam/AdamW: identical to kPaper.
//   kSpecTrain: SpecTrain's port, SGD only: γ·b_t + g_t (momentum look-ahead, dampening ignored).
//   kXPipe: XPipe, Adam/AdamW only: v̄_t/(√m̄_t + ε) with bias corrections 1−β^t (the paper
//     prints 1−γ without the exponent; we read it as Adam's 1−γ^t). With these corrections it
//     equals kPaper except that amsgrad's running maximum is not used.
// docs/optimizers.md has the table of which rule is defined for which optimizer.
using DeltaRule = ir::DeltaRule;
using ir::DeltaRuleName;

// The rule an optimizer of `kind` uses when a method asks for `requested`: the method-implied
// rules fall back to kPaper where the optimizer lacks them (SpecTrain's momentum look-ahead
// needs SGD; XPipe's moments need Adam or AdamW: under SGD XPipe reads the momentum buffer);
// every other rule is used as asked (Optimizer::SupportsRule then checks it).
struct EffectiveRule {
  DeltaRule rule = DeltaRule::kPaper;
  bool fell_back = false;  // the optimizer does not define `requested`
};
EffectiveRule EffectiveDeltaRule(DeltaRule requested, OptimizerKind kind);

// Parses "paper", "exact", "code", "spectrain" or "xpipe".
Result<DeltaRule> ParseDeltaRule(std::string_view name);

// A named flat state tensor, for checkpoints.
using StateTensor = std::pair<std::string, std::vector<float>>;

// State for one stage's flat parameters. Create one per stage (or per weight group).
class Optimizer {
 public:
  // Validates `config` the way torch's constructors do (lr, eps, weight_decay, momentum >= 0;
  // betas in [0, 1); Nesterov requires momentum > 0 and dampening = 0; options that do not apply
  // to the kind are errors) and allocates zeroed state for `num_params` parameters.
  static Result<std::unique_ptr<Optimizer>> Create(const OptimizerConfig& config,
                                                   size_t num_params);

  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  const OptimizerConfig& config() const { return config_; }
  size_t num_params() const { return num_params_; }
  // Optimizer steps taken (torch's `step` state; SGD counts too).
  int64_t steps() const { return steps_; }

  // One update with learning rate `lr` (from the schedule), in place.
  // REQUIRES: params.size() == grad.size() == num_params(), lr >= 0.
  void Step(std::span<float> params, std::span<const float> grad, double lr);

  // Ok if `rule` is defined for this optimizer, else InvalidArgument naming both. Executors
  // call this when they set up, so that DeltaW's check never fires.
  Status SupportsRule(DeltaRule rule) const;

  // out = ΔW under `rule`. `params` are the current weights; no rule needs them today (the
  // decoupled-decay term uses θ_{t-1}, recorded by Step) but they are size-checked.
  // REQUIRES: SupportsRule(rule).ok(); params.size() == out.size() == num_params().
  void DeltaW(std::span<const float> params, DeltaRule rule, std::span<float> out) const;

  // Predicted weights out = params − lr·s·ΔW, out of place (the executor restores nothing:
  // params are untouched). Exactly a copy when lr == 0 or s == 0. `s` may be any integer.
  // REQUIRES: as DeltaW; out does not overlap params.
  void Predict(std::span<const float> params, double lr, int s, DeltaRule rule,
               std::span<float> out) const;

  // The state as named flat tensors of num_params() values each, in a fixed order per kind:
  //   sgd: momentum_buffer (only with momentum), last_grad, last_step
  //   adam/adamw: exp_avg, exp_avg_sq, max_exp_avg_sq (only with amsgrad), last_step
  //   rmsprop: square_avg, momentum_buffer (with momentum), grad_avg (if centered), last_step
  //   lion: exp_avg, last_sign, last_step
  // last_* record the latest step for DeltaW. Together with steps() this is the whole state.
  std::vector<StateTensor> StateTensors() const;
  // Replaces the state. The names and sizes must be exactly those StateTensors() returns for
  // this configuration (any order), and steps >= 0; otherwise InvalidArgument and no change.
  Status LoadState(int64_t steps, const std::vector<StateTensor>& tensors);

 protected:
  Optimizer(const OptimizerConfig& config, size_t num_params, std::vector<std::string> names);

  // The update for step number steps() (already incremented, so 1 on the first step).
  virtual void DoStep(std::span<float> params, std::span<const float> grad, double lr) = 0;
  virtual bool DoSupports(DeltaRule rule) const = 0;
  // Called only after at least one step, with a supported rule.
  virtual void DoDeltaW(DeltaRule rule, std::span<float> out) const = 0;

  // State tensor `index`, in the order of the names given to the constructor.
  std::vector<float>& state(size_t index) { return state_[index].second; }
  const std::vector<float>& state(size_t index) const { return state_[index].second; }

 private:
  OptimizerConfig config_;
  size_t num_params_;
  int64_t steps_ = 0;
  std::vector<StateTensor> state_;
};

}  // namespace pipecast::models
