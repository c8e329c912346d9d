// The Device: the memory and the compute of one pipeline device, as the executor drives it.
//
// The executor names things, the device holds them. A device owns, for every virtual stage it
// runs: the current weights, the gradient, the optimizer state, the copy slots of the version
// plan (stashes, 2BW's older buffer, kept versions, predicted and corrected scratch copies),
// PipeMare's velocity, and the activation records of the microbatches in flight (each record
// holds the stage's input x, output y, output gradient dy, input gradient dx and everything the
// layers keep in between). Everything is sized by Prepare from the version plan; nothing is
// allocated while a program runs.
//
// Operations are enqueued on lanes (compute, send, receive) and ordered across lanes only by
// events: a CUDA device maps lanes to streams and events to CUDA events; the CPU device runs
// every operation on the calling thread before returning, so its events are complete when
// recorded. Failures are not returned by the operations: a non-finite loss or gradient sets a
// flag on the device and Synchronize reports the first one (method, stage, microbatch or step),
// so that a GPU need not synchronise per microbatch. Loss values stay on the device until
// ReadLosses.
//
// Buffers are addressed by (stage, slot) or (stage, record, part); BufferView is a non-owning
// view for transports. One thread drives a device (the executor's thread for it).
//
// With replicas (ir::Program::replicas > 1) a device holds its copies of stages like any other
// stage (a device holds at most one copy of a stage, so a stage number names it). For the
// all-reduce of a stage's weight gradient, the device of the stage's replica-0 copy also holds
// replicas - 1 reduction buffers, one per other copy, to receive their gradients into, and sums
// them into its own gradient in replica order (SumGradients). The elastic averaging of AvgPipe
// gathers the copies' weights into the same buffers (ElasticAverage).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "common/version_plan.h"

namespace pipecast::runtime {

using Clock = std::chrono::steady_clock;

enum class Lane : uint8_t { kCompute = 0, kSend = 1, kReceive = 2 };

// A point in one lane's sequence of operations. Plain value, from Device::Record.
struct Event {
  int32_t lane = -1;
  int64_t sequence = -1;  // -1: no event (already complete)
};

// A non-owning view of device memory.
struct BufferView {
  float* data = nullptr;
  int64_t count = 0;
};

// The parts of an activation record a transport reads or writes.
enum class RecordPart : uint8_t {
  kInput = 0,       // x: received activation (or the data)
  kOutput = 1,      // y: the activation to send
  kOutputGrad = 2,  // dy: received gradient (or the loss gradient)
  kInputGrad = 3,   // dx: the gradient to send
};

// One measured prediction per 16 steps at most: a measurement passes over the stage's weights
// three times (keep W_t and Ŵ, compare with W_{t+s}), which tracking every step would add to
// every step of the per-microbatch methods and so to their measured time. The means then sample
// the run's predictions evenly along it.
inline constexpr int32_t kTrackPredictionsEvery = 16;

struct DeviceSetup {
  const ir::Program* program = nullptr;
  const ir::VersionPlan* plan = nullptr;  // PlanDetail::kExecution
  int32_t device = 0;                     // which device of the program this is
  int32_t microbatch_rows = 0;            // rows of one microbatch (examples × tokens)
  int32_t eval_rows = 0;                  // rows of one evaluation chunk (0: no evaluation)
  // Measure predictions against the weights the stage reaches `s` steps later ("Prediction
  // accuracy" in docs/metrics.md). 0: off. K >= 1: a prediction is tracked when none is and its
  // base version is at least K steps after the last tracked one's, so measuring (a pass over the
  // stage's weights) costs at most one such pass per K steps.
  int32_t track_predictions_every = 0;
};

// What an optimizer step needs besides the device's own state.
struct StepArgs {
  double lr = 0;
  int64_t step = 0;  // 1-based step number of the run (for the report of a non-finite gradient)
  // False when the stage took no weight gradient since its last Step (WPipe's first Step for its
  // first group, its last for the second): the weights and the optimizer state stay as they
  // are and only the version advances, so the optimizer counts only the updates it makes.
  bool apply = true;
};

// The weights one F, B or I actually computed with, as the device saw them: the tag of the
// buffer it read (a buffer's tag is set by whatever wrote it: a Step advances the current
// version, a save copies the current tag, a prediction or correction records its base and
// horizon).
struct ServedWeights {
  ir::ActionKind kind = ir::ActionKind::kForward;
  int32_t stage = 0;
  int32_t microbatch = 0;
  int32_t counter = 0;  // steps the stage had taken
  int32_t version = 0;
  int32_t horizon = 0;
  friend bool operator==(const ServedWeights&, const ServedWeights&) = default;
};

// Prediction accuracy of one stage over a segment (DeviceSetup::track_predictions_every).
struct PredictionStats {
  int64_t count = 0;      // predictions measured
  double error_sum = 0;   // sum of ||Ŵ - W_{t+s}|| / ||W_{t+s} - W_t||
  double cosine_sum = 0;  // sum of cos(Ŵ - W_t, W_{t+s} - W_t)
};

// A stage's whole state, for checkpoints: named host tensors, in a fixed order per device.
struct StageState {
  int64_t optimizer_steps = 0;
  std::vector<std::pair<std::string, std::vector<float>>> tensors;
};

class Device {
 public:
  virtual ~Device() = default;
  // "cpu", "cuda:0", ...: for messages.
  virtual std::string name() const = 0;

