#include "sim/engine_costs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>

namespace pipecast::sim::internal {
namespace {

constexpr std::string_view kTooLong =
    "longer than the simulator's clock holds (int64 nanoseconds, about 292 years)";

Status TooLarge(int32_t stage, std::string_view what) {
  return InvalidArgument(fmt::format("stage {}: {}", stage, what));
}

// a + b, or false when it does not fit.
bool Add(int64_t a, int64_t b, int64_t* out) { return !__builtin_add_overflow(a, b, out); }
// k * a, or false when it does not fit.
bool Mul(int64_t k, int64_t a, int64_t* out) { return !__builtin_mul_overflow(k, a, out); }

// Time to move `bytes` over `bandwidth`, or an error naming `what` (the bytes' name).
Result<TimeNs> Move(int32_t stage, int64_t bytes, double bandwidth, std::string_view what) {
  const TimeNs t = TransferTime(bytes, bandwidth);
  if (t < 0) {
    return TooLarge(stage, fmt::format("moving {} ({} bytes) at {:.6g} bytes/s takes {}", what,
                                       bytes, bandwidth, kTooLong));
  }
  return t;
}

// The stage's own times and sizes, checked for sign.
Status CheckStage(int32_t s, const StageCost& c) {
  const std::pair<std::string_view, int64_t> kValues[] = {
      {"forward", c.forward},
      {"backward", c.backward},
      {"backward_input", c.backward_input},
      {"backward_weight", c.backward_weight},
      {"activation_bytes", c.activation_bytes},
      {"activation_bytes_after_input_grad", c.activation_bytes_after_input_grad},
      {"message_bytes", c.message_bytes},
      {"weight_bytes", c.weight_bytes},
      {"optimizer_state_bytes", c.optimizer_state_bytes},
  };
  for (const auto& [name, value] : kValues) {
    if (value < 0) return TooLarge(s, fmt::format("{} is negative ({})", name, value));
  }
  return Status::Ok();
}

// A compute time on a device of `speed` (sim/cost_model.h: ComputeTime), or an error naming it.
Result<TimeNs> Compute(int32_t stage, TimeNs time, double speed, std::string_view what) {
  const TimeNs t = ComputeTime(time, speed);
  if (t < 0) {
    return TooLarge(stage, fmt::format("{} ({} ns at speed 1) on a device of speed {:.6g} takes {}",
                                       what, time, speed, kTooLong));
  }
  return t;
}

Result<StageTimes> StageTimesOf(int32_t s, const StageCost& c, const DeviceSpec& device,
                                double link_bandwidth) {
  PIPECAST_RETURN_IF_ERROR(CheckStage(s, c));
  if (!(device.speed > 0) || !std::isfinite(device.speed)) {
    return TooLarge(
        s, fmt::format("its device's speed is {}; it must be finite and > 0", device.speed));
  }
  const double memory_bandwidth = device.memory_bandwidth;
  StageTimes t;
  const std::pair<TimeNs, TimeNs*> kCompute[] = {{c.forward, &t.forward},
                                                 {c.backward, &t.backward},
                                                 {c.backward_input, &t.backward_input},
                                                 {c.backward_weight, &t.backward_weight}};
  for (const auto& [time, out] : kCompute) {
    Result<TimeNs> scaled = Compute(s, time, device.speed, "a compute pass");
    if (!scaled.ok()) return scaled.status();
    *out = *scaled;
  }
  t.activation_bytes = c.activation_bytes;
  t.activation_bytes_after_input_grad = c.activation_bytes_after_input_grad;
  t.message_bytes = c.message_bytes;
  // Prediction reads W and the optimizer state and writes the predicted copy; correction reads
  // W and the velocity and writes the corrected copy.
  int64_t w2 = 0, predict_bytes = 0, correct_bytes = 0;
  if (!Mul(2, c.weight_bytes, &w2) || !Add(w2, c.optimizer_state_bytes, &predict_bytes) ||
      !Mul(3, c.weight_bytes, &correct_bytes)) {
    return TooLarge(s, "weight_bytes and optimizer_state_bytes are too large to add up");
  }
  Result<TimeNs> predict = Move(s, predict_bytes, memory_bandwidth, "the predicted weights");
  if (!predict.ok()) return predict.status();
  Result<TimeNs> correct = Move(s, correct_bytes, memory_bandwidth, "the corrected weights");
  if (!correct.ok()) return correct.status();
  Result<TimeNs> message = Move(s, c.message_bytes, link_bandwidth, "message_bytes");
  if (!message.ok()) return message.status();
  t.predict = *predict;
  t.correct = *correct;
  t.message = *message;
  return t;
}

// What a post-validated step of stage `s` adds: the given rollback cost, or the copy of the
// weights and the optimizer state it would restore (read and write both).
Result<TimeNs> RollbackTime(int32_t s, const StageCost& c, double memory_bandwidth) {
  if (c.optimizer_rollback >= 0) return c.optimizer_rollback;
  int64_t both = 0, copy = 0;
  if (!Add(c.weight_bytes, c.optimizer_state_bytes, &both) || !Mul(2, both, &copy)) {
    return TooLarge(s, "the bytes a rollback copy moves do not fit in int64");
  }
  return Move(s, copy, memory_bandwidth, "the rollback copy");
}

// Adds stage `s`'s step and memory to its device's totals; a post-validated step (`rollback`)
// also costs its rollback.
Status AddToDevice(int32_t s, const StageCost& c, const DeviceSpec& device, bool correction,
                   bool rollback, DeviceCosts& k) {
  const double memory_bandwidth = device.memory_bandwidth;
  const int64_t grad = c.gradient_bytes < 0 ? c.weight_bytes : c.gradient_bytes;
  // A step reads and writes W and the optimizer state and reads the gradient; PipeMare also
  // keeps the old weights (read and write W) and updates its velocity (read the velocity, old
  // and new W; write the velocity), as the executor does.
  int64_t w2 = 0, o2 = 0, w6 = 0, bytes = 0;
  if (!Mul(2, c.weight_bytes, &w2) || !Mul(2, c.optimizer_state_bytes, &o2) ||
      !Mul(6, c.weight_bytes, &w6) || !Add(w2, grad, &bytes) || !Add(bytes, o2, &bytes) ||
      (correction && !Add(bytes, w6, &bytes))) {
    return TooLarge(s, "the bytes an optimizer step moves do not fit in int64");
  }
  TimeNs step = 0;
  if (c.optimizer_step >= 0) {
    Result<TimeNs> velocity = Move(s, correction ? w6 : 0, memory_bandwidth, "the velocity");
    if (!velocity.ok()) return velocity.status();
    Result<TimeNs> given = Compute(s, c.optimizer_step, device.speed, "the optimizer step");
    if (!given.ok()) return given.status();
    if (!Add(*given, *velocity, &step)) {
      return TooLarge(s, fmt::format("the optimizer step takes {}", kTooLong));
    }
  } else {
    Result<TimeNs> derived = Move(s, bytes, memory_bandwidth, "the optimizer step's bytes");
    if (!derived.ok()) return derived.status();
    step = *derived;
  }
  if (rollback) {
    Result<TimeNs> extra = RollbackTime(s, c, memory_bandwidth);
    if (!extra.ok()) return extra.status();
    if (!Add(step, *extra, &step)) {
      return TooLarge(s, fmt::format("the post-validated optimizer step takes {}", kTooLong));
    }
  }
  Result<TimeNs> save = Move(s, w2, memory_bandwidth, "the saved weights");
  if (!save.ok()) return save.status();
  if (!Add(k.step, step, &k.step) || !Add(k.save, *save, &k.save) ||
      !Add(k.weight_bytes, c.weight_bytes, &k.weight_bytes) ||
      !Add(k.optimizer_bytes, c.optimizer_state_bytes, &k.optimizer_bytes) ||
      !Add(k.gradient_bytes, grad, &k.gradient_bytes) ||
      (correction && !Add(k.extra_bytes, c.weight_bytes, &k.extra_bytes))) {
    return TooLarge(s, "the device's step time or memory does not fit in int64");
  }
  return Status::Ok();
}

}  // namespace

TimeNs AllReduceTime(int64_t bytes, int32_t participants, const LinkSpec& link) {
  if (participants <= 1) return 0;
  const int64_t steps = 2 * (static_cast<int64_t>(participants) - 1);
  // Each step moves ceil(bytes / R) over a link; the steps are sequential.
  const int64_t chunk = bytes / participants + (bytes % participants != 0 ? 1 : 0);
  const TimeNs per_step = TransferTime(chunk, link.bandwidth);
  if (per_step < 0) return -1;
  TimeNs step = 0, total = 0;
  if (__builtin_add_overflow(per_step, link.latency, &step) ||
      __builtin_mul_overflow(step, steps, &total))
    return -1;
  return total;
}

Result<EngineCosts> ResolveCosts(const ir::Program& p, const CostModel& cost,
                                 const std::vector<uint8_t>& uses_correction) {
  const int32_t num_devices = static_cast<int32_t>(p.devices.size());
  EngineCosts out;
  out.stages.resize(static_cast<size_t>(p.num_stages) * p.replicas);
  out.devices.resize(static_cast<size_t>(num_devices));
  for (DeviceCosts& k : out.devices) k.chunks = 0;
  if (cost.devices.empty() || num_devices % static_cast<int32_t>(cost.devices.size()) != 0) {
    return InvalidArgument(fmt::format(
        "the cost model describes {} devices but the program has {} (give one per device, or "
        "one per device of a copy of the pipeline)",
        cost.devices.size(), num_devices));
  }
  for (int32_t s = 0; s < p.num_stages; ++s) {
    const StageCost& c = cost.stages[static_cast<size_t>(s)];
    Result<StageTimes> t = StageTimesOf(s, c, cost.device(p.device_of(s)), cost.link.bandwidth);
    if (!t.ok()) return t.status();
    const int64_t grad = c.gradient_bytes < 0 ? c.weight_bytes : c.gradient_bytes;
    t->all_reduce =
        c.all_reduce >= 0 ? c.all_reduce : AllReduceTime(grad, p.replicas, cost.collective());
    t->average =
        c.average >= 0 ? c.average : AllReduceTime(c.weight_bytes, p.replicas, cost.collective());
    if (t->all_reduce < 0 || t->average < 0) {
      return InvalidArgument(fmt::format(
          "stage {}: the all-reduce of its {} gradient bytes over {} replicas {}", s, grad,
          p.replicas, kTooLong));
    }
    // Every replica's copy of the stage costs its device the same weights, state and steps, at
    // that device's speed.
    for (int32_t r = 0; r < p.replicas; ++r) {
      const int32_t dr = p.device_of_replica(s, r);
      Result<StageTimes> copy = r == 0 ? t : StageTimesOf(s, c, cost.device(dr), cost.link.bandwidth);
      if (!copy.ok()) return copy.status();
      copy->all_reduce = t->all_reduce;
      copy->average = t->average;
      out.stages[static_cast<size_t>(r) * p.num_stages + s] = *copy;
      DeviceCosts& k = out.devices[static_cast<size_t>(dr)];
      PIPECAST_RETURN_IF_ERROR(AddToDevice(s, c, cost.device(dr), uses_correction[dr] != 0,
                                           p.options.post_validation, k));
      // Elastic averaging keeps the reference weights W~ next to every copy.
      if (p.options.elastic_alpha > 0 && !Add(k.extra_bytes, c.weight_bytes, &k.extra_bytes))
        return TooLarge(s, "the device's memory does not fit in int64");
      ++k.chunks;
    }
  }
  for (DeviceCosts& k : out.devices) {
    k.chunks = std::max(1, k.chunks);
    int64_t fixed = 0;
    if (!Add(k.optimizer_bytes, k.gradient_bytes, &fixed) ||
        !Add(fixed, k.extra_bytes, &k.fixed_bytes)) {
      return InvalidArgument("a device's optimizer state and gradients do not fit in int64 bytes");
    }
  }
  return out;
}

}  // namespace pipecast::sim::internal
