// Learning-rate schedules, as pure functions of the optimizer step count, and PipeMare's
// per-stage rescheduling (T1; Yang et al., MLSys 2021, see docs/methods.md).
//
// `step` is the number of optimizer steps already taken on the stage (0 for the first update),
// so LrAt(optimizer.steps()) is the rate to pass to the next Optimizer::Step. An executor whose
// schedule is in epochs (torch's MultiStepLR stepped once per epoch, as in PipeOptim's scripts)
// passes the epoch instead. LrSchedule is a small value type; copies are independent and all
// methods are const and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace pipecast::models {

enum class LrScheduleKind { kConstant, kMultiStep, kWarmupCosine };

class LrSchedule {
 public:
  // lr at every step.
  static LrSchedule Constant(double lr);

  // torch.optim.lr_scheduler.MultiStepLR: lr·gamma^(number of milestones <= step), counting a
  // repeated milestone as many times as it appears (torch uses a Counter). Milestones need not
  // be sorted. Errors: lr or gamma negative or not finite, a negative milestone.
  static Result<LrSchedule> MultiStep(double lr, std::vector<int64_t> milestones, double gamma);

  // Linear warm-up then cosine decay to a floor (PACI's GPT setup, arXiv 2606.07881; nanoGPT's get_lr):
  //   step < warmup:          peak·(step+1)/warmup          (reaches peak at step warmup−1)
  //   warmup <= step < total: floor + (peak−floor)·½(1 + cos(π·(step−warmup)/(total−warmup)))
  //   step >= total:          floor,   where floor = peak·floor_ratio.
  // Errors: peak or floor_ratio negative or not finite, total <= 0, warmup < 0, warmup >= total.
  static Result<LrSchedule> WarmupCosine(double peak, int64_t total_steps, int64_t warmup_steps,
                                         double floor_ratio);

  // PACI's schedule: warm-up over 1% of the steps (at least one), cosine to 0.1·peak.
  static Result<LrSchedule> Paci(double peak, int64_t total_steps);

  // The rate for the update that follows `step` steps. REQUIRES: step >= 0.
  double LrAt(int64_t step) const;

  LrScheduleKind kind() const { return kind_; }
  // Human-readable, e.g. "multistep(lr=0.01, gamma=0.1, milestones=[40,60])".
  std::string ToString() const;

 private:
  LrSchedule() = default;

  LrScheduleKind kind_ = LrScheduleKind::kConstant;
  double lr_ = 0;  // the base (constant, multistep) or peak (warmup-cosine) rate
  double gamma_ = 1;
  std::vector<int64_t> milestones_;  // sorted, with repeats
  int64_t total_ = 0;
  int64_t warmup_ = 0;
  double floor_ratio_ = 0;
};

// PipeMare T1 (from memory of the paper, not verified against it; docs/methods.md): the rate for a stage whose delay is `tau`
// steps, `lr·tau^(−p_t)` with `p_t = max(0, 1 − step/warmup_steps)`. At step 0 the rate is
// lr/tau; from step warmup_steps on it is lr. A delay below 1 (the last stage, delay 0) is
// treated as 1, i.e. no scaling; warmup_steps <= 0 disables the rescheduling.
// REQUIRES: tau >= 0, step >= 0.
double PipeMareStageLr(double lr, double tau, int64_t step, int64_t warmup_steps);

}  // namespace pipecast::models
