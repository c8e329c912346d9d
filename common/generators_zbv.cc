// ZB-V (Qi, Wan, Huang, Lin, ICLR'24; "Pipeline Parallelism with Controllable Memory",
// NeurIPS'24): two chunks per device in a V, planned by the zero-bubble repository's V scheduler
// (sail-sg/zero-bubble-pipeline-parallelism, scheduler/zbv.py), restated.
//
// Device k holds virtual stage k (chunk 0, the way down) and 2D - 1 - k (chunk 1, the way back),
// so device 0 holds the first and the last stage and computes the loss. A microbatch's passes on
// a device come in the order F down, F back, B back (I of stage 2D-1-k), B down (I of stage k);
// each I leaves a W. The plan counts one unit of memory per chunk-microbatch from its F to its W
// and keeps at most 2D units per device (D microbatches of a whole device-stage: 1F1B's peak).
// It places a warm-up of F's, then 2M rounds of one B per device and at most one F per device,
// filling waits with W's; a variant that ends with less idle time than the idle times it was
// allowed is planned again with those as its allowance. docs/methods.md gives every rule.
#include <algorithm>
#include <array>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "common/generators_internal.h"

namespace pipecast::ir::internal {
namespace {

// Pass kinds and, per kind, the two legs: F leg 0 = chunk 0 (stage k), F leg 1 = chunk 1;
// B and W leg 0 = the backward's first leg (stage 2D-1-k), leg 1 = the second (stage k).
enum Cat : int { kF = 0, kB = 1, kW = 2 };

struct VPlan {
  std::vector<std::vector<Action>> order;
  std::vector<int64_t> bubble;  // per device
  int64_t max_bubble = 0;
  bool ok = false;
};

class VPlanner {
 public:
  VPlanner(int32_t devices, int32_t m, const PlanningCosts& c, bool fill_f, bool fill_b,
           std::vector<int64_t> approved)
      : p_(devices),
        m_(m),
        c_(c),
        fill_f_(fill_f),
        fill_b_(fill_b),
        approved_(std::move(approved)) {
    count_.assign(p_, {});
    end_.assign(static_cast<size_t>(6) * p_ * m_, -1);
    for (auto* x : {&cur_, &mem_, &bubble_}) x->assign(p_, 0);
    pending_.resize(p_);
    order_.resize(p_);
    max_approved_ = approved_.empty() ? -1 : *std::max_element(approved_.begin(), approved_.end());
  }
  VPlan Plan();

 private:
  int64_t Cost(Cat c) const { return c == kF ? c_.f : c == kB ? c_.b : c_.w; }
  int32_t& Count(int32_t dev, Cat c, int32_t leg) { return count_[dev][c * 2 + leg]; }
  int64_t& End(Cat c, int32_t leg, int32_t dev, int32_t mb) {
    return end_[((static_cast<size_t>(c) * 2 + leg) * p_ + dev) * m_ + mb];
  }
  // The virtual stage of a pass on device dev.
  int32_t Stage(Cat c, int32_t leg, int32_t dev) const {
    const bool down = c == kF ? leg == 0 : leg == 1;
    return down ? dev : 2 * p_ - 1 - dev;
  }
  // The producer of the input of the next (c, leg) pass on dev: its end, or -1 when it has none
  // on another device (-2 when it exists but is not placed yet).
  int64_t Dependency(Cat c, int32_t leg, int32_t dev) {
    const int32_t mb = Count(dev, c, leg);
    if (mb >= m_) return -2;
    if (leg == 1 && dev + 1 < p_) return End(c, 1, dev + 1, mb) < 0 ? -2 : End(c, 1, dev + 1, mb);
    if (leg == 0 && dev > 0) return End(c, 0, dev - 1, mb) < 0 ? -2 : End(c, 0, dev - 1, mb);
    return -1;
  }
  // Whether the pass before the next (c, leg) pass of its microbatch on this device (F down
  // before F back, F back before B back, B back before B down, the I before its W) is placed.
  bool AfterOwnPredecessor(Cat c, int32_t leg, int32_t dev) {
    const int32_t mb = Count(dev, c, leg);
    if (mb >= m_) return false;
    if (c == kF) return leg == 0 || End(kF, 0, dev, mb) >= 0;
    if (c == kB) return leg == 0 ? End(kF, 1, dev, mb) >= 0 : End(kB, 0, dev, mb) >= 0;
    return End(kB, leg, dev, mb) >= 0;
  }
  int64_t MaxBubble(int32_t dev) const {
    int64_t b = *std::max_element(bubble_.begin(), bubble_.end());
    if (!approved_.empty()) b = std::max(b, max_approved_ - approved_[dev]);
    return b;
  }
  void Put(Cat c, int32_t leg, int32_t dev);
  void PutW(int32_t dev);
  // W's into the wait of dev for an input produced at `dep` (>= 0); `take_overrun` allows the W
  // that overruns the wait when the wait exceeds the idle time allowed.
  void FillWait(int32_t dev, int64_t dep, bool take_overrun);
  void WarmUp();
  void BackwardRound();
  void ForwardRound();

