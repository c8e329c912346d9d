// Bidirectional pipelines: Chimera (Li and Hoefler, SC'21, arXiv 2107.06925) and GEMS-MAST
// (Jain et al., SC'20, "GEMS: GPU-Enabled Memory-Aware Model-Parallelism System").
//
// Replicas of the D-stage pipeline run in opposite directions: with two (the basic scheme, and
// GEMS), the "down" replica puts stage s on device s, the "up" replica on device D - 1 - s, so
// every device holds two stages; Chimera's general form has 2f (Layout below), every device then
// holding 2f. A minibatch runs as one unit (`units=merged`, the default) or as basic units of D
// microbatches one after the other (`units=direct`, the paper's direct concatenation); a unit's
// microbatches go to the replicas in contiguous groups (with two: the first half, rounded up,
// down), and each replica keeps the 1F1B order of its stage. How
// a device interleaves its two stages is fixed by running the schedule once at unit costs
// (T_F = T_B): a free device takes the head of whichever of its two orders is ready, a backward
// before a forward and, between two of a kind, the one of the later stage (nearer the loss, so
// the other direction's gradients start back sooner). A unit of N microbatches then has the
// paper's D - 2 bubble slots, a bubble share of (D - 2)/(2N + D - 2) (docs/methods.md). After a
// stage's last backward of the minibatch, its two copies all-reduce their gradients (the copy
// that finishes first overlaps the reduction with its other stage's work), then each device
// steps.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "common/generators_internal.h"
#include "common/validate.h"

