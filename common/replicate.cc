#include "common/replicate.h"

#include <string>
#include <utility>
#include <vector>

#include "common/limits.h"

namespace pipecast::ir {
namespace {

bool HasAllReduce(const Program& p) {
  for (const auto& dev : p.devices)
    for (const Action& a : dev)
      if (IsCollective(a.kind)) return true;
  return false;
}

// The stages base places on device d, ascending.
std::vector<int32_t> StagesOn(const Program& base, int32_t d) {
  std::vector<int32_t> out;
  for (int32_t s = 0; s < base.num_stages; ++s)
    if (base.holds(d, s)) out.push_back(s);
  return out;
}

// Device d's program for copy c: microbatches remapped, all-reduces before each Step unless
// base has its own.
std::vector<Action> CopyDevice(const Program& base, int32_t d, int32_t c, int32_t r,
                               bool own_reduces, const ReplicaSync& sync) {
  const bool average = sync.kind == ReplicaSync::Kind::kAverage;
  const int32_t M = base.microbatches;
  const std::vector<int32_t> stages = StagesOn(base, d);
  std::vector<Action> out;
  out.reserve(base.devices[d].size() * 2);
  int32_t round = 0, steps = 0;
  for (Action a : base.devices[d]) {
    if (a.kind == ActionKind::kStep) {
      if (!own_reduces && !average) {
        for (int32_t s : stages) out.push_back({ActionKind::kAllReduce, s, round, {}});
        ++round;
      }
    } else if (!IsCollective(a.kind) && a.microbatch >= 0) {
      const int32_t n = a.microbatch / M, j = a.microbatch % M;
      a.microbatch = (n * r + c) * M + j;
    }
    out.push_back(a);
    if (a.kind == ActionKind::kStep && average && !own_reduces &&
        (++steps + sync.phase) % sync.period == 0) {
      for (int32_t s : stages) out.push_back({ActionKind::kAverage, s, round, {}});
      ++round;
    }
  }
  return out;
}

}  // namespace

Result<Program> ReplicateForDataParallel(const Program& base, int32_t r) {
  return ReplicateCopies(base, r, ReplicaSync{});
}

Result<Program> ReplicateCopies(const Program& base, int32_t r, const ReplicaSync& sync) {
  if (r < 1) return InvalidArgument("data_parallel must be >= 1, got " + std::to_string(r));
  if (r == 1) return base;
  const int64_t devices = static_cast<int64_t>(base.num_devices) * r;
  const int64_t microbatches = static_cast<int64_t>(base.microbatches) * r;
  const int64_t replicas = static_cast<int64_t>(base.replicas) * r;
  if (devices > kMaxCount || microbatches * base.minibatches > kMaxCount ||
      replicas * base.num_stages > kMaxCount) {
    return InvalidArgument("data_parallel " + std::to_string(r) + " makes " +
                           std::to_string(devices) + " devices and " +
                           std::to_string(microbatches * base.minibatches) +
                           " microbatches, beyond the limit of " + std::to_string(kMaxCount));
  }
  if (microbatches * base.minibatches * base.num_stages > kMaxCells) {
    return InvalidArgument("data_parallel " + std::to_string(r) + " makes " +
                           std::to_string(microbatches * base.minibatches * base.num_stages) +
                           " stage-microbatch pairs, more than " + std::to_string(kMaxCells));
  }
  Program p = base;
  p.num_devices = static_cast<int32_t>(devices);
  p.microbatches = static_cast<int32_t>(microbatches);
  p.replicas = static_cast<int32_t>(replicas);
  p.placement.clear();
  p.microbatch_replica.clear();
  for (int32_t c = 0; c < r; ++c)
    for (int32_t d : base.placement) p.placement.push_back(c * base.num_devices + d);
  for (int32_t c = 0; c < r; ++c)
    for (int32_t j = 0; j < base.microbatches; ++j)
      p.microbatch_replica.push_back(c * base.replicas + base.replica_of(j));
  p.max_live_versions.clear();
  for (int32_t c = 0; c < r && !base.max_live_versions.empty(); ++c)
    for (int32_t v : base.max_live_versions) p.max_live_versions.push_back(v);
  const bool own = HasAllReduce(base);
  p.devices.assign(static_cast<size_t>(devices), {});
  for (int32_t c = 0; c < r; ++c)
    for (int32_t d = 0; d < base.num_devices; ++d)
      p.devices[static_cast<size_t>(c) * base.num_devices + d] =
          CopyDevice(base, d, c, r, own, sync);
  return p;
}

}  // namespace pipecast::ir
