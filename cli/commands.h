// The `pipecast` subcommands. Each takes parsed options and returns the process exit code:
// 0 success, 1 bad input or an invalid schedule (a message on stderr says what and how to fix
// it), 2 a usage error (reported by the argument parser before any command runs).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pipecast::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

struct SimOptions {
  std::string scenario;              // path; empty = the built-in default scenario
  std::vector<std::string> methods;  // "name", "name:key=value:...", or a schedule file
  std::string format = "table";      // table | json | csv
  std::string output;                // file; empty = stdout
  std::string trace_dir;
  std::string svg_dir;
  std::string max_memory;      // a size such as 8GiB; empty = the default budget
  std::string svg_window;      // FROM:TO times or minibatches; empty = the whole run
  int svg_width = 1200;        // px
  bool svg_transfers = false;  // draw the transfers
  bool per_stage = false;
  bool quiet = false;
};
int RunSim(const SimOptions& options);

struct ScheduleOptions {
  std::string method;
  int stages = 4;
  int microbatches = 8;
  int minibatches = 1;
  int microbatch_size = 1;
  int data_parallel = 1;            // copies of the pipeline (replicate.h)
  std::vector<std::string> params;  // key=value
  std::string format = "text";      // text | json | torch-csv
  bool lowered = false;             // include the sends and receives
  std::string output;
};
int RunSchedule(const ScheduleOptions& options);

struct ValidateOptions {
  std::string file;
  std::string format = "auto";  // auto | text | json | torch-csv
  int minibatches = 1;          // torch CSV: minibatches the microbatches split into
};
int RunValidate(const ValidateOptions& options);

int RunMethods();

struct RunOptions {
  std::string job;
  std::vector<std::string> methods;  // subset of the job's methods (or others, with defaults)
  std::string format = "table";      // table | json | csv
  std::string output;
  double epochs = 0;           // > 0 overrides the job's
  std::string trace;           // measured Perfetto trace of the first method's last segment
  std::string profile_out;     // measured costs as a scenario file
  bool compare_sim = false;    // simulated against measured iteration time
  std::string checkpoint_dir;  // one checkpoint per method, written after each evaluation
  bool resume = false;         // continue from the checkpoints in checkpoint_dir
  bool mpi = false;            // one stage per rank under mpirun
  bool quiet = false;
  std::string device;                // "cpu" or "cuda"; empty = the job's `device:`
  int seeds = 1;                     // seeds per method (job seed, +1, ...): mean ± sd
  std::string predict_with;          // a scenario whose costs predict every method's time
  std::string convergence_out;       // every method's convergence profile (common/convergence.h)
  int evaluations = 0;               // > 0 overrides the job's evaluations
};
int RunTrain(const RunOptions& options);

struct PlanOptions {
  std::string scenario;                   // path; empty = the built-in default scenario
  std::string objective;                  // "" = the plan section's; time_per_sample | time_to_loss
  double target_loss = 0;                 // > 0 overrides plan.target_loss
  std::string convergence;                // a convergence profile; overrides plan.convergence
  std::string memory_cap;                 // a size or "none"; overrides plan.memory_cap
  int max_gradient_delay = -1;            // >= 0 overrides plan.max_gradient_delay
  int max_version_gap = -1;               // >= 0 overrides plan.max_version_gap
  std::vector<std::string> methods;       // NAME or NAME:key=value; overrides plan.methods
  std::vector<int32_t> stages;            // overrides plan.stages
  std::vector<int32_t> microbatch_sizes;  // overrides plan.microbatch_sizes
  std::vector<int32_t> data_parallel;     // overrides plan.data_parallel
  int64_t global_batch = 0;               // > 0 overrides plan.global_batch
  std::string recompute;                  // "" | off | on | both
  std::string sweep;                      // "" | stages
  std::string format = "table";           // table | json | csv
  std::string output;
  int top = 10;                            // rows of the ranking in the table
  std::vector<std::string> emit_scenario;  // RANK FILE
  std::vector<std::string> emit_job;       // RANK FILE
  std::string job;                         // the job --emit-job trains
  std::string max_memory;                  // per simulation, as pipecast sim's
  bool quiet = false;
};
int RunPlanCommand(const PlanOptions& options);

}  // namespace pipecast::cli
