// Bidirectional pipelines: Chimera (Li and Hoefler, SC'21, arXiv 2107.06925) and GEMS-MAST
// (Jain et al., SC'20, "GEMS: GPU-Enabled Memory-Aware Model-Parallelism System").
//
// Two replicas of the D-stage pipeline run in opposite directions: the "down" replica puts stage
// s on device s, the "up" replica on device D - 1 - s, so every device holds two stages. A
// minibatch runs as one unit (`units=merged`, the default) or as basic units of D microbatches
// one after the other (`units=direct`, the paper's direct concatenation); a unit's first half
// (rounded up) runs down, the rest up, and each direction keeps the 1F1B order of its stage. How
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

// Each device's order of one basic unit of M <= D microbatches (the first ceil(M/2) down, the
// rest up), from the unit-cost run described above.
std::vector<std::vector<Op>> ChimeraOrders(int32_t D, int32_t M) {
  std::vector<int32_t> down, up;
  for (int32_t j = 0; j < M; ++j) (j < (M + 1) / 2 ? down : up).push_back(j);
  std::vector<std::array<std::vector<Op>, 2>> queues(static_cast<size_t>(D));
  for (int32_t d = 0; d < D; ++d) {
    queues[d][0] = OneFOneBOrder(D, d, down);
    queues[d][1] = OneFOneBOrder(D, D - 1 - d, up);
  }
  // done[(kind, stage, mb)]: tick at whose end the op finished, -1 until then.
  std::vector<int64_t> done(static_cast<size_t>(2) * D * M, -1);
  auto key = [&](bool backward, int32_t s, int32_t j) {
    return (static_cast<size_t>(backward) * D + s) * M + j;
  };
  auto ready = [&](const Op& op, int64_t t) {
    if (!op.backward) {
      return op.stage == 0 || (done[key(false, op.stage - 1, op.microbatch)] >= 0 &&
                               done[key(false, op.stage - 1, op.microbatch)] <= t);
    }
    const size_t dep = op.stage == D - 1 ? key(false, op.stage, op.microbatch)
                                         : key(true, op.stage + 1, op.microbatch);
    return done[dep] >= 0 && done[dep] <= t;
  };
  std::vector<std::vector<Op>> out(static_cast<size_t>(D));
  std::vector<size_t> head(static_cast<size_t>(2) * D, 0);
  int64_t left = static_cast<int64_t>(2) * D * M;
  for (int64_t t = 0; left > 0; ++t) {
    std::vector<std::pair<int32_t, int32_t>> picked;  // (device, queue) run in tick t
    for (int32_t d = 0; d < D; ++d) {
      int32_t best = -1;
      for (int32_t q = 0; q < 2; ++q) {
        const std::vector<Op>& order = queues[d][q];
        if (head[2 * d + q] >= order.size() || !ready(order[head[2 * d + q]], t)) continue;
        const Op& op = order[head[2 * d + q]];
        if (best < 0) {
          best = q;
          continue;
        }
        const Op& other = queues[d][best][head[2 * d + best]];
        if (op.backward != other.backward ? op.backward : op.stage > other.stage) best = q;
      }
      if (best >= 0) picked.push_back({d, best});
    }
    for (const auto& [d, q] : picked) {
      const Op op = queues[d][q][head[2 * d + q]++];
      done[key(op.backward, op.stage, op.microbatch)] = t + 1;
      out[d].push_back(op);
      --left;
    }
  }
  return out;
}