namespace pipecast::ir::internal {
namespace {

struct Op {
  bool backward = false;
  int32_t stage = 0;
  int32_t microbatch = 0;  // within the minibatch
};

// The 1F1B order of `stage` over `mbs` in a D-stage pipeline.
std::vector<Op> OneFOneBOrder(int32_t D, int32_t stage, const std::vector<int32_t>& mbs) {
  const auto n = static_cast<int32_t>(mbs.size());
  const int32_t warmup = std::min(D - stage - 1, n);
  std::vector<Op> out;
  for (int32_t f = 0; f < warmup; ++f) out.push_back({false, stage, mbs[f]});
  for (int32_t f = warmup, b = 0; b < n; ++b) {
    if (f < n) out.push_back({false, stage, mbs[f++]});
    out.push_back({true, stage, mbs[b]});
  }
  return out;
}

// Where Chimera's 2f pipelines put their stages: replica r < f runs down, shifted by r·D/f
// (stage s on device (s + r·D/f) mod D), replica f + i runs up, shifted likewise (stage s on
// device (D-1-s + i·D/f) mod D). With f dividing D/2 the shift D/f is even, so a down and an up
// copy never meet on a device (their stages differ in parity there) and every device holds 2f
// distinct stages. f = 1 is the basic scheme (GEMS uses it too).
struct Layout {
  int32_t D = 2, f = 1;
  int32_t replicas() const { return 2 * f; }
  int32_t Shift(int32_t r) const { return (r % f) * (D / f); }
  int32_t DeviceOf(int32_t r, int32_t s) const {
    return r < f ? (s + Shift(r)) % D : (D - 1 - s + Shift(r)) % D;
  }
  int32_t StageOn(int32_t r, int32_t d) const {
    return r < f ? (d - Shift(r) + D) % D : (D - 1 - d + Shift(r)) % D;
  }
};

// The replica of microbatch j of a unit of `size`: 2f contiguous groups in replica order, the
// first size mod 2f of them one larger (f = 1: the first half, rounded up, goes down).
int32_t GroupOf(int32_t j, int32_t size, int32_t groups) {
  const int32_t base = size / groups, extra = size % groups;
  if (j < extra * (base + 1)) return j / (base + 1);
  return extra + (j - extra * (base + 1)) / std::max(base, 1);
}

// Whether `op` may start at tick t: its input finished by then.
bool ReadyAt(const Op& op, int64_t t, int32_t D, int32_t M, const std::vector<int64_t>& done) {
  auto finished = [&](bool backward, int32_t s) {
    const int64_t at = done[(static_cast<size_t>(backward) * D + s) * M + op.microbatch];
    return at >= 0 && at <= t;
  };
  if (!op.backward) return op.stage == 0 || finished(false, op.stage - 1);
  return op.stage == D - 1 ? finished(false, op.stage) : finished(true, op.stage + 1);
}

// Each device's order of one unit of M microbatches, from the unit-cost run described above:
// device d has one 1F1B order per replica (of the stage that replica puts on d).
std::vector<std::vector<Op>> ChimeraOrders(const Layout& layout, int32_t M) {
  const int32_t D = layout.D, R = layout.replicas();
  std::vector<std::vector<int32_t>> mbs(static_cast<size_t>(R));
  for (int32_t j = 0; j < M; ++j) mbs[GroupOf(j, M, R)].push_back(j);
  std::vector<std::vector<std::vector<Op>>> queues(static_cast<size_t>(D));
  for (int32_t d = 0; d < D; ++d)
    for (int32_t r = 0; r < R; ++r)
      queues[d].push_back(OneFOneBOrder(D, layout.StageOn(r, d), mbs[r]));
  // done[(kind, stage, mb)]: tick at whose end the op finished, -1 until then.
  std::vector<int64_t> done(static_cast<size_t>(2) * D * M, -1);
  std::vector<std::vector<Op>> out(static_cast<size_t>(D));
  std::vector<std::vector<size_t>> head(static_cast<size_t>(D), std::vector<size_t>(R, 0));
  int64_t left = static_cast<int64_t>(2) * D * M;
  for (int64_t t = 0; left > 0; ++t) {
    std::vector<std::pair<int32_t, int32_t>> picked;  // (device, queue) run in tick t
    for (int32_t d = 0; d < D; ++d) {
      int32_t best = -1;
      for (int32_t q = 0; q < R; ++q) {
        const std::vector<Op>& order = queues[d][q];
        if (head[d][q] >= order.size() || !ReadyAt(order[head[d][q]], t, D, M, done)) continue;
        const Op& op = order[head[d][q]];
        const Op* other = best < 0 ? nullptr : &queues[d][best][head[d][best]];
        if (other == nullptr ||
            (op.backward != other->backward ? op.backward : op.stage > other->stage))
          best = q;
      }
      if (best >= 0) picked.push_back({d, best});
    }
    for (const auto& [d, q] : picked) {
      const Op op = queues[d][q][head[d][q]++];
      done[(static_cast<size_t>(op.backward) * D + op.stage) * M + op.microbatch] = t + 1;
      out[d].push_back(op);
      --left;
    }
  }
  return out;
}

// The minibatch's order on each device: units of `unit` microbatches (the last one smaller)
// one after the other. unit = D is the paper's direct concatenation of basic units; unit = M
// schedules the whole minibatch as one unit.
std::vector<std::vector<Op>> MinibatchOrders(const Layout& layout, int32_t M, int32_t unit,
                                             std::vector<int32_t>* replica_of) {
  std::vector<std::vector<Op>> out(static_cast<size_t>(layout.D));
  replica_of->assign(static_cast<size_t>(M), 0);
  for (int32_t first = 0; first < M; first += unit) {
    const int32_t size = std::min(unit, M - first);
    for (int32_t j = 0; j < size; ++j)
      (*replica_of)[first + j] = GroupOf(j, size, layout.replicas());
    const std::vector<std::vector<Op>> orders = ChimeraOrders(layout, size);
    for (int32_t d = 0; d < layout.D; ++d)
      for (Op op : orders[d]) {
        op.microbatch += first;
        out[d].push_back(op);
      }
  }
  return out;
}

// When each backward of `orders` (one minibatch, every device's) finishes in a run at unit costs
// (every F and B one tick; a device runs its order, waiting for its inputs): by (stage, mb).
std::vector<int64_t> UnitBackwardFinish(const std::vector<std::vector<Op>>& orders, int32_t D,
                                        int32_t M) {
  std::vector<int64_t> done(static_cast<size_t>(2) * D * M, -1);
  auto key = [&](bool backward, int32_t s, int32_t j) {
    return (static_cast<size_t>(backward) * D + s) * M + j;
  };
  std::vector<size_t> cursor(orders.size(), 0);
  std::vector<int64_t> free(orders.size(), 0);
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t d = 0; d < orders.size(); ++d) {
      for (; cursor[d] < orders[d].size(); ++cursor[d]) {
        const Op& op = orders[d][cursor[d]];
        int64_t input = 0;
        if (op.backward || op.stage > 0) {
          const size_t dep = !op.backward       ? key(false, op.stage - 1, op.microbatch)
                             : op.stage == D - 1 ? key(false, op.stage, op.microbatch)
                                                 : key(true, op.stage + 1, op.microbatch);
          if (done[dep] < 0) break;
          input = done[dep];
        }
        free[d] = std::max(free[d], input) + 1;
        done[key(op.backward, op.stage, op.microbatch)] = free[d];
        progress = true;
      }
    }
  }
  return {done.begin() + static_cast<std::ptrdiff_t>(D) * M, done.end()};
}

