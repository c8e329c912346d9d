// The inputs of `pipecast report`: the JSON of `pipecast sim` (schema "pipecast-sim", version 1),
// `pipecast run` ("pipecast-run", version 2) and `pipecast plan` ("pipecast.plan", version 1),
// read into plain structs, with every problem a user can meet reported once, naming the file,
// the key and the fix: a file that is empty, not JSON or not pipecast's, a schema version this
// build does not read (kUnsupportedVersion), a missing or mistyped field, and files of different
// scenarios or pipelines mixed in one report. docs/outputs.md documents the three formats.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pipecast::cli::report {

inline constexpr const char* kSimSchema = "pipecast-sim";
inline constexpr int kSimSchemaVersion = 1;
inline constexpr const char* kRunSchema = "pipecast-run";
inline constexpr int kRunSchemaVersion = 2;
inline constexpr const char* kPlanSchema = "pipecast.plan";
inline constexpr int kPlanSchemaVersion = 1;

// Version metrics of one device, as `pipecast sim` and `pipecast run` both report them.
struct Staleness {
  int64_t live_versions = 0;
  int64_t gap_max = 0;
  double gap_mean = 0;
  int64_t delay_max = 0;
  double delay_mean = 0;
  int64_t horizon_forward = 0;
  int64_t horizon_backward = 0;
  double crossing_fraction = 0;
};

struct SimStage {
  int64_t stage = 0;
  double busy_s = 0;
  int64_t peak_memory_bytes = 0;
  int64_t weights = 0, optimizer_state = 0, gradients = 0, activations = 0, extra = 0;
  Staleness staleness;
  bool over_memory = false;
  int64_t memory_capacity_bytes = -1;  // the device's own capacity; -1 = not in the input
};

struct SimMethod {
  std::string method;
  std::map<std::string, std::string> params;
  std::string label;  // "paci(a=4)", as the simulator's table writes it
  int64_t devices = 0, virtual_stages = 0, microbatches = 0, minibatches = 0;
  int64_t microbatch_size = 0;
  double makespan_s = 0;
  int64_t makespan_ns = 0;
  double throughput = 0;         // samples/s
  double steady_throughput = 0;  // samples/s
  double idle_fraction = 0, overhead_vs_ideal = 0, zb_rate = 0;
  std::vector<SimStage> stages;
  bool over_memory() const;
  int64_t peak_memory() const;  // the largest over devices
  int64_t delay_max() const;    // the largest gradient delay over devices
  int64_t gap_max() const;
};

struct SimInput {
  std::string file;
  std::string scenario_name, scenario_source;
  int64_t device_memory_bytes = 0;  // 0 = not given (unlimited, or an older sim)
  std::vector<SimMethod> results;
};

struct RunEvaluation {
  double epoch = 0;
  int64_t minibatches = 0;
  double train_loss = 0, test_loss = 0, test_accuracy = 0, wall_s = 0, samples_per_s = 0;
};

struct RunStage {
  int64_t stage = 0;
  Staleness staleness;
  std::optional<double> prediction_error;  // stages that predicted
};

struct RunResult {
  std::string method;
  std::map<std::string, std::string> params;
  std::string label;  // "pipeoptim[sgd]"
  int64_t seed = 0;
  double best_accuracy = 0, final_accuracy = 0, wall_s = 0;
  std::vector<RunEvaluation> evaluations;  // at least one
  std::vector<RunStage> stages;
};

struct RunInput {
  std::string file;
  std::string job_name, job_source, optimizer;
  int64_t stages = 0, microbatches = 0, microbatch_size = 0;
  std::vector<RunResult> results;
};

struct PlanConfig {
  int64_t rank = 0;
  std::string method, label, partition;
  int64_t stages = 0, microbatches = 0, microbatch_size = 0, data_parallel = 1;
  bool recompute = false;
  double time_per_sample_s = 0, samples_per_s = 0, time_per_step_s = 0, bubble_fraction = 0;
  int64_t peak_memory_bytes = 0, max_gradient_delay = 0, max_version_gap = 0;
  bool feasible = false;
  std::optional<std::string> infeasible_reason;
  std::optional<double> time_to_loss_s;
  // With a time-to-loss objective: the speed-up over the plan's baseline and its two factors
  // (docs/plan.md), the run whose convergence it used and a caveat.
  struct TimeToLoss {
    double speedup = 0, throughput_factor = 0, convergence_factor = 0;
    std::string convergence_from, note;
  };
  std::optional<TimeToLoss> time_to_loss;
};

struct PlanInput {
  std::string file;
  std::string scenario_name, scenario_source;
  std::string objective;
  std::optional<double> target_loss;
  std::optional<int64_t> memory_cap_bytes, max_gradient_delay;
  int64_t evaluated = 0, feasible = 0;
  double elapsed_s = 0;
  PlanConfig best;
  std::vector<PlanConfig> pareto, configs;
  // time_to_loss: the baseline configuration's rank and what the prediction rests on.
  std::optional<int64_t> baseline_rank;
  std::optional<std::string> rests_on;
};

struct Inputs {
  std::vector<SimInput> sims;
  std::vector<RunInput> runs;
  std::vector<PlanInput> plans;
};

// Parses one file's text and adds it to `inputs`. `file` is named in messages.
Status AddInput(const std::string& file, std::string_view text, Inputs& inputs);

// Files that cannot go in one report: different scenarios (or jobs), a simulated pipeline that
// is not the one the runs trained, a method given twice.
Status CheckConsistent(const Inputs& inputs);

// Reads every file (AddInput), then CheckConsistent. At least one file.
Result<Inputs> ReadInputs(const std::vector<std::string>& files);

// Whether a sim scenario and a job (or two scenarios) are the same: equal names, or one is the
// other and a '-' suffix ("fashion-mlp" and the profile "fashion-mlp-measured").
bool SameScenario(const std::string& a, const std::string& b);

// "method" or "method(k=v,...)" in key order, the label the simulator's reports use.
std::string SimLabel(const std::string& method, const std::map<std::string, std::string>& params);

}  // namespace pipecast::cli::report
