#include "sim/cost_model.h"

#include <cmath>

namespace pipecast::sim {

CostModel UniformCostModel(int32_t num_stages, TimeNs forward, TimeNs backward,
                           TimeNs backward_input, TimeNs backward_weight) {
  CostModel m;
  StageCost c;
  c.forward = forward;
  c.backward = backward;
  c.backward_input = backward_weight > 0 ? backward_input : backward;
  c.backward_weight = backward_weight;
  c.optimizer_step = 0;
  c.optimizer_rollback = 0;
  m.stages.assign(num_stages, c);
  m.devices.assign(1, DeviceSpec{});
  return m;
}

TimeNs ComputeTime(TimeNs time, double speed) {
  if (speed == 1 || time == 0) return time;
  const double ns = std::round(static_cast<double>(time) / speed);
  // 2^63 is the first double above every int64; NaN fails the comparison too.
  if (!(ns < 9223372036854775808.0)) return -1;
  return static_cast<TimeNs>(ns);
}

TimeNs TransferTime(int64_t bytes, double bandwidth) {
  if (bandwidth <= 0 || bytes <= 0) return 0;
  const double ns = std::ceil(static_cast<double>(bytes) * 1e9 / bandwidth);
  // 2^63 is the first double above every int64; NaN fails the comparison too.
  if (!(ns < 9223372036854775808.0)) return -1;
  return static_cast<TimeNs>(ns);
}

}  // namespace pipecast::sim