// Device d's program: `order` (one minibatch) every minibatch, each stage's all-reduce after its
// last backward of the minibatch, then the Step. Devices sharing several stages must reduce them
// in one order or blocking all-reduces deadlock: every device reduces its stages in one global
// order (the stage whose copies finish their last backward first, at unit costs, `stage_done`,
// then by number), each no earlier than the one before it. A copy that ran no microbatch (M = 1:
// nothing goes up) still takes part, with a zero gradient. `early` false: every all-reduce just
// before the Step.
std::vector<Action> BidirectionalDevice(const std::vector<Op>& order, std::vector<int32_t> held,
                                        int32_t D, int32_t M, int32_t minibatches,
                                        const std::vector<int64_t>& stage_done, bool early) {
  std::vector<int32_t> last_backward(static_cast<size_t>(D), -1);
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i].backward) last_backward[order[i].stage] = static_cast<int32_t>(i);
  std::sort(held.begin(), held.end(), [&](int32_t x, int32_t y) {
    return std::pair{stage_done[x], x} < std::pair{stage_done[y], y};
  });
  const auto end = static_cast<int32_t>(order.size()) - 1;
  std::vector<int32_t> at(held.size(), end);  // the action each all-reduce follows
  for (size_t k = 0; k < held.size(); ++k) {
    const int32_t own = !early || last_backward[held[k]] < 0 ? end : last_backward[held[k]];
    at[k] = std::max(own, k > 0 ? at[k - 1] : 0);
  }
  std::vector<Action> actions;
  actions.reserve((order.size() + held.size() + 1) * minibatches);
  for (int32_t n = 0; n < minibatches; ++n) {
    size_t next = 0;
    for (int32_t i = 0; i <= end; ++i) {
      const Op& op = order[i];
      actions.push_back({op.backward ? ActionKind::kBackward : ActionKind::kForward, op.stage,
                         n * M + op.microbatch, {}});
      for (; next < held.size() && at[next] == i; ++next)
        actions.push_back({ActionKind::kAllReduce, held[next], n, {}});
    }
    actions.push_back({ActionKind::kStep, -1, -1, {}});
  }
  return actions;
}

// The programs of the devices from their minibatch orders. An all-reduce blocks where it
// stands, so one placed after its stage's last backward can deadlock when another copy still
// needs this device's later work to get there (GEMS does): the placement is checked on one
// minibatch (minibatches depend on nothing across the Step), and the all-reduces go just before
// the Step when the early placement deadlocks. False, emitting nothing, when neither placement
// gives a valid program (the orders themselves break a rule, e.g. a link's order).
bool EmitBidirectional(const BuildContext& ctx, const Layout& layout,
                       const std::vector<std::vector<Op>>& orders, Program& p) {
  const int32_t D = ctx.options.devices, M = ctx.options.microbatches;
  const std::vector<int64_t> finish = UnitBackwardFinish(orders, D, M);
  std::vector<int64_t> stage_done(static_cast<size_t>(D), 0);
  for (int32_t s = 0; s < D; ++s)
    for (int32_t j = 0; j < M; ++j)
      stage_done[s] = std::max(stage_done[s], finish[static_cast<size_t>(s) * M + j]);
  std::vector<std::vector<int32_t>> held(static_cast<size_t>(D));
  for (int32_t d = 0; d < D; ++d)
    for (int32_t r = 0; r < layout.replicas(); ++r) held[d].push_back(layout.StageOn(r, d));
  Program one = p;
  one.minibatches = 1;
  for (int32_t d = 0; d < D; ++d)
    one.devices[d] = BidirectionalDevice(orders[d], held[d], D, M, 1, stage_done, true);
  ValidateOptions rules;
  rules.implicit_link_order = true;  // the transfers lowering will insert, in order per kind
  const bool early = ValidateProgram(one, rules).empty();
  if (!early) {
    for (int32_t d = 0; d < D; ++d)
      one.devices[d] = BidirectionalDevice(orders[d], held[d], D, M, 1, stage_done, false);
    if (!ValidateProgram(one, rules).empty()) return false;
  }
  for (int32_t d = 0; d < D; ++d) {
    ctx.Emit(p, d,
             BidirectionalDevice(orders[d], held[d], D, M, ctx.options.minibatches, stage_done,
                                 early));
  }
  return true;
}