  // Sizes every per-program buffer from the plan (copy slots, records, the served-weights
  // trace, losses). The only allocation point besides construction. Errors: memory the device
  // cannot provide (naming the stage and what it needed), a plan that does not fit the device.
  virtual Status Prepare(const DeviceSetup& setup) = 0;

  // Host copies of a stage's current weights (set before a run, read after Synchronize).
  virtual void SetWeights(int32_t stage, std::span<const float> weights) = 0;
  virtual void ReadWeights(int32_t stage, std::span<float> out) = 0;

  // A weight op of the plan (save, predict with rate `lr`, correct, release), on kCompute.
  virtual void Apply(const ir::WeightOp& op, double lr) = 0;

  // --- compute (kCompute). `weights` is ir::kCurrentWeights or a copy slot of the stage.
  virtual void LoadInput(int32_t stage, int32_t record, std::span<const float> x) = 0;
  virtual void Forward(const ir::Action& action, int32_t record, int32_t weights) = 0;
  // The loss of the last stage's output and its gradient (scaled) into the record's dy.
  virtual void Loss(int32_t stage, int32_t record, int32_t microbatch,
                    std::span<const int32_t> labels, float scale) = 0;
  // The input gradient (skipped when !need_dx: nobody consumes it); records what W needs.
  virtual void BackwardInput(const ir::Action& action, int32_t record, int32_t weights,
                             bool need_dx) = 0;
  // grad += the weight gradient of the record's microbatch.
  virtual void BackwardWeight(int32_t stage, int32_t record) = 0;
  // Copies a record's y into the next stage's x (forward) or its dx into the previous stage's
  // dy (backward), both stages on this device.
  virtual void HandOver(int32_t stage, int32_t record, int32_t to_stage, int32_t to_record,
                        bool gradient) = 0;
  // One optimizer step of the stage (checks the gradient's finiteness, updates PipeMare's
  // velocity where the plan has one, zeroes the gradient); with !args.apply only the version
  // advances.
  virtual void Step(int32_t stage, const StepArgs& args) = 0;

  // A record's part, for a transport to read (after an event on kCompute) or write.
  virtual BufferView Buffer(int32_t stage, int32_t record, RecordPart part) = 0;

  // --- all-reduce of a stage's weight gradient over its copies (programs with replicas)
  // The stage's accumulated weight gradient, for a transport to read (after an event on
  // kCompute) or to write (the reduced gradient, before the next Step).
  virtual BufferView Gradient(int32_t stage) = 0;
  // Reduction buffer `slot` in [0, replicas - 1) of the stage, where the copy of replica
  // slot + 1 is received. REQUIRES: this device holds the stage's replica-0 copy.
  virtual BufferView ReduceBuffer(int32_t stage, int32_t slot) = 0;
  // gradient = (((gradient + buffer 0) + buffer 1) + ...) + buffer count - 1, element by
  // element, left to right: the sum in replica order, the same bits whatever the timing
  // (kCompute). REQUIRES: count <= replicas - 1, the buffers received.
  virtual void SumGradients(int32_t stage, int32_t count) = 0;

  // --- elastic averaging of a stage's weights over its copies (AvgPipe, ir::ActionKind::kAverage)
  // Every copy of a stage the program averages keeps reference weights W~: Prepare sizes them
  // and sets them to the current weights when the device has none for the stage (the first
  // program after construction or SetWeights, so W~ starts as the run's initial weights,
  // identical on every copy); later programs keep them; State saves them ("reference") and
  // LoadState restores them. Below, a = float(alpha) and t = W~ before the operation.
  // The stage's current weights, for a transport to read (after an event on kCompute).
  virtual BufferView Weights(int32_t stage) = 0;
  // W~, for a transport to read (the replica-0 copy, after ElasticAverage) or to write (the
  // other copies, after ElasticPull).
  virtual BufferView Reference(int32_t stage) = 0;
  // The replica-0 copy, the other copies' weights in reduction buffers 0 .. count - 1; per
  // element, in float:
  //   s = (((W - t) + (b_0 - t)) + (b_1 - t)) + ... + (b_{count-1} - t), left to right,
  //   W <- W - a (W - t),  W~ <- t + a s      (kCompute)
  virtual void ElasticAverage(int32_t stage, int32_t count, double alpha) = 0;
  // Another copy, per element: W <- W - a (W - t); its W~ is then overwritten by the replica-0
  // copy's.
  virtual void ElasticPull(int32_t stage, double alpha) = 0;

