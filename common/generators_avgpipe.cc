// AvgPipe (the pipeline survey's "AvgPipe: elastic averaging training of pipelines"; Table 3):
// P pipelines, each on its own D devices and its own batch, kept together by elastic averaging
// with a reference model instead of a gradient all-reduce. Each pipeline runs a flushed
// schedule whose warm-up is stretched by `advance` extra forwards ("advance forward
// propagation"): stage k runs min(D - k - 1 + a, M) forwards before its first backward, so
// a = 0 is 1F1B and a >= M is all forwards first (AFAB, GPipe's order). After every
// `period`-th Step each stage's copies exchange and average their weights (AV, common/ir.h).
#include <algorithm>
#include <vector>

#include "common/generators_internal.h"
#include "common/replicate.h"

namespace pipecast::ir::internal {
namespace {

// Stage k's order for one minibatch starting at microbatch `base`.
void AdvancedIteration(int32_t D, int32_t M, int32_t k, int32_t advance, int32_t base,
                       std::vector<Action>& out) {
  const int32_t w = std::min(static_cast<int64_t>(D) - k - 1 + advance, int64_t{M});
  for (int32_t j = 0; j < w; ++j) out.push_back({ActionKind::kForward, k, base + j, {}});
  for (int32_t i = 0; i < M - w; ++i) {
    out.push_back({ActionKind::kForward, k, base + w + i, {}});
    out.push_back({ActionKind::kBackward, k, base + i, {}});
  }
  for (int32_t j = M - w; j < M; ++j) out.push_back({ActionKind::kBackward, k, base + j, {}});
}

}  // namespace

Result<Program> BuildAvgPipe(const BuildContext& ctx) {
  const GenerateOptions& o = ctx.options;
  const int32_t pipelines = ctx.IntParam("pipelines");
  const int32_t advance = ctx.IntParam("advance");
  Program one = EmptyProgram(ctx, 1);
  for (int32_t k = 0; k < o.devices; ++k) {
    std::vector<Action>& out = one.devices[k];
    out.reserve((2 * static_cast<size_t>(o.microbatches) + 1) * o.minibatches);
    for (int32_t n = 0; n < o.minibatches; ++n) {
      AdvancedIteration(o.devices, o.microbatches, k, advance, n * o.microbatches, out);
      out.push_back({ActionKind::kStep, -1, -1, {}});
    }
  }
  one.max_live_versions.assign(o.devices, 1);
  Result<Program> p =
      ReplicateCopies(one, pipelines, {ReplicaSync::Kind::kAverage, ctx.IntParam("period"),
                                       ctx.IntParam("phase") % ctx.IntParam("period")});
  if (!p.ok() || ctx.sink == nullptr) return p;
  for (int32_t d = 0; d < p->num_devices; ++d) (*ctx.sink)(d, std::move(p->devices[d]));
  p->devices.assign(p->devices.size(), {});
  return p;
}

}  // namespace pipecast::ir::internal
