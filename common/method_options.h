// Typed method options: what a program's method parameters mean, parsed once.
//
// Generators (generators.h) fill MethodOptions from the validated `key=value` parameters, and the
// schedule-file readers do the same through MethodOptionsFor, so the executor, the simulator and
// the reports read typed fields and never compare method names or parse parameter strings.
// Program::params keeps the parameters as the user wrote them, for labels and round-trips.
//
// Plain data: no CUDA, Eigen or Boost. Enum values are stable.
#pragma once

#include <cstdint>
#include <string_view>

namespace pipecast::ir {

// How weight prediction reads ΔW from the optimizer state after the latest step
// (docs/optimizers.md has each rule's formula per optimizer).
enum class DeltaRule : uint8_t {
  kPaper = 0,  // PipeOptim Table I: SGD's momentum buffer, Adam's m̂/(√v̂+ε), no decay term
  kExact = 1,  // the last applied step over its learning rate, decoupled decay included
  kCode = 2,   // the official PipeOptim code's look-ahead (SGD: μ·b + (1−τ)·g)
  kSpecTrain = 3,  // SpecTrain: γ·b + g (SGD with momentum)
  kXPipe = 4,      // XPipe: Adam's moments with bias corrections 1−β^t (no amsgrad maximum)
};

// "paper", "exact", "code", "spectrain", "xpipe".
std::string_view DeltaRuleName(DeltaRule rule);

// How PipeMare's velocity decay γ is applied per stage (docs/methods.md).
enum class DecayScaling : uint8_t {
  kShared = 0,    // one γ for every stage (the executor's default)
  kPerStage = 1,  // γ_k = γ^(1/τ_k), τ_k the stage's delay from the version plan
};

// PipeMare's T1 learning-rate rescheduling and T2 discrepancy correction.
struct PipeMareOptions {
  bool correction = true;       // T2: backward at W − gap·δ
  int64_t lr_warmup_steps = 0;  // T1's K: stage k's rate is α·τ_k^(−max(0, 1 − t/K))
  double decay = 0.5;           // γ of δ ← γ·δ + (1−γ)·(W_new − W_old)
  DecayScaling decay_scaling = DecayScaling::kShared;
  friend bool operator==(const PipeMareOptions&, const PipeMareOptions&) = default;
};

struct MethodOptions {
  // Predicting methods (SpecTrain, XPipe, PipeOptim): the ΔW rule they ask for. A rule an
  // optimizer does not define falls back to kPaper (models::EffectiveDeltaRule), e.g. SpecTrain's
  // momentum look-ahead under Adam.
  DeltaRule delta = DeltaRule::kPaper;
  PipeMareOptions pipemare;
  int32_t chunks = 1;           // interleaved: virtual stages per device
  int32_t accumulation = 0;     // PACI: backwards per step (0 for other methods)
  int32_t allowed_lagging = 0;  // PACI: in-flight forward cap for every stage (0 = auto, D−k)
  bool vertical_sync = false;   // PipeDream
  // ZB-1p, ZB-2p: the optimizer step is post-validated (Zero Bubble's post-validation): each stage
  // steps without waiting for the global check and can roll back; the simulator charges every
  // step its rollback cost (docs/cost-model.md).
  bool post_validation = false;
  // AvgPipe: the rate α of the elastic averaging each AV applies (docs/methods.md); 0 = none.
  double elastic_alpha = 0;
  // WPipe: the executor keeps a record whose last action sends to another device until the
  // sender's next Step (or until the Step after the receiver's, if that comes later), because
  // the receiver takes the message only after work that waits on this device (execution_plan.cc).
  bool records_until_step = false;
  // WPipe: for the steady throughput (docs/metrics.md) a minibatch completes when the second
  // group's backwards of it end; the first group's end a window later, and the last window,
  // which holds only those, is short, so counting them would overstate the steady rate.
  bool completion_by_second_group = false;
  friend bool operator==(const MethodOptions&, const MethodOptions&) = default;
};

}  // namespace pipecast::ir
