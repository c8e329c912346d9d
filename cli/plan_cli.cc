#include "cli/plan_cli.h"

#include "common/limits.h"

namespace pipecast::cli {
namespace {

constexpr const char* kPlanExamples = R"(
Examples:
  pipecast plan                                   search the built-in default scenario's space
  pipecast plan scenarios/default.yaml --memory-cap 24GiB --max-gradient-delay 1
  pipecast plan --format json -o plan.json        the document pipecast report reads
  pipecast plan --emit-scenario 1 best.yaml && pipecast sim best.yaml
  pipecast plan --emit-job 1 best.job.yaml --job scenarios/fashion-mlp.job.yaml
  pipecast plan --sweep stages                    throughput, memory and staleness against D
  pipecast plan scenarios/paci-gpt2-medium.yaml   time to a target loss from measured convergence
  pipecast plan --methods 1f1b,zb-h1,paci --stages 4,8 --microbatch-sizes 1,2,4 --recompute both

The space and the objective come from the scenario's plan: section (docs/plan.md); flags
override it key by key. Every configuration is simulated (no pruning), so the best is exact.
Exit status: 0 success, 1 invalid input or no feasible configuration, 2 usage error.
)";

}  // namespace

CLI::App* AddPlanSubcommand(CLI::App& app, PlanOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "plan", "Search configurations (method, depth, microbatches, recomputation, partition)");
  cmd->footer(kPlanExamples);
  cmd->add_option("scenario", o.scenario,
                  "Scenario YAML file with an optional plan: section (default: the built-in one)");
  cmd->add_option("--objective", o.objective, "What to minimise")
      ->check(CLI::IsMember({"time_per_sample", "time_to_loss"}));
  cmd->add_option("--target-loss", o.target_loss, "Test loss for time_to_loss")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--convergence", o.convergence,
                  "Convergence profile (pipecast run JOB --convergence-out FILE)");
  cmd->add_option("--memory-cap", o.memory_cap,
                  "Per-device memory cap, e.g. 40GiB, or none (default: the device memory)");
  cmd->add_option("--max-gradient-delay", o.max_gradient_delay, "Staleness limit (updates)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-version-gap", o.max_version_gap, "Version-gap limit (updates)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--methods,-m", o.methods, "Methods to search: NAME or NAME:key=value")
      ->delimiter(',');
  cmd->add_option("--stages,-d", o.stages, "Pipeline depths D to search")
      ->delimiter(',')
      ->check(CLI::Range(1, ir::kMaxCount));
  cmd->add_option("--data-parallel", o.data_parallel,
                  "Data-parallel copies R to search (D x R devices at most pipeline.stages)")
      ->delimiter(',')
      ->check(CLI::Range(1, ir::kMaxCount));
  cmd->add_option("--microbatch-sizes,-b", o.microbatch_sizes, "Microbatch sizes to search")
      ->delimiter(',')
      ->check(CLI::Range(1, ir::kMaxMicrobatchSize));
  cmd->add_option("--global-batch", o.global_batch, "Samples per minibatch (fixed)")
      ->check(CLI::Range(int64_t{1}, int64_t{ir::kMaxCount}));
  cmd->add_option("--recompute", o.recompute, "Activation recomputation to search")
      ->check(CLI::IsMember({"off", "on", "both"}));
  cmd->add_option("--sweep", o.sweep, "Tabulate every method against D instead of searching")
      ->check(CLI::IsMember({"stages"}));
  cmd->add_option("--format,-f", o.format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv"}));
  cmd->add_option("--output,-o", o.output, "Write the report to this file");
  cmd->add_option("--top", o.top, "Rows of the ranking in the table (default 10)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--emit-scenario", o.emit_scenario,
                  "RANK FILE: write the scenario of that configuration for pipecast sim")
      ->expected(2);
  cmd->add_option("--emit-job", o.emit_job,
                  "RANK FILE: write a job training that configuration for pipecast run")
      ->expected(2);
  cmd->add_option("--job", o.job,
                  "The job --emit-job starts from (default: the convergence profile's job)");
  cmd->add_option("--max-memory", o.max_memory,
                  "Largest memory one simulation may use (as pipecast sim's)");
  cmd->add_flag("--quiet,-q", o.quiet, "No progress output");
  return cmd;
}

}  // namespace pipecast::cli
