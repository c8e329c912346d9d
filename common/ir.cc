#include "common/ir.h"

#include <string>

#include "common/check.h"

namespace pipecast::ir {

int32_t Program::stages_on_device(int32_t d) const {
  int32_t n = 0;
  for (int32_t dev : placement) n += dev == d ? 1 : 0;
  return n;
}

int32_t Program::replica_on(int32_t stage, int32_t d) const {
  for (int32_t r = 0; r < replicas; ++r)
    if (device_of_replica(stage, r) == d) return r;
  return -1;
}

bool Program::placement_well_formed() const {
  if (replicas < 1 || num_stages < 1 ||
      placement.size() != static_cast<size_t>(replicas) * static_cast<size_t>(num_stages))
    return false;
  for (int32_t d : placement)
    if (d < 0 || d >= num_devices) return false;
  if (!microbatch_replica.empty() && microbatch_replica.size() != static_cast<size_t>(microbatches))
    return false;
  for (int32_t r : microbatch_replica)
    if (r < 0 || r >= replicas) return false;
  return true;
}

size_t Program::num_actions() const {
  size_t n = 0;
  for (const auto& dev : devices) n += dev.size();
  return n;
}

std::vector<int32_t> RoundRobinPlacement(int32_t num_stages, int32_t num_devices) {
  PIPECAST_CHECK(num_devices > 0) << "num_devices " << num_devices;
  std::vector<int32_t> placement(num_stages);
  for (int32_t s = 0; s < num_stages; ++s) placement[s] = s % num_devices;
  return placement;
}

std::string_view KindToken(ActionKind k) {
  switch (k) {
    case ActionKind::kForward: return "F";
    case ActionKind::kBackward: return "B";
    case ActionKind::kBackwardInput: return "I";
    case ActionKind::kWeightGrad: return "W";
    case ActionKind::kSendActivation: return "SA";
    case ActionKind::kRecvActivation: return "RA";
    case ActionKind::kSendGradient: return "SG";
    case ActionKind::kRecvGradient: return "RG";
    case ActionKind::kStep: return "S";
    case ActionKind::kAllReduce: return "AR";
    case ActionKind::kAverage: return "AV";
  }
  return "?";
}

std::string_view KindName(ActionKind k) {
  switch (k) {
    case ActionKind::kForward: return "forward";
    case ActionKind::kBackward: return "backward";
    case ActionKind::kBackwardInput: return "backward_input";
    case ActionKind::kWeightGrad: return "weight_grad";
    case ActionKind::kSendActivation: return "send_activation";
    case ActionKind::kRecvActivation: return "recv_activation";
    case ActionKind::kSendGradient: return "send_gradient";
    case ActionKind::kRecvGradient: return "recv_gradient";
    case ActionKind::kStep: return "step";
    case ActionKind::kAllReduce: return "all_reduce";
    case ActionKind::kAverage: return "average";
  }
  return "?";
}

std::string_view WeightSourceName(WeightSource s) {
  switch (s) {
    case WeightSource::kCurrent: return "cur";
    case WeightSource::kStashed: return "stash";
    case WeightSource::kPredicted: return "pred";
    case WeightSource::kBufferOlder: return "old";
    case WeightSource::kBufferNewer: return "new";
    case WeightSource::kCorrected: return "corr";
    case WeightSource::kVersion: return "v";
  }
  return "?";
}

std::string ActionToken(const Action& a, bool with_stage) {
  if (a.kind == ActionKind::kStep) return "S";
  std::string t;
  if (with_stage) t += std::to_string(a.stage);
  t += KindToken(a.kind);
  t += std::to_string(a.microbatch);
  if (UsesWeights(a.kind) && a.weights.source != WeightSource::kCurrent) {
    t += '@';
    t += WeightSourceName(a.weights.source);
    const WeightSource s = a.weights.source;
    if (s == WeightSource::kPredicted || s == WeightSource::kCorrected ||
        s == WeightSource::kVersion) {
      t += ':';
      t += std::to_string(a.weights.value);
    }
  }
  return t;
}

}  // namespace pipecast::ir