  const int32_t p_, m_;
  const PlanningCosts c_;
  const bool fill_f_, fill_b_;
  const std::vector<int64_t> approved_;  // empty: the first plan
  int64_t max_approved_ = -1;
  std::vector<std::array<int32_t, 6>> count_;  // per device, per (kind, leg): passes placed
  std::vector<int64_t> end_;                   // end of every pass; -1 = not placed
  std::vector<int64_t> cur_, mem_, bubble_;    // per device
  std::vector<std::deque<std::pair<int32_t, int32_t>>> pending_;  // per device: W's (leg, mb)
  std::vector<std::vector<Action>> order_;
  bool failed_ = false;
};

// Places dev's next (c, leg) pass: it ends its cost after the device is free or after its input
// arrives (comm after the producer ends), whichever is later. A pass whose producer is not placed
// yet, or beyond M, or over the memory limit fails the plan.
void VPlanner::Put(Cat c, int32_t leg, int32_t dev) {
  const int64_t dep = c == kW ? -1 : Dependency(c, leg, dev);
  const int32_t mb = Count(dev, c, leg);
  const int64_t delta = c == kF ? 1 : c == kW ? -1 : 0;
  if (dep == -2 || mb >= m_ || mem_[dev] + delta > 2 * p_ || !AfterOwnPredecessor(c, leg, dev)) {
    failed_ = true;
    return;
  }
  const int64_t free_end = cur_[dev] + Cost(c);
  const int64_t t = dep >= 0 ? std::max(free_end, dep + c_.comm + Cost(c)) : free_end;
  if (Count(dev, kF, 0) > 0) bubble_[dev] += t - free_end;
  End(c, leg, dev, mb) = t;
  cur_[dev] = t;
  mem_[dev] += delta;
  const ActionKind kind = c == kF   ? ActionKind::kForward
                          : c == kB ? ActionKind::kBackwardInput
                                    : ActionKind::kWeightGrad;
  order_[dev].push_back({kind, Stage(c, leg, dev), mb, {}});
  if (c == kB) pending_[dev].emplace_back(leg, mb);
  ++Count(dev, c, leg);
}

void VPlanner::PutW(int32_t dev) {
  const int32_t leg = pending_[dev].front().first;
  pending_[dev].pop_front();
  Put(kW, leg, dev);
}

void VPlanner::FillWait(int32_t dev, int64_t dep, bool take_overrun) {
  if (dep < 0) return;
  while (!pending_[dev].empty() && dep + c_.comm >= cur_[dev] + c_.w) PutW(dev);
  if (!pending_[dev].empty() && dep + c_.comm - cur_[dev] > MaxBubble(dev) - bubble_[dev] &&
      take_overrun)
    PutW(dev);
}

// F_0 down every device; then from the last device up, F_0 back, preceded on devices 0..k by as
// many F's down as fit before F_0 back arrives (keeping room for 2 + 2k units); then devices
// 1.. catch up with the device before them in F's back and in F's in all, placing F's on the
// devices from the last to k, alternating the legs.
void VPlanner::WarmUp() {
  for (int32_t k = 0; k < p_; ++k) Put(kF, 0, k);
  for (int32_t k = p_ - 1; k >= 0; --k) {
    if (k < p_ - 1) {
      const int64_t arrival = End(kF, 1, k + 1, 0) + c_.comm;
      while (mem_[k] + (2 + 2 * static_cast<int64_t>(k)) <= 2 * p_ && cur_[k] + c_.f <= arrival &&
             Count(k, kF, 0) < m_ && !failed_)
        for (int32_t j = 0; j <= k; ++j) Put(kF, 0, j);
    }
    Put(kF, 1, k);
  }
  int32_t leg = 0;
  for (int32_t k = 1; k < p_ && !failed_; ++k) {
    auto total = [&](int32_t dev) { return Count(dev, kF, 0) + Count(dev, kF, 1); };
    while (!failed_ && (total(k) < total(k - 1) ||
                        (Count(k, kF, 1) <= Count(k - 1, kF, 1) && Count(k - 1, kF, 1) < m_))) {
      for (int32_t j = p_ - 1; j >= k; --j)
        if (Count(j, kF, leg) < m_) Put(kF, leg, j);
      leg = 1 - leg;
    }
  }
}

// One B per device: the second leg where the gradient from the device after has arrived (or the
// first leg is done), else the first leg; second legs from the last device up, then first legs
// from device 0 down, each after the W's that fit into its wait.
void VPlanner::BackwardRound() {
  std::vector<int32_t> first, second;
  for (int32_t k = 0; k < p_; ++k) {
    if (Count(k, kB, 1) >= Count(k, kB, 0)) {
      first.push_back(k);
    } else if (k == p_ - 1 || End(kB, 1, k + 1, Count(k, kB, 1)) >= 0 || Count(k, kB, 0) >= m_) {
      second.push_back(k);
    } else {
      first.push_back(k);
    }
  }
  std::vector<std::pair<int32_t, int32_t>> passes;  // (device, leg)
  for (auto it = second.rbegin(); it != second.rend(); ++it) passes.emplace_back(*it, 1);
  for (int32_t k : first) passes.emplace_back(k, 0);
  for (const auto& [k, leg] : passes) {
    FillWait(k, Dependency(kB, leg, k), leg == 1 || fill_b_);
    Put(kB, leg, k);
  }
}

// At most one F per device: F back when its input is there (always on the last device), else F
// down when its input is there, and F down when the device has as many F's back as down; first
// the W's that free memory for it and those that fit into its wait.
void VPlanner::ForwardRound() {
  for (int32_t k = 0; k < p_; ++k) {
    if (Count(k, kF, 1) >= m_) continue;
    int32_t leg = -1;
    if (Count(k, kF, 1) >= Count(k, kF, 0)) {
      leg = 0;
    } else if (k == p_ - 1 || End(kF, 1, k + 1, Count(k, kF, 1)) >= 0) {
      leg = 1;
    } else if (Count(k, kF, 0) < m_ && (k == 0 || End(kF, 0, k - 1, Count(k, kF, 0)) >= 0)) {
      leg = 0;
    }
    if (leg < 0) continue;
    while (mem_[k] + 1 > 2 * p_ && !pending_[k].empty()) PutW(k);
    FillWait(k, Dependency(kF, leg, k), fill_f_);
    Put(kF, leg, k);
  }
}

VPlan VPlanner::Plan() {
  VPlan plan;
  WarmUp();
  for (int32_t r = 0; r < 2 * m_ && !failed_; ++r) {
    BackwardRound();
    ForwardRound();
  }
  for (int32_t k = 0; k < p_; ++k)
    while (!pending_[k].empty()) PutW(k);
  if (failed_) return plan;
  for (int32_t k = 0; k < p_; ++k)
    if (Count(k, kW, 0) + Count(k, kW, 1) != 2 * m_ || Count(k, kF, 1) != m_) return plan;
  plan.order = std::move(order_);
  plan.bubble = bubble_;
  plan.max_bubble = *std::max_element(bubble_.begin(), bubble_.end());
  plan.ok = true;
  return plan;
}

// Plans a variant; while a plan ends with less idle time than it was allowed, plans again with
// its own idle times as the allowance and keeps the better (at most kMaxRefinements times).
VPlan PlanVariant(int32_t d, int32_t m, const PlanningCosts& c, bool fill_f, bool fill_b) {
  constexpr int kMaxRefinements = 64;
  VPlan best = VPlanner(d, m, c, fill_f, fill_b, {}).Plan();
  for (int i = 0; i < kMaxRefinements && best.ok; ++i) {
    VPlan next = VPlanner(d, m, c, fill_f, fill_b, best.bubble).Plan();
    if (!next.ok || next.max_bubble >= best.max_bubble) break;
    best = std::move(next);
  }
  return best;
}

}  // namespace

Result<Program> BuildZbV(const BuildContext& ctx) {
  const int32_t d = ctx.options.devices, m = ctx.options.microbatches;
  PIPECAST_RETURN_IF_ERROR(CheckVirtualStages(d, 2));
  const PlanningCosts costs = PlanningCostsOf(ctx);
  VPlan best;
  for (bool fill_b : {true, false})
    for (bool fill_f : {true, false}) {
      VPlan plan = PlanVariant(d, m, costs, fill_f, fill_b);
      if (plan.ok && (!best.ok || plan.max_bubble < best.max_bubble)) best = std::move(plan);
    }
  if (!best.ok) {
    return InvalidArgument("zb-v: the V scheduler found no schedule for " + std::to_string(d) +
                           " stages and " + std::to_string(m) +
                           " microbatches within 2 x stages chunk activations per device");
  }
  std::vector<int32_t> placement(static_cast<size_t>(2 * d));
  for (int32_t k = 0; k < d; ++k) {
    placement[static_cast<size_t>(k)] = k;
    placement[static_cast<size_t>(2 * d - 1 - k)] = k;
  }
  return RepeatIteration(ctx, std::move(placement), best.order);
}

}  // namespace pipecast::ir::internal
