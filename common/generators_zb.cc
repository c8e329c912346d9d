// ZB-1p and ZB-2p (Qi, Wan, Huang, Lin, ICLR'24, automatic scheduling): the zero-bubble
// repository's heuristic scheduler (sail-sg/zero-bubble-pipeline-parallelism, scheduler/zb.py),
// restated.
//
// The scheduler plans one flushed iteration with relative pass costs (cost_f, cost_b, cost_w,
// cost_comm) and a per-stage memory limit, counting a microbatch's activations from its F to its
// W (one unit each). It walks the backwards in microbatch order: round i places, stage by stage,
// at most one F (when the F keeps the pipeline fed), then B_i on every stage from the last to the
// first, and fills the time a pass would wait for its input with W's. Eight variants (three
// switches) are planned and the one with the shortest longest-stage span is kept; docs/methods.md
// gives every rule.
#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/generators_internal.h"

namespace pipecast::ir::internal {

PlanningCosts PlanningCostsOf(const BuildContext& ctx) {
  PlanningCosts c;
  c.f = ctx.IntParam("cost_f");
  c.b = ctx.IntParam("cost_b");
  c.w = ctx.IntParam("cost_w");
  c.comm = ctx.IntParam("cost_comm");
  return c;
}

Program RepeatIteration(const BuildContext& ctx, std::vector<int32_t> placement,
                        const std::vector<std::vector<Action>>& iteration) {
  Program p = EmptyProgram(ctx, 1);
  p.num_stages = static_cast<int32_t>(placement.size());
  p.placement = std::move(placement);
  const int32_t m = p.microbatches;
  for (int32_t d = 0; d < p.num_devices; ++d) {
    const std::vector<Action>& one = iteration[static_cast<size_t>(d)];
    std::vector<Action> out;
    out.reserve((one.size() + 1) * static_cast<size_t>(p.minibatches));
    for (int32_t it = 0; it < p.minibatches; ++it) {
      for (Action a : one) {
        a.microbatch += it * m;
        out.push_back(a);
      }
      out.push_back({ActionKind::kStep, -1, -1, {}});
    }
    ctx.Emit(p, d, std::move(out));
  }
  p.max_live_versions.assign(static_cast<size_t>(p.num_devices), 1);
  return p;
}

namespace {

enum Pass : int { kF = 0, kB = 1, kW = 2 };

// The switches of one variant (the repository's allow_bubble_before_first_b, prioritize_b and
// no_bubble_greedy).
struct Variant {
  bool allow_bubble_before_first_b;
  bool prioritize_b;
  bool no_bubble_greedy;
};

// One variant's plan: every stage's passes in order, and the longest stage span.
struct GreedyPlan {
  std::vector<std::vector<Action>> order;
  int64_t span = std::numeric_limits<int64_t>::max();
  bool ok = false;
};

class ZbPlanner {
 public:
  ZbPlanner(int32_t stages, int32_t m, const PlanningCosts& costs, int64_t limit, Variant v)
      : s_(stages), m_(m), c_(costs), limit_(limit), v_(v) {
    for (auto* x : {&f_, &b_, &w_}) x->assign(s_, 0);
    for (auto* x : {&end_, &mem_, &bubble_}) x->assign(s_, 0);
    t_f_.assign(static_cast<size_t>(s_) * m_, 0);
    t_b_.assign(static_cast<size_t>(s_) * m_, 0);
    order_.resize(s_);
  }
  GreedyPlan Plan();

 private:
  int64_t Cost(Pass p) const { return p == kF ? c_.f : p == kB ? c_.b : c_.w; }
  int64_t& TF(int32_t j, int32_t mb) { return t_f_[static_cast<size_t>(j) * m_ + mb]; }
  int64_t& TB(int32_t j, int32_t mb) { return t_b_[static_cast<size_t>(j) * m_ + mb]; }
  int64_t MaxBubble() const { return *std::max_element(bubble_.begin(), bubble_.end()); }
  void Put(int32_t j, Pass p);
  void FirstRound();
  bool WantsForward(int32_t j);
  // W's into the wait of stage j for an input that arrives at `arrival`; false if memory
  // cannot be freed for a pass that needs `need` more units.
  void FillWait(int32_t j, int64_t arrival);
  bool FreeMemory(int32_t j, int64_t need);
  bool Round(int32_t i);