// The program the bidirectional methods share, its replicas placed by `layout`. Errors: an odd
// D, or a number of pipelines 2f whose f does not divide D/2.
Result<Program> Bidirectional(const BuildContext& ctx, const char* method, const Layout& layout) {
  const GenerateOptions& o = ctx.options;
  if (o.devices < 2 || o.devices % 2 != 0) {
    return InvalidArgument(std::string(method) +
                           " needs an even number of stages (its two directions pair device d "
                           "with device D-1-d, and a device holds one copy of a stage), got " +
                           std::to_string(o.devices));
  }
  if (layout.f < 1 || (o.devices / 2) % layout.f != 0) {
    return InvalidArgument(std::string(method) + ": pipelines = " +
                           std::to_string(2 * layout.f) + " needs f = " +
                           std::to_string(layout.f) + " to divide stages / 2 = " +
                           std::to_string(o.devices / 2) + "; use 2f for a divisor f of it");
  }
  Program p = EmptyProgram(ctx, 1);
  p.replicas = layout.replicas();
  p.placement.resize(static_cast<size_t>(p.replicas) * o.devices);
  for (int32_t r = 0; r < p.replicas; ++r)
    for (int32_t s = 0; s < o.devices; ++s)
      p.placement[static_cast<size_t>(r) * o.devices + s] = layout.DeviceOf(r, s);
  return p;
}

// GEMS-MAST's order on device d: microbatches in pairs, 2k down and 2k+1 up; the device runs
// the down copy's F and B of 2k, then the up copy's F and B of 2k+1, so it never holds more
// than one microbatch's activations and the up replica uses the memory the down replica's
// backward frees.
std::vector<std::vector<Op>> GemsOrders(int32_t D, int32_t M, std::vector<int32_t>* replica_of) {
  std::vector<std::vector<Op>> out(static_cast<size_t>(D));
  replica_of->assign(static_cast<size_t>(M), 0);
  for (int32_t j = 1; j < M; j += 2) (*replica_of)[j] = 1;
  for (int32_t d = 0; d < D; ++d) {
    for (int32_t j = 0; j < M; ++j) {
      const int32_t stage = j % 2 == 0 ? d : D - 1 - d;
      out[d].push_back({false, stage, j});
      out[d].push_back({true, stage, j});
    }
  }
  return out;
}

}  // namespace

Result<Program> BuildChimera(const BuildContext& ctx) {
  const Layout layout{ctx.options.devices, ctx.IntParam("pipelines") / 2};
  if (ctx.IntParam("pipelines") % 2 != 0)
    return InvalidArgument("chimera: pipelines must be even (2f: f down and f up), got " +
                           ctx.Param("pipelines"));
  Result<Program> p = Bidirectional(ctx, "chimera", layout);
  if (!p.ok()) return p;
  const int32_t D = ctx.options.devices, M = ctx.options.microbatches;
  // More than two pipelines can cross one link's messages of a kind in a merged unit: then the
  // basic units of D run one after the other instead, and the program says so.
  if (ctx.Param("units") != "direct" &&
      EmitBidirectional(ctx, layout, MinibatchOrders(layout, M, M, &p->microbatch_replica), *p))
    return p;
  if (ctx.Param("units") != "direct") p->params["units"] = "direct";
  if (EmitBidirectional(ctx, layout, MinibatchOrders(layout, M, D, &p->microbatch_replica), *p))
    return p;
  return InvalidArgument("chimera with pipelines = " + ctx.Param("pipelines") + " on " +
                         std::to_string(D) + " stages and " + std::to_string(M) +
                         " microbatches gives no valid order; use fewer pipelines");
}

Result<Program> BuildGems(const BuildContext& ctx) {
  const Layout layout{ctx.options.devices, 1};
  Result<Program> p = Bidirectional(ctx, "gems", layout);
  if (!p.ok()) return p;
  const int32_t D = ctx.options.devices, M = ctx.options.microbatches;
  if (!EmitBidirectional(ctx, layout, GemsOrders(D, M, &p->microbatch_replica), *p))
    return InvalidArgument("gems generated no valid order (a bug: please report it)");
  return p;
}

}  // namespace pipecast::ir::internal