// The minibatch's order on each device: units of `unit` microbatches (the last one smaller)
// one after the other. unit = D is the paper's direct concatenation of basic units; unit = M
// schedules the whole minibatch as one unit.
std::vector<std::vector<Op>> MinibatchOrders(int32_t D, int32_t M, int32_t unit,
                                             std::vector<int32_t>* replica_of) {
  std::vector<std::vector<Op>> out(static_cast<size_t>(D));
  replica_of->assign(static_cast<size_t>(M), 0);
  for (int32_t first = 0; first < M; first += unit) {
    const int32_t size = std::min(unit, M - first);
    for (int32_t j = (size + 1) / 2; j < size; ++j) (*replica_of)[first + j] = 1;
    const std::vector<std::vector<Op>> unit = ChimeraOrders(D, size);
    for (int32_t d = 0; d < D; ++d)
      for (Op op : unit[d]) {
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
// last backward of the minibatch, then the Step. Devices d and D-1-d share both stages, so both
// must reduce them in one order or a blocking all-reduce deadlocks: the stage whose copies
// finish their last backward first (at unit costs; `stage_done`) reduces first, and the other
// one no earlier. A copy that ran no microbatch (M = 1: nothing goes up) still takes part, with
// a zero gradient. `early` false: both all-reduces just before the Step.
std::vector<Action> BidirectionalDevice(const std::vector<Op>& order, int32_t d, int32_t D,
                                        int32_t M, int32_t minibatches,
                                        const std::vector<int64_t>& stage_done, bool early) {
  std::vector<int32_t> last_backward(static_cast<size_t>(D), -1);
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i].backward) last_backward[order[i].stage] = static_cast<int32_t>(i);
  int32_t first = std::min(d, D - 1 - d), second = std::max(d, D - 1 - d);
  if (stage_done[second] < stage_done[first]) std::swap(first, second);
  const auto end = static_cast<int32_t>(order.size()) - 1;
  const int32_t first_at = !early || last_backward[first] < 0 ? end : last_backward[first];
  const int32_t second_at =
      std::max(first_at, last_backward[second] < 0 ? end : last_backward[second]);
  std::vector<Action> actions;
  actions.reserve((order.size() + 3) * minibatches);
  for (int32_t n = 0; n < minibatches; ++n) {
    for (int32_t i = 0; i <= end; ++i) {
      const Op& op = order[i];
      actions.push_back({op.backward ? ActionKind::kBackward : ActionKind::kForward, op.stage,
                         n * M + op.microbatch, {}});
      if (i == first_at) actions.push_back({ActionKind::kAllReduce, first, n, {}});
      if (i == second_at) actions.push_back({ActionKind::kAllReduce, second, n, {}});
    }
    actions.push_back({ActionKind::kStep, -1, -1, {}});
  }
  return actions;
}

// The programs of both methods' devices from their minibatch orders. An all-reduce blocks where
// it stands, so one placed after its stage's last backward can deadlock when the other copy
// still needs this device's later work to get there (GEMS does): each placement is checked on
// one minibatch (minibatches depend on nothing across the Step), and the all-reduces go just
// before the Step when the early placement deadlocks.
void EmitBidirectional(const BuildContext& ctx, const std::vector<std::vector<Op>>& orders,
                       Program& p) {
  const int32_t D = ctx.options.devices, M = ctx.options.microbatches;
  const std::vector<int64_t> finish = UnitBackwardFinish(orders, D, M);
  std::vector<int64_t> stage_done(static_cast<size_t>(D), 0);
  for (int32_t s = 0; s < D; ++s)
    for (int32_t j = 0; j < M; ++j)
      stage_done[s] = std::max(stage_done[s], finish[static_cast<size_t>(s) * M + j]);
  Program one = p;
  one.minibatches = 1;
  for (int32_t d = 0; d < D; ++d)
    one.devices[d] = BidirectionalDevice(orders[d], d, D, M, 1, stage_done, true);
  const bool early = ValidateProgram(one).empty();
  for (int32_t d = 0; d < D; ++d) {
    ctx.Emit(p, d,
             BidirectionalDevice(orders[d], d, D, M, ctx.options.minibatches, stage_done, early));
  }
}

// The two-replica program both methods share: down on devices 0..D-1, up reversed.
Result<Program> TwoDirections(const BuildContext& ctx, const char* method) {
  const GenerateOptions& o = ctx.options;
  if (o.devices < 2 || o.devices % 2 != 0) {
    return InvalidArgument(std::string(method) +
                           " needs an even number of stages (its two directions pair device d "
                           "with device D-1-d, and a device holds one copy of a stage), got " +
                           std::to_string(o.devices));
  }
  Program p = EmptyProgram(ctx, 1);
  p.replicas = 2;
  p.placement.resize(static_cast<size_t>(2) * o.devices);
  for (int32_t s = 0; s < o.devices; ++s) p.placement[o.devices + s] = o.devices - 1 - s;
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
  Result<Program> p = TwoDirections(ctx, "chimera");
  if (!p.ok()) return p;
  const int32_t D = ctx.options.devices, M = ctx.options.microbatches;
  const int32_t unit = ctx.Param("units") == "direct" ? D : M;
  EmitBidirectional(ctx, MinibatchOrders(D, M, unit, &p->microbatch_replica), *p);
  return p;
}

Result<Program> BuildGems(const BuildContext& ctx) {
  Result<Program> p = TwoDirections(ctx, "gems");
  if (!p.ok()) return p;
  const int32_t D = ctx.options.devices, M = ctx.options.microbatches;
  EmitBidirectional(ctx, GemsOrders(D, M, &p->microbatch_replica), *p);
  return p;
}

}  // namespace pipecast::ir::internal