  const int32_t s_, m_;
  const PlanningCosts c_;
  const int64_t limit_;
  const Variant v_;
  std::vector<int32_t> f_, b_, w_;  // per stage: the next microbatch of each pass
  std::vector<int64_t> end_;        // per stage: when its last placed pass ends
  std::vector<int64_t> mem_;        // per stage: microbatches between their F and W
  std::vector<int64_t> bubble_;     // per stage: idle time since its first F
  std::vector<int64_t> t_f_, t_b_;  // end of each (stage, microbatch) F and B; 0 = not placed
  std::vector<std::vector<Action>> order_;
};

// Places stage j's next pass of kind p: it ends its cost after the stage is free, or after its
// input arrives (comm after the producer ends), whichever is later.
void ZbPlanner::Put(int32_t j, Pass p) {
  int32_t& next = p == kF ? f_[j] : p == kB ? b_[j] : w_[j];
  const int32_t mb = next++;
  const int64_t free_end = end_[j] + Cost(p);
  int64_t t = free_end;
  if (p == kF && j > 0) t = std::max(t, TF(j - 1, mb) + c_.comm + Cost(p));
  if (p == kB && j + 1 < s_) t = std::max(t, TB(j + 1, mb) + c_.comm + Cost(p));
  if (f_[j] > (p == kF ? 1 : 0)) bubble_[j] += t - free_end;  // not the wait for the first F
  end_[j] = t;
  if (p == kF) TF(j, mb) = t;
  if (p == kB) TB(j, mb) = t;
  mem_[j] += p == kF ? 1 : p == kW ? -1 : 0;
  const ActionKind kind = p == kF   ? ActionKind::kForward
                          : p == kB ? ActionKind::kBackwardInput
                                    : ActionKind::kWeightGrad;
  order_[j].push_back({kind, j, mb, {}});
}

// Round 0: F_0 everywhere; then, from the last stage up, as many warm-up F's as fit in memory
// and in the time until B_0's gradient comes back (at most one fewer than the stage before);
// then B_0 from the last stage to the first.
void ZbPlanner::FirstRound() {
  for (int32_t j = 0; j < s_; ++j) Put(j, kF);
  std::vector<int32_t> extra(s_, 0);
  int64_t back = 0;  // when B_0 of the stage below ends
  for (int32_t j = s_ - 1; j >= 0; --j) {
    if (j == s_ - 1) {
      back = TF(j, 0) + c_.b;
      continue;
    }
    int64_t mem = mem_[j], time = end_[j];
    while (f_[j] + extra[j] < m_ && mem + 1 <= limit_) {
      const bool late =
          v_.allow_bubble_before_first_b ? time + c_.f > back + c_.comm : time >= back + c_.comm;
      if (late) break;
      ++mem;
      time += c_.f;
      ++extra[j];
    }
    back = std::max(time, back + c_.comm) + c_.b;
  }
  for (int32_t j = 1; j < s_; ++j)
    while (extra[j] > 0 && extra[j] >= extra[j - 1] && f_[j] + extra[j] < m_) --extra[j];
  for (int32_t j = 0; j < s_; ++j)
    for (int32_t k = 0; k < extra[j]; ++k) Put(j, kF);
  for (int32_t j = s_ - 1; j >= 0; --j) Put(j, kB);
}

// Whether stage j places an F in this round (before the stages below are considered).
bool ZbPlanner::WantsForward(int32_t j) {
  if (f_[j] >= m_) return false;
  if (!v_.prioritize_b || j + 1 >= s_ || f_[j] < f_[j + 1] + 2) return true;
  // Stage j is two F's ahead of the next: an F here is worth it only if it does not delay the
  // gradient the next stage sends back after its own F and B.
  const int64_t gradient_back = end_[j + 1] + c_.f + c_.b + c_.comm;
  if (end_[j] >= gradient_back) return false;
  int64_t mem = mem_[j] + 1, w_cost = 0;
  for (int32_t k = 0; mem > limit_ && w_[j] + k < b_[j]; ++k) {
    w_cost += c_.w;
    --mem;
  }
  if (end_[j] + c_.f + w_cost <= gradient_back) return true;
  return gradient_back - end_[j] > MaxBubble() - bubble_[j];
}

bool ZbPlanner::FreeMemory(int32_t j, int64_t need) {
  while (mem_[j] + need > limit_) {
    if (w_[j] >= b_[j]) return false;
    Put(j, kW);
  }
  return true;
}

void ZbPlanner::FillWait(int32_t j, int64_t arrival) {
  while (w_[j] < b_[j] && end_[j] + c_.w <= arrival) Put(j, kW);
  if (w_[j] < b_[j] && end_[j] < arrival) {
    // A W overruns the wait: taken when the wait exceeds the idle time the most idle stage
    // already has, or always with no_bubble_greedy.
    if (arrival - end_[j] > MaxBubble() - bubble_[j] || v_.no_bubble_greedy) Put(j, kW);
  }
}

// Round i > 0: an F on every stage that wants one (and whose successor does), then B_i from the
// last stage to the first.
bool ZbPlanner::Round(int32_t i) {
  std::vector<uint8_t> forward(s_, 0);
  for (int32_t j = 0; j < s_; ++j) forward[j] = WantsForward(j) ? 1 : 0;
  for (int32_t j = s_ - 2; j >= 0; --j) forward[j] = std::min(forward[j], forward[j + 1]);
  for (int32_t j = 0; j < s_; ++j) {
    if (!forward[j]) continue;
    if (!FreeMemory(j, 1)) return false;
    if (j > 0) FillWait(j, TF(j - 1, f_[j]) + c_.comm);
    Put(j, kF);
  }
  for (int32_t j = s_ - 1; j >= 0; --j) {
    if (j + 1 < s_) FillWait(j, TB(j + 1, i) + c_.comm);
    if (j == 0 && f_[0] == m_)
      while (w_[0] < b_[0]) Put(0, kW);
    Put(j, kB);
  }
  return true;
}

GreedyPlan ZbPlanner::Plan() {
  GreedyPlan plan;
  FirstRound();
  for (int32_t i = 1; i < m_; ++i)
    if (!Round(i)) return plan;
  int64_t span = 0;
  for (int32_t j = 0; j < s_; ++j) {
    while (w_[j] < m_) Put(j, kW);
    span = std::max(span, end_[j] - (TF(j, 0) - c_.f));
  }
  plan.order = std::move(order_);
  plan.span = span;
  plan.ok = true;
  return plan;
}

}  // namespace

// zb-1p / zb-2p: the heuristic's best variant, repeated per minibatch.
Result<Program> BuildZbGreedy(const BuildContext& ctx) {
  const int32_t d = ctx.options.devices, m = ctx.options.microbatches;
  const std::string& limit_text = ctx.Param("memory_limit");
  const int64_t per_p = ctx.options.method == "zb-2p" ? 2 : 1;
  const int64_t limit = limit_text == "auto" ? per_p * d : ctx.IntParam("memory_limit");
  const PlanningCosts costs = PlanningCostsOf(ctx);
  GreedyPlan best;
  for (bool allow : {true, false})
    for (bool prioritize : {true, false})
      for (bool greedy : {true, false}) {
        GreedyPlan plan = ZbPlanner(d, m, costs, limit, {allow, prioritize, greedy}).Plan();
        if (plan.ok && plan.span < best.span) best = std::move(plan);
      }
  if (!best.ok) {
    return InvalidArgument(ctx.options.method +
                           ": no schedule keeps at most memory_limit=" + std::to_string(limit) +
                           " microbatches between their F and W on every stage; raise "
                           "memory_limit (auto is " +
                           std::to_string(per_p * d) + ")");
  }
  return RepeatIteration(ctx, RoundRobinPlacement(d, d), best.order);
}

}  // namespace pipecast::ir::internal