  // --- ordering
  virtual Event Record(Lane lane) = 0;
  // Later operations on `lane` wait for `event`.
  virtual void Wait(Lane lane, Event event) = 0;
  // Blocks the calling thread until `event` completed.
  virtual void HostWait(Event event) = 0;
  // Waits for every lane; then the first non-finite loss or gradient (kNonFinite, naming the
  // method, stage and microbatch or step), a device error (kDeviceError) or the deadline
  // (kDeadlineExceeded).
  virtual Status Synchronize(Clock::time_point deadline) = 0;

  // --- results of the program (after Synchronize)
  // Per global microbatch whose loss this device computed: the loss, and correct predictions.
  virtual void ReadLosses(std::span<double> losses, int64_t* correct) = 0;
  // The weights every F/B/I used, in program order.
  virtual std::span<const ServedWeights> Served() = 0;
  virtual PredictionStats Predictions(int32_t stage) = 0;

  // --- evaluation: forward only with the current weights, one chunk of at most
  // DeviceSetup::eval_rows rows at a time, in buffers of its own (kCompute)
  virtual void EvalLoadInput(int32_t stage, std::span<const float> x, int64_t rows) = 0;
  virtual void EvalForward(int32_t stage, int64_t rows) = 0;
  virtual void EvalHandOver(int32_t stage, int32_t to_stage, int64_t rows) = 0;
  // The chunk's input (to receive into) or output (to send) of a stage.
  virtual BufferView EvalBuffer(int32_t stage, RecordPart part, int64_t rows) = 0;
  // Adds the chunk's loss sum and correct count to the device's evaluation totals.
  virtual void EvalLoss(int32_t stage, std::span<const int32_t> labels, int64_t rows) = 0;
  // The totals since the last call (then reset). After Synchronize.
  virtual void ReadEval(double* loss_sum, int64_t* correct, int64_t* rows) = 0;

  // --- checkpoints (between programs: no copies or records are live then)
  virtual Result<StageState> State(int32_t stage) = 0;
  virtual Status LoadState(int32_t stage, const StageState& state) = 0;
};

}  // namespace pipecast::runtime

// The overrides every concrete Device declares besides name() and Served() (one list, so that
// the devices cannot drift apart).
#define PIPECAST_DEVICE_OVERRIDES                                                                  \
  Status Prepare(const DeviceSetup& setup) override;                                               \
  void SetWeights(int32_t stage, std::span<const float> weights) override;                         \
  void ReadWeights(int32_t stage, std::span<float> out) override;                                  \
  void Apply(const ir::WeightOp& op, double lr) override;                                          \
  void LoadInput(int32_t stage, int32_t record, std::span<const float> x) override;                \
  void Forward(const ir::Action& action, int32_t record, int32_t weights) override;                \
  void Loss(int32_t stage, int32_t record, int32_t microbatch, std::span<const int32_t> labels,    \
            float scale) override;                                                                 \
  void BackwardInput(const ir::Action& action, int32_t record, int32_t weights, bool need_dx)      \
      override;                                                                                    \
  void BackwardWeight(int32_t stage, int32_t record) override;                                     \
  void HandOver(int32_t stage, int32_t record, int32_t to_stage, int32_t to_record, bool gradient) \
      override;                                                                                    \
  void Step(int32_t stage, const StepArgs& args) override;                                         \
  BufferView Buffer(int32_t stage, int32_t record, RecordPart part) override;                      \
  BufferView Gradient(int32_t stage) override;                                                     \
  BufferView ReduceBuffer(int32_t stage, int32_t slot) override;                                   \
  void SumGradients(int32_t stage, int32_t count) override;                                        \
  BufferView Weights(int32_t stage) override;                                                      \
  BufferView Reference(int32_t stage) override;                                                    \
  void ElasticAverage(int32_t stage, int32_t count, double alpha) override;                        \
  void ElasticPull(int32_t stage, double alpha) override;                                          \
  Event Record(Lane lane) override;                                                                \
  void Wait(Lane lane, Event event) override;                                                      \
  void HostWait(Event event) override;                                                             \
  Status Synchronize(Clock::time_point deadline) override;                                         \
  void ReadLosses(std::span<double> losses, int64_t* correct) override;                            \
  PredictionStats Predictions(int32_t stage) override;                                             \
  void EvalLoadInput(int32_t stage, std::span<const float> x, int64_t rows) override;              \
  void EvalForward(int32_t stage, int64_t rows) override;                                          \
  void EvalHandOver(int32_t stage, int32_t to_stage, int64_t rows) override;                       \
  BufferView EvalBuffer(int32_t stage, RecordPart part, int64_t rows) override;                    \
  void EvalLoss(int32_t stage, std::span<const int32_t> labels, int64_t rows) override;            \
  void ReadEval(double* loss_sum, int64_t* correct, int64_t* rows) override;                       \
  Result<StageState> State(int32_t stage) override;                                                \
  Status LoadState(int32_t stage, const StageState& state) override
