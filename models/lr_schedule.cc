// Learning-rate schedules: see lr_schedule.h for the formulas.
#include "models/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

#include "common/check.h"

namespace pipecast::models {
namespace {

bool NonNegativeFinite(double x) { return std::isfinite(x) && x >= 0; }

}  // namespace

LrSchedule LrSchedule::Constant(double lr) {
  LrSchedule s;
  s.kind_ = LrScheduleKind::kConstant;
  s.lr_ = lr;
  return s;
}

Result<LrSchedule> LrSchedule::MultiStep(double lr, std::vector<int64_t> milestones, double gamma) {
  if (!NonNegativeFinite(lr)) return InvalidArgument("multistep: invalid learning rate");
  if (!NonNegativeFinite(gamma)) return InvalidArgument("multistep: invalid gamma");
  for (int64_t m : milestones) {
    if (m < 0) return InvalidArgument("multistep: negative milestone " + std::to_string(m));
  }
  std::sort(milestones.begin(), milestones.end());
  LrSchedule s;
  s.kind_ = LrScheduleKind::kMultiStep;
  s.lr_ = lr;
  s.gamma_ = gamma;
  s.milestones_ = std::move(milestones);
  return s;
}

Result<LrSchedule> LrSchedule::WarmupCosine(double peak, int64_t total_steps, int64_t warmup_steps,
                                            double floor_ratio) {
  if (!NonNegativeFinite(peak)) return InvalidArgument("warmup-cosine: invalid peak rate");
  if (!NonNegativeFinite(floor_ratio)) {
    return InvalidArgument("warmup-cosine: invalid floor ratio");
  }
  if (total_steps <= 0) return InvalidArgument("warmup-cosine: total steps must be positive");
  if (warmup_steps < 0 || warmup_steps >= total_steps) {
    return InvalidArgument("warmup-cosine: warm-up steps must be in [0, total steps), got " +
                           std::to_string(warmup_steps) + " of " + std::to_string(total_steps));
  }
  LrSchedule s;
  s.kind_ = LrScheduleKind::kWarmupCosine;
  s.lr_ = peak;
  s.total_ = total_steps;
  s.warmup_ = warmup_steps;
  s.floor_ratio_ = floor_ratio;
  return s;
}

Result<LrSchedule> LrSchedule::Paci(double peak, int64_t total_steps) {
  if (total_steps < 2) return InvalidArgument("paci schedule: needs at least 2 steps");
  // 1% of the steps, rounded up so that short runs still warm up.
  const int64_t warmup = std::max<int64_t>(1, (total_steps + 99) / 100);
  return WarmupCosine(peak, total_steps, warmup, 0.1);
}

double LrSchedule::LrAt(int64_t step) const {
  PIPECAST_CHECK(step >= 0) << "step " << step;
  switch (kind_) {
    case LrScheduleKind::kConstant:
      return lr_;
    case LrScheduleKind::kMultiStep: {
      const auto passed =
          std::upper_bound(milestones_.begin(), milestones_.end(), step) - milestones_.begin();
      double lr = lr_;
      for (int64_t i = 0; i < passed; ++i) lr *= gamma_;  // as torch: one multiply per milestone
      return lr;
    }
    case LrScheduleKind::kWarmupCosine: {
      const double floor = lr_ * floor_ratio_;
      if (step < warmup_) {
        return lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
      }
      if (step >= total_) return floor;
      const double ratio =
          static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
      const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));
      return floor + coeff * (lr_ - floor);
    }
  }
  return lr_;
}

std::string LrSchedule::ToString() const {
  std::ostringstream os;
  switch (kind_) {
    case LrScheduleKind::kConstant:
      os << "constant(lr=" << lr_ << ")";
      break;
    case LrScheduleKind::kMultiStep:
      os << "multistep(lr=" << lr_ << ", gamma=" << gamma_ << ", milestones=[";
      for (size_t i = 0; i < milestones_.size(); ++i) os << (i ? "," : "") << milestones_[i];
      os << "])";
      break;
    case LrScheduleKind::kWarmupCosine:
      os << "warmup-cosine(peak=" << lr_ << ", total=" << total_ << ", warmup=" << warmup_
         << ", floor_ratio=" << floor_ratio_ << ")";
      break;
  }
  return os.str();
}

double PipeMareStageLr(double lr, double tau, int64_t step, int64_t warmup_steps) {
  PIPECAST_CHECK(tau >= 0 && step >= 0) << "tau " << tau << ", step " << step;
  if (warmup_steps <= 0 || step >= warmup_steps) return lr;
  const double p = 1.0 - static_cast<double>(step) / static_cast<double>(warmup_steps);
  return lr * std::pow(std::max(tau, 1.0), -p);
}

}  // namespace pipecast::models
