// A training session: one method of one job with one seed. It owns what every segment of the run
// shares: the data and its loader, the model cut into the program's virtual stages, the devices
// (one per pipeline device this process runs, holding the stages' weights and optimizer state
// for the whole run), the learning-rate schedule, and the lowered, validated programs and their
// execution plans (one per segment length; segments differ by at most one minibatch).
//
// Everything that can be checked without the data is checked before the data is loaded: the
// method and its parameters, the program's validity, the ΔW rule against the optimizer, the
// device kind.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/job.h"
#include "common/status.h"
#include "common/version_plan.h"
#include "models/data.h"
#include "models/lr_schedule.h"
#include "models/model.h"
#include "models/optimizer.h"
#include "runtime/device.h"

namespace pipecast::runtime {

// Builds the Device of pipeline device `device` (of `devices` in the program) for the given
// stages (each with its layers and a fresh optimizer configuration); the session then sets
// their initial weights. Used for devices other than the CPU's (device: cuda), which this
// library does not link.
struct DeviceStages {
  int32_t stage = 0;
  models::Stage<float> layers;
  models::OptimizerConfig optimizer;
};
using DeviceFactory = std::function<Result<std::unique_ptr<Device>>(
    int32_t device, int32_t devices, std::vector<DeviceStages> stages)>;

struct SessionOptions {
  // Devices this process runs (MPI: its rank's); empty = every device of the pipeline.
  std::vector<int32_t> local_devices;
  // Measure the accuracy of weight predictions, one tracked per this many steps of a stage at
  // most (DeviceSetup::track_predictions_every; 0: off).
  int32_t track_predictions_every = kTrackPredictionsEvery;
  int64_t memory_limit_bytes = 0;  // per device; 0 = the machine's memory
  // device: cuda: how devices are built (the CLI supplies it when the build has CUDA). Empty:
  // CPU devices, and a job asking for device: cuda is refused.
  DeviceFactory make_device;
};

// The train and test sets of a job.
struct TrainingData {
  std::shared_ptr<const models::Dataset> train, test;
  int64_t input_width = 0;
  int32_t classes = 0;
  bool language = false;
};
Result<TrainingData> LoadTrainingData(const ir::Job& job);

// AvgPipe's averaging period, the minibatches between two averagings (its `period` parameter);
// 1 for every other method and for a period that is not a positive integer (which Generate
// reports).
int64_t AveragingPeriod(const ir::MethodSpec& method);

class Session {
 public:
  static Result<std::unique_ptr<Session>> Create(const ir::Job& job, const ir::MethodSpec& method,
                                                 const SessionOptions& options = {});

  const ir::Job& job() const { return job_; }
  const ir::MethodSpec& method() const { return method_; }
  const TrainingData& data() const { return data_; }
  const models::Loader& loader() const { return *loader_; }
  const models::LrSchedule& schedule() const { return schedule_; }
  const models::OptimizerConfig& optimizer() const { return optimizer_; }
  // The ΔW rule predictions use with this optimizer (and whether it is a fallback).
  models::EffectiveRule delta_rule() const { return rule_; }
  // Devices of the program: the job's stages, times data_parallel copies of the pipeline (and
  // times AvgPipe's pipelines).
  int32_t num_devices() const { return devices_; }
  // Microbatches of one minibatch over every copy (the programs' Program::microbatches).
  int32_t microbatches_per_minibatch() const { return microbatches_; }
  int32_t num_stages() const { return static_cast<int32_t>(stages_.size()); }
  const std::vector<models::Stage<float>>& stages() const { return stages_; }
  const std::vector<int32_t>& local_devices() const { return local_; }
  bool IsLocal(int32_t device) const;
  // One slot per pipeline device; null for devices other processes run.
  std::span<Device* const> devices() const { return device_ptrs_; }
  // The device of the stage's replica-0 copy (evaluation, checkpoints and final weights read
  // it: every copy holds the same weights).
  Device& DeviceOf(int32_t stage) const;
  // The program's placement (one for every segment's program).
  const ir::Program& placement() const { return programs_.begin()->second->program; }

  int64_t minibatches_per_epoch() const { return per_epoch_; }
  int64_t total_minibatches() const { return total_; }
  int64_t evaluations() const { return evaluations_; }
  // Minibatches in segment `segment` (0-based); the segments tile total_minibatches().
  int64_t SegmentLength(int64_t segment) const;
  int64_t microbatch_rows() const;
  int64_t eval_rows() const;
  static constexpr int64_t kEvalChunk = 256;  // test examples per evaluation chunk

  // The lowered, validated program of a segment of `minibatches`, and its execution plan.
  // The program of a segment of `minibatches` that starts after `minibatches_before` (AvgPipe
  // averages every `period` steps of the whole run, not of each segment).
  Result<const ir::Program*> ProgramFor(int64_t minibatches, int64_t minibatches_before = 0);
  const ir::VersionPlan& PlanFor(const ir::Program& program) const;

 private:
  Session(const ir::Job& job, const ir::MethodSpec& method, const SessionOptions& options);
  Status CheckMethod();
  Status BuildDevices(const std::vector<float>& init);
  // The device `dev` of placement `p`: a CpuDevice, or options_.make_device for device: cuda.
  Result<std::unique_ptr<Device>> MakeDevice(int32_t dev, const ir::Program& p) const;

  ir::Job job_;
  ir::MethodSpec method_;
  SessionOptions options_;
  TrainingData data_;
  std::unique_ptr<models::Loader> loader_;
  models::LrSchedule schedule_;
  models::OptimizerConfig optimizer_;
  models::EffectiveRule rule_;
  std::unique_ptr<models::Model<float>> model_;
  std::vector<models::Stage<float>> stages_;
  std::vector<int32_t> local_;
  std::vector<std::unique_ptr<Device>> owned_;
  std::vector<Device*> device_ptrs_;
  int64_t per_epoch_ = 0, total_ = 0, evaluations_ = 0;
  int32_t devices_ = 1, microbatches_ = 1;  // the programs' (CheckMethod)
  struct Lowered {
    ir::Program program;
    ir::VersionPlan plan;
  };
  std::map<std::pair<int64_t, int64_t>, std::unique_ptr<Lowered>> programs_;  // (N, phase)
};

// The optimizer configuration of a job (kInvalidArgument for an unknown name).
Result<models::OptimizerConfig> OptimizerConfigOf(const ir::JobOptimizer& o);

}  // namespace pipecast::runtime
