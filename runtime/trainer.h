// Training a job with one method: builds the model, partitions it into the program's stages,
// runs the executor segment by segment (each segment is one program over a run of minibatches;
// asynchronous pipelines drain at segment ends, as PipeDream's runtime does at epoch ends),
// evaluates on the held-out data after each segment, and reports what was measured: losses,
// accuracy (or perplexity), time, throughput, and the version gap and delay of every stage.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/job.h"
#include "common/status.h"
#include "runtime/executor.h"
#include "runtime/transport.h"

namespace pipecast::runtime {

struct Evaluation {
  double epoch = 0;            // training progress in epochs
  int64_t minibatches = 0;     // minibatches trained so far
  double train_loss = 0;       // mean microbatch loss of the segment
  double test_loss = 0;
  double test_accuracy = 0;    // classification; for language models the next-token accuracy
  double test_perplexity = 0;  // language models: exp(test_loss)
  double wall_s = 0;           // training time so far (evaluation excluded)
  double samples_per_s = 0;    // of the segment
};

struct StageVersions {
  int32_t version_gap_max = 0;     // steps between a microbatch's F and B (measured)
  int32_t gradient_delay_max = 0;  // steps between the weights F used and the applying step
};

struct MethodTraining {
  std::string method;
  std::map<std::string, std::string> params;
  std::vector<Evaluation> evaluations;
  std::vector<StageVersions> stages;  // per device
  double best_accuracy = 0;
  double final_accuracy = 0;
  double wall_s = 0;
  // Measured timeline of the last segment (per device, per action) and its program, for traces.
  ir::Program last_program;
  std::vector<std::vector<ActionTime>> last_timing;
  std::vector<std::vector<float>> final_weights;  // per virtual stage
  bool resumed = false;  // started from a checkpoint
};

struct TrainOptions {
  std::chrono::milliseconds deadline{120000};
  // Called after each evaluation (progress output).
  std::function<void(const MethodTraining&, const Evaluation&)> on_evaluation;
  // When set, a safetensors checkpoint (weights, optimizer state, step counters, data position,
  // evaluation history) is written atomically here after every evaluation.
  std::string checkpoint;
  // Continue from `checkpoint` if it exists (it must come from the same job and method); the
  // continuation is bit-identical to an uninterrupted run.
  bool resume = false;
  // Stop after this many segments in this call (0 = run to the end); for tests of resuming.
  int64_t stop_after = 0;
  // Multi-process runs (MPI): the devices this process runs, a transport per segment, and a hook
  // that makes every stage's weights and every microbatch's loss known to this process after a
  // segment (each process evaluates the whole model). Empty = threads in this process.
  std::vector<int32_t> local_devices;
  std::function<std::unique_ptr<Transport>(const ir::Program&)> make_transport;
  std::function<void(const ir::Program&, ExecutionResult&)> share;
};

Result<MethodTraining> TrainMethod(const ir::Job& job, const ir::MethodSpec& method,
                                   const TrainOptions& options = {});

}  // namespace pipecast::runtime
