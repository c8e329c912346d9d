// A sequential reference trainer for every pipecast method, written from the methods'
// definitions (docs/methods.md and the papers it cites, docs/optimizers.md for dW) and not
// through the executor, the schedule generators, the lowering or the version accounting, so
// that tests can hold the executor to the definitions.
//
// For a MethodCase it derives each device's local order of forwards, backwards (I and W for the
// zero-bubble schedules) and optimizer steps from the method's definition, and counts the
// device's steps along that order: so it knows, for every (stage, microbatch), how many steps
// the device had taken at the F and at the B, and which step applies the gradient. It then trains
// one microbatch at a time, in microbatch order, through every stage: each F and B computes with
// the weights the method's rule names (a version from the stage's history, a prediction from the
// optimizer state of a version, PipeMare's correction, the forward's own weights), and a device
// steps as soon as every gradient of its next step exists, accumulating them in the device's
// program order. Microbatch order works because, in every method's order, a pass of microbatch
// j only sees versions made from gradients of earlier microbatches (checked while it runs).
//
// Replicas (Chimera's two directions; MethodCase::data_parallel copies of any method): the
// copies of a stage share one history (they step together with the same gradient), each copy
// trains its own microbatches with the weights the method's rule names for its position in the
// method's order, and a step adds, in replica order 0, 1, ..., R - 1, the sums each replica
// accumulated over its own microbatches in its program order. Chimera's definition (Li and
// Hoefler, SC'21): synchronous, every pass of minibatch n uses version n, the first M/2
// microbatches of a minibatch run down (replica 0), the rest up (replica 1), each direction in
// 1F1B order. GEMS (Jain et al., SC'20): the same two replicas and synchronous step, microbatch j
// of a minibatch down if j is even, up if odd. AvgPipe (docs/methods.md): P pipelines that step
// on their own gradients, each an independent sequential trainer of the flushed order on its own
// microbatches, elastically averaged after every period-th step (reference_trainer.cc,
// RunAvgPipe, writes the update out).
//
// Loss scaling: a microbatch's loss is scaled by one over the number of gradients the step that
// applies it applies (over every copy that sums them; AvgPipe's pipelines: their own M). All arithmetic is models/' (Stage passes, Optimizer Step
// and Predict, SoftmaxCrossEntropy), so where the executor follows the same definitions the weights
// agree bit for bit. On request (ReferenceOptions::history) a run also returns every version of
// every stage and every prediction it computed, so that measures of prediction accuracy can be
// recomputed.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "runtime/method_case.h"

namespace pipecast::runtime::testing {

// How the weights of one pass were obtained.
enum class WeightKind {
  kCurrent,    // the stage's weights when the pass ran
  kVersion,    // an older version kept from the history (vertical sync, 2BW's older buffer)
  kPredicted,  // W - lr * s * dW from the optimizer state of `version`, s = horizon
  kCorrected,  // PipeMare: W - gap * velocity, gap = horizon
  kForwards,   // exactly the weights the microbatch's forward used (stash, SpecTrain v2)
};

struct PassVersion {
  WeightKind kind = WeightKind::kCurrent;
  // Steps that had updated the pass's stage when it ran: the device's steps, except under WPipe,
  // whose two groups on a device step on their own.
  int32_t counter = -1;
  int32_t version = -1;  // version of the base weights (the weights after that many steps)
  int32_t horizon = 0;   // prediction horizon or correction gap; 0 otherwise
  // The version the weights stand for: the target of a prediction, else the version.
  int32_t Effective() const { return kind == WeightKind::kPredicted ? version + horizon : version; }
};

struct MicrobatchRecord {
  PassVersion forward;
  PassVersion backward;
  int32_t applied_step = -1;  // 1-based step (counted as `counter`) that applies the gradient
  float loss_scale = 1.0f;
  // Steps between the forward's and the backward's pass on this stage.
  int32_t Gap() const { return backward.counter - forward.counter; }
  // Steps between the weights the forward stands for and the step that applies the gradient.
  int32_t Delay() const { return applied_step - 1 - forward.Effective(); }
};

// One prediction a pass computed (kind kPredicted; horizon 0 predicts nothing and is kCurrent).
struct PredictionRecord {
  int32_t microbatch = -1;
  bool backward = false;       // for the B (or I) pass of the microbatch, else for its F
  int32_t version = -1;        // the base: the weights after `version` steps of the device
  int32_t horizon = 0;         // s > 0: the prediction stands for version + horizon
  std::vector<float> weights;  // W_version - lr * s * dW
};

struct ReferenceOptions {
  // Also return every version and every prediction of every stage (ReferenceRun::versions and
  // ::predictions); off, both stay empty.
  bool history = false;
};

struct ReferenceRun {
  std::vector<std::vector<float>> weights;             // final, per virtual stage
  std::vector<std::vector<MicrobatchRecord>> records;  // [virtual stage][global microbatch]
  std::vector<double> losses;                          // per global microbatch (unscaled mean)
  // Per device of one copy (replica 0's devices; WPipe: of both groups).
  std::vector<int32_t> steps;
  // AvgPipe only (its copies differ): copies[r][s] the final weights of replica r's copy of
  // stage s (weights = copies[0]), and reference[s] the final reference weights W~.
  std::vector<std::vector<std::vector<float>>> copies;
  std::vector<std::vector<float>> reference;
  // With ReferenceOptions::history: versions[s][v] the weights of stage s after v steps of its
  // device (v = 0: the initial weights), and predictions[s] every prediction stage s computed,
  // in the stage's program order (the order its device runs the F and B passes).
  std::vector<std::vector<std::vector<float>>> versions;
  std::vector<std::vector<PredictionRecord>> predictions;
};

// Trains `c` sequentially. Errors (kInvalidArgument): an unknown method or parameter, a value out
// of range, a violated precondition (interleaved needs M mod D = 0, 2BW needs M >= D), a dW rule
// the optimizer lacks, PipeMare's lr_warmup_steps (T1 belongs in MethodCase::learning_rate), a
// model with fewer layers than virtual stages.
Result<ReferenceRun> RunReference(const MethodCase& c, const ReferenceOptions& options = {});

}  // namespace pipecast::runtime::testing
