// The schedule IR: plain data that describes what every device of a pipeline does, in order.
//
// A Program holds, for each device, its ordered list of Actions, plus the metadata both engines
// need (devices, virtual stages and their placement, microbatches per optimizer step, number of
// minibatches, the method and its parameters). Generators (generators.h) produce programs; the
// lowering pass (lower.h) inserts send/receive pairs; the validator (validate.h) checks them;
// the simulator (sim/) times them; the executor (runtime/) obeys them.
//
// Weight versions are part of the IR: every F/B/I carries a WeightRef saying which weights it
// uses (current, stashed, predicted with a horizon, one of 2BW's buffers, corrected, or an
// explicit version). Version numbers count optimizer Steps on the action's device: version n is
// the weights after n Steps of that device. Both engines resolve a WeightRef the same way
// (version_plan.h), so the simulator's version accounting and the executor's version trace agree.
//
// This header is plain C++: no CUDA, Eigen or Boost. Enum values are serialised: do not renumber.
#pragma once

#include <algorithm>
#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/method_options.h"

namespace pipecast::ir {

// What an action does. Values are serialised in JSON by name; the numbers are stable anyway.
enum class ActionKind : uint8_t {
  kForward = 0,         // F: forward of (stage, microbatch)
  kBackward = 1,        // B: full backward (input and weight gradients)
  kBackwardInput = 2,   // I: input-gradient-only backward, when B is split (zero-bubble)
  kWeightGrad = 3,      // W: weight-gradient pass of a split backward
  kSendActivation = 4,  // SA: stage sends its forward output for microbatch to stage + 1
  kRecvActivation = 5,  // RA: stage receives the activation of microbatch from stage - 1
  kSendGradient = 6,    // SG: stage sends its input gradient for microbatch to stage - 1
  kRecvGradient = 7,    // RG: stage receives the gradient of microbatch from stage + 1
  kStep = 8,            // S: optimizer step of every stage on the device; a stage that took
                        // no weight gradient since its last Step is left as it is (WPipe)
  // AR: this device's copy of `stage` joins the all-reduce (sum) of that stage's weight
  // gradients over all its replicas; `microbatch` is the round r (the r-th all-reduce of the
  // stage, 0-based). Every replica of the stage takes part once per round, and a device's next
  // Step applies the reduced gradient. Only in programs with replicas > 1.
  kAllReduce = 9,
  // AV: this device's copy of `stage` joins the elastic averaging of that stage's weights over
  // all its replicas (AvgPipe): every copy W_i and the reference W~ it keeps move toward each
  // other, W_i <- W_i - a (W_i - W~) and W~ <- W~ + a sum_i (W_i - W~), from one all-reduce of
  // the weights; `microbatch` is the round. It blocks the device until the exchange is done.
  kAverage = 10,
};

// Which weights an F, B or I computes with. Do not renumber.
enum class WeightSource : uint8_t {
  kCurrent = 0,      // the device's current weights when the action starts
  kStashed = 1,      // (B/I only) exactly the weights this microbatch's F used (PipeDream stash)
  kPredicted = 2,    // current weights extrapolated `value` = s optimizer steps ahead
  kBufferOlder = 3,  // PipeDream-2BW: the older of the two buffers, version max(0, n - 1)
  kBufferNewer = 4,  // PipeDream-2BW: the newer buffer, version n
  kCorrected = 5,    // PipeMare: current weights corrected back by `value` = delay gap steps
  kVersion = 6,      // an explicit version number `value` (vertical sync)
};

struct WeightRef {
  WeightSource source = WeightSource::kCurrent;
  // kPredicted: horizon s >= 0; kCorrected: delay gap >= 0; kVersion: version >= 0; else 0.
  int32_t value = 0;
  friend bool operator==(const WeightRef&, const WeightRef&) = default;
};

struct Action {
  ActionKind kind = ActionKind::kForward;
  // The virtual stage this action belongs to. For sends, the sending stage; for receives, the
  // receiving stage. For kStep, -1 (a step updates every stage placed on the device).
  int32_t stage = 0;
  // Global microbatch index in [0, microbatches * minibatches); -1 for kStep; the round for
  // kAllReduce. Microbatch j belongs to minibatch j / microbatches.
  int32_t microbatch = 0;
  WeightRef weights;  // meaningful for F, B, I only
  friend bool operator==(const Action&, const Action&) = default;
};

struct Program {
  std::string method = "custom";
  // Method parameters as given (key=value); generators document and validate their keys.
  std::map<std::string, std::string> params;
  // The same parameters, typed (method_options.h); what every consumer reads.
  MethodOptions options;
  int32_t num_devices = 1;
  int32_t num_stages = 1;           // virtual stages; stage 0 holds the input layers
  // Copies of the whole pipeline (data-parallel pipelines, Chimera's two directions, ...). Every
  // replica holds every stage; replica r's copy of stage s is on device
  // placement[r * num_stages + s], so placement has replicas * num_stages entries (replica 0
  // first: with one replica, placement[stage] = device). A device holds at most one copy of a
  // stage, so on a device a stage number names one copy.
  int32_t replicas = 1;
  std::vector<int32_t> placement;
  // microbatch_replica[j mod microbatches] = the replica that runs microbatch j (the same pattern
  // every minibatch). Empty: every microbatch runs on replica 0.
  std::vector<int32_t> microbatch_replica;
  int32_t microbatches = 1;         // per optimizer step of a synchronous method (per minibatch)
  int32_t minibatches = 1;
  int32_t microbatch_size = 1;  // samples per microbatch
  // Largest number of weight versions a device may hold at once, per device, as the method's
  // buffers allow (stash ring size, 2 for 2BW, ...). Empty = no declared limit.
  std::vector<int32_t> max_live_versions;
  std::vector<std::vector<Action>> devices;  // devices[d] = program of device d, in order

