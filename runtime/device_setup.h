// What every Device derives from its DeviceSetup the same way (the CPU and the CUDA device):
// PipeMare's decay per stage, the reduction buffers a stage's copy holds, whether a program
// averages a stage's copies (AvgPipe's reference weights), and how many steps a program makes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/ir.h"
#include "common/version_plan.h"
#include "runtime/device.h"

namespace pipecast::runtime {

// The most updates between a microbatch's F and B on `stage` (PipeMare's delay τ).
inline int32_t StageDelay(const ir::VersionPlan& plan, int32_t stage) {
  int32_t tau = 0;
  for (int32_t j = 0; j < plan.total_microbatches; ++j) {
    const ir::VersionRecord& r = plan.At(stage, j);
    if (r.f_counter >= 0 && r.b_counter >= 0) tau = std::max(tau, r.version_gap());
  }
  return tau;
}

// PipeMare's velocity decay γ of `stage` (γ^(1/τ) when the program scales it per stage).
inline double VelocityDecay(const DeviceSetup& setup, int32_t stage) {
  const ir::PipeMareOptions& pm = setup.program->options.pipemare;
  const int32_t tau = StageDelay(*setup.plan, stage);
  return pm.decay_scaling == ir::DecayScaling::kPerStage && tau > 0 ? std::pow(pm.decay, 1.0 / tau)
                                                                    : pm.decay;
}

// Reduction buffers of `stage` on the setup's device: replicas - 1 where it holds the replica-0
// copy of a replicated program (the copy that sums the others' gradients), else 0.
inline int32_t ReduceSlots(const DeviceSetup& setup, int32_t stage) {
  const ir::Program& p = *setup.program;
  return p.replicas > 1 && p.device_of_replica(stage, 0) == setup.device ? p.replicas - 1 : 0;
}

// True if the setup's program averages `stage` on the setup's device (AvgPipe's AV), or its
// method averages copies at all (a program shorter than the period has no AV, but the
// reference weights must still start as the run's initial weights).
inline bool Averages(const DeviceSetup& setup, int32_t stage) {
  const ir::Program& p = *setup.program;
  if (p.options.elastic_alpha > 0 && p.replicas > 1) return true;
  for (const ir::Action& a : p.devices[setup.device])
    if (a.kind == ir::ActionKind::kAverage && a.stage == stage) return true;
  return false;
}

// The Device::Step calls the executor makes on the setup's device in one program: at every S
// it steps each stage the device holds (runtime/executor.cc), so a device holding two stages
// (interleaved, Chimera, ZB-V) steps twice per S. What a device sizes its per-step slots by.
inline int32_t StepCalls(const DeviceSetup& setup) {
  const ir::Program& p = *setup.program;
  int32_t steps = 0, held = 0;
  for (const ir::Action& a : p.devices[setup.device])
    steps += a.kind == ir::ActionKind::kStep ? 1 : 0;
  for (int32_t s = 0; s < p.num_stages; ++s) held += p.holds(setup.device, s) ? 1 : 0;
  return steps * held;
}

// A record's part of a stage whose memory has the record layout [x | y | dy | dx | saved]
// (X, Y, DY, DX, rows, in and out, as both devices' stage data have them).
template <typename StageMemory>
BufferView RecordPartView(StageMemory& s, int32_t record, RecordPart part) {
  switch (part) {
    case RecordPart::kInput:
      return {s.X(record), s.rows * s.in};
    case RecordPart::kOutput:
      return {s.Y(record), s.rows * s.out};
    case RecordPart::kOutputGrad:
      return {s.DY(record), s.rows * s.out};
    case RecordPart::kInputGrad:
      return {s.DX(record), s.rows * s.in};
  }
  return {};
}

}  // namespace pipecast::runtime
