// Training a job with one method: a Session (data, model, devices, programs) runs segment after
// segment (each segment is one program over a run of minibatches; asynchronous pipelines drain
// at segment ends, as PipeDream's runtime does at epoch ends), evaluates through the devices
// after each, checkpoints, and reports what was measured: losses, accuracy (or perplexity),
// time, throughput, the version metrics of every device computed from the weights the devices
// actually served, and, for predicting methods, how close each prediction came to the weights
// the stage reached.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/job.h"
#include "common/status.h"
#include "common/version_stats.h"
#include "runtime/executor.h"
#include "runtime/session.h"
#include "runtime/transport.h"

namespace pipecast::runtime {

// Prediction accuracy of one stage (docs/metrics.md): the means over the measured predictions
// of ||Ŵ - W_{t+s}|| / ||W_{t+s} - W_t|| and of the cosine between Ŵ - W_t and W_{t+s} - W_t.
struct StagePrediction {
  int64_t count = 0;
  double error_mean = 0;
  double cosine_mean = 0;
};

struct Evaluation {
  double epoch = 0;         // training progress in epochs
  int64_t minibatches = 0;  // minibatches trained so far
  double train_loss = 0;    // mean microbatch loss of the segment
  double test_loss = 0;
  double test_accuracy = 0;    // classification; for language models the next-token accuracy
  double test_perplexity = 0;  // language models: exp(test_loss)
  double wall_s = 0;           // training time so far (evaluation excluded)
  double samples_per_s = 0;    // of the segment
  std::vector<StagePrediction> predictions;  // per stage, over the segment (empty: none)
};

struct MethodTraining {
  std::string method;
  std::map<std::string, std::string> params;
  std::string optimizer;        // the job's optimizer ("sgd", "adamw", ...)
  bool predicts = false;        // the program predicts weights (ΔW matters)
  std::string delta_rule;       // the ΔW rule used with that optimizer
  bool delta_fallback = false;  // the method's own rule is not defined for the optimizer
  uint64_t seed = 1;
  std::vector<Evaluation> evaluations;
  std::vector<ir::DeviceVersionStats> versions;  // per device, over the whole run (measured)
  std::vector<StagePrediction> predictions;      // per stage, over the whole run
  double best_accuracy = 0;
  double final_accuracy = 0;
  double wall_s = 0;
  // Measured timeline of the last segment (per device, per action) and its program, for traces.
  ir::Program last_program;
  std::vector<std::vector<ActionTime>> last_timing;
  std::vector<std::vector<float>> final_weights;  // per virtual stage
  bool resumed = false;                           // started from a checkpoint
  // Sizes, for cost models built from the measurements: parameters per virtual stage, and the
  // optimizer's state tensors per parameter (each as large as the weights).
  std::vector<int64_t> stage_params;
  int32_t optimizer_state_tensors = 0;
};

// Builds a transport for a program's devices with the given message space.
using TransportFactory =
    std::function<std::unique_ptr<Transport>(int32_t devices, const MessageSpace& space)>;

struct TrainOptions {
  std::chrono::milliseconds deadline{120000};
  // Called after each evaluation (progress output).
  std::function<void(const MethodTraining&, const Evaluation&)> on_evaluation;
  // When set, a safetensors checkpoint is written atomically here after every evaluation.
  std::string checkpoint;
  // Continue from `checkpoint` if it exists (it must come from the same run); the continuation
  // is bit-identical to an uninterrupted run.
  bool resume = false;
  // Stop after this many segments in this call (0 = run to the end); for tests of resuming.
  int64_t stop_after = 0;
  int32_t track_predictions_every = kTrackPredictionsEvery;  // 0: off (SessionOptions)
  // Multi-process runs (MPI): the devices this process runs, the transport, and how values of
  // one process reach every other (share_doubles/share_floats(root, values)). Empty = threads
  // in this process with the in-process transport.
  std::vector<int32_t> local_devices;
  TransportFactory make_transport;
  // device: cuda: builds each device (SessionOptions::make_device); with it, make_transport
  // must carry device memory (the CUDA transports).
  DeviceFactory make_device;
  std::function<Status(int, std::span<double>)> share_doubles;
  std::function<Status(int, std::span<float>)> share_floats;
};

Result<MethodTraining> TrainMethod(const ir::Job& job, const ir::MethodSpec& method,
                                   const TrainOptions& options = {});

// The same with `seeds` seeds (job.seed, job.seed + 1, ...), one result per seed.
Result<std::vector<MethodTraining>> TrainSeeds(const ir::Job& job, const ir::MethodSpec& method,
                                               int32_t seeds, const TrainOptions& options = {});

}  // namespace pipecast::runtime