  friend bool operator==(const Program&, const Program&) = default;

  int32_t total_microbatches() const { return microbatches * minibatches; }
  // Replica 0's placement: stage_placement()[stage] = device (the whole placement with one
  // replica). What costs and partitions are cut by: every copy is alike.
  std::vector<int32_t> stage_placement() const {
    return {placement.begin(), placement.begin() + std::min<size_t>(placement.size(),
                                                                    static_cast<size_t>(num_stages))};
  }
  // The device of replica 0's copy of `stage` (the only copy when replicas == 1).
  int32_t device_of(int32_t stage) const { return placement[stage]; }
  int32_t replica_of(int32_t microbatch) const {
    return microbatch_replica.empty()
               ? 0
               : microbatch_replica[static_cast<size_t>(microbatch % microbatches)];
  }
  // The device that runs `stage` for `microbatch` (its replica's copy).
  int32_t device_of(int32_t stage, int32_t microbatch) const {
    return placement[static_cast<size_t>(replica_of(microbatch)) * num_stages + stage];
  }
  int32_t device_of_replica(int32_t stage, int32_t replica) const {
    return placement[static_cast<size_t>(replica) * num_stages + stage];
  }
  // The replica whose copy of `stage` lives on device d, or -1 if d holds no copy of it.
  int32_t replica_on(int32_t stage, int32_t d) const;
  bool holds(int32_t d, int32_t stage) const { return replica_on(stage, d) >= 0; }
  // placement has replicas * num_stages entries that are devices, and microbatch_replica is
  // empty or names replicas: device_of(stage, microbatch) is then safe to call.
  bool placement_well_formed() const;
  // Number of stage copies on device d (of every replica).
  int32_t stages_on_device(int32_t d) const;
  size_t num_actions() const;
};

// The conventional placement: stage s on device s mod num_devices.
std::vector<int32_t> RoundRobinPlacement(int32_t num_stages, int32_t num_devices);

// F, B, I, W
constexpr bool IsCompute(ActionKind k) { return k <= ActionKind::kWeightGrad; }
// B or I (the pass that sends a gradient upstream)
constexpr bool IsBackward(ActionKind k) {
  return k == ActionKind::kBackward || k == ActionKind::kBackwardInput;
}
// B or W
constexpr bool ProducesWeightGrad(ActionKind k) {
  return k == ActionKind::kBackward || k == ActionKind::kWeightGrad;
}
// AR, AV: collectives over a stage's replicas.
constexpr bool IsCollective(ActionKind k) {
  return k == ActionKind::kAllReduce || k == ActionKind::kAverage;
}
// SA, RA, SG, RG (point to point; an all-reduce is a collective, not one of these)
constexpr bool IsCommunication(ActionKind k) {
  return k >= ActionKind::kSendActivation && k <= ActionKind::kRecvGradient;
}
// F, B, I
constexpr bool UsesWeights(ActionKind k) { return k <= ActionKind::kBackwardInput; }

// Short names: "F", "B", "I", "W", "SA", "RA", "SG", "RG", "S", "AR", "AV".
std::string_view KindToken(ActionKind kind);
// Names used in JSON: "forward", "backward", "backward_input", "weight_grad", "send_activation",
// "recv_activation", "send_gradient", "recv_gradient", "step", "all_reduce", "average".
std::string_view KindName(ActionKind kind);
// Names used in text and JSON for weight sources: "cur", "stash", "pred", "old", "new", "corr",
// "v".
std::string_view WeightSourceName(WeightSource source);

// The token of an action in the text format, e.g. "F3", "5B3@stash", "F7@pred:3", "S".
// The stage prefix is written only when `with_stage` is true.
std::string ActionToken(const Action& a, bool with_stage);

}  // namespace pipecast::ir
