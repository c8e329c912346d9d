// The `pipecast` command: argument parsing and dispatch to the subcommands (commands.h).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "cli/plan_cli.h"
#include "cli/report_command.h"
#include "common/limits.h"

namespace {

constexpr const char* kDescription =
    "pipecast: compare pipeline-parallel training schedules (synchronous and asynchronous) "
    "with an exact discrete-event simulator.";

constexpr const char* kExamples = R"(
Examples:
  pipecast sim                                  compare every method on the built-in default
  pipecast sim scenarios/toy-uniform.yaml --methods 1f1b,zb-h1,paci:accumulation=4
  pipecast sim --format json -o results.json --trace-dir traces --svg-dir pictures
  pipecast sim --methods interleaved:chunks=3 --svg-dir pictures --svg-window 1:1
  pipecast sim scenarios/toy-uniform.yaml --methods scenarios/examples/my-schedule.txt
  pipecast sim huge.yaml --max-memory 16GiB     runs above the memory budget are refused up front
  pipecast schedule --method interleaved --stages 4 --microbatches 8 --param chunks=2
  pipecast schedule --method 1f1b --stages 4 --microbatches 8 --format torch-csv
  pipecast validate scenarios/examples/deadlock.txt
  pipecast methods
  pipecast run scenarios/fashion-mlp.job.yaml          train the default job with every method
  pipecast run scenarios/fashion-mlp.job.yaml --methods 1f1b,pipeoptim --compare-sim
  pipecast run scenarios/fashion-mlp.job.yaml --seeds 3 --format json -o runs.json
  pipecast run scenarios/fashion-mlp-2stage.job.yaml --methods 1f1b --profile-out p.yaml
  pipecast run scenarios/fashion-mlp-2stage.job.yaml --predict-with p.yaml
  pipecast run scenarios/gpt-fortunes-adamw.job.yaml --convergence-out gpt.convergence.json
  mpirun -np 4 pipecast run scenarios/fashion-mlp.job.yaml --mpi --methods paci
  pipecast run scenarios/gpt-fortunes-adamw.job.yaml --device cuda   on the GPUs of this machine
  torchrun --nproc-per-node 4 --no-python pipecast run JOB --device cuda   one GPU per rank
  pipecast report sim.json runs.json plan.json -o report.html   one page for a design review
  pipecast plan --memory-cap 24GiB               the best configuration and the Pareto front

Exit status: 0 success, 1 invalid input (the message says what to fix), 2 usage error.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace pipecast::cli;
  CLI::App app{kDescription, "pipecast"};
  app.footer(kExamples);
  app.set_version_flag("--version", "pipecast 0.1.0");
  app.require_subcommand(1);

  SimOptions sim;
  CLI::App* sim_cmd = app.add_subcommand("sim", "Simulate methods on a scenario and compare them");
  sim_cmd->add_option("scenario", sim.scenario,
                      "Scenario YAML file (default: the built-in GPT-2 Medium-like scenario)");
  sim_cmd->add_option("--methods,-m", sim.methods,
                      "Methods to run, comma-separated: NAME, NAME:key=value:..., or a schedule "
                      "file (default: the scenario's list, else every method)");
  sim_cmd->add_option("--format,-f", sim.format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv"}));
  sim_cmd->add_option("--output,-o", sim.output, "Write the report to this file");
  sim_cmd->add_option("--trace-dir", sim.trace_dir,
                      "Write one Perfetto/Chrome trace per method into this directory");
  sim_cmd->add_option("--svg-dir", sim.svg_dir,
                      "Write one SVG timeline per method into this directory");
  sim_cmd->add_option("--svg-window", sim.svg_window,
                      "Draw part of the run in the SVGs: FROM:TO times with a unit (2ms:5ms) or "
                      "minibatches (3:4, 0-based, inclusive)");
  sim_cmd->add_option("--svg-width", sim.svg_width, "Width of the SVGs in px (default 1200)")
      ->check(CLI::Range(400, 100000));
  sim_cmd->add_flag("--svg-transfers", sim.svg_transfers,
                    "Draw every transfer in the SVGs as a line from send to arrival");
  sim_cmd->add_option("--max-memory", sim.max_memory,
                      "Largest memory one run may plan to use, e.g. 16GiB (default: 4 GiB, or "
                      "half the machine's memory if less); larger runs are refused before "
                      "anything is generated");
  sim_cmd->add_flag("--per-stage", sim.per_stage, "Add per-stage details to the table");
  sim_cmd->add_flag("--quiet,-q", sim.quiet, "Print nothing but the report");

  ScheduleOptions sched;
  CLI::App* sched_cmd = app.add_subcommand("schedule", "Print the program a method generates");
  sched_cmd->add_option("--method", sched.method, "Method name (see `pipecast methods`)")
      ->required();
  sched_cmd->add_option("--stages,-d", sched.stages, "Pipeline stages (devices)")
      ->check(CLI::Range(1, pipecast::ir::kMaxCount));
  sched_cmd->add_option("--microbatches,-M", sched.microbatches, "Microbatches per minibatch")
      ->check(CLI::Range(1, pipecast::ir::kMaxCount));
  sched_cmd->add_option("--minibatches,-N", sched.minibatches, "Minibatches")
      ->check(CLI::Range(1, pipecast::ir::kMaxCount));
  sched_cmd->add_option("--microbatch-size", sched.microbatch_size, "Samples per microbatch")
      ->check(CLI::Range(1, pipecast::ir::kMaxMicrobatchSize));
  sched_cmd
      ->add_option("--data-parallel", sched.data_parallel,
                   "Data-parallel copies of the pipeline, gradients all-reduced")
      ->check(CLI::Range(1, pipecast::ir::kMaxCount));
  sched_cmd->add_option("--param,-p", sched.params, "Method parameter key=value (repeatable)");
  sched_cmd->add_option("--format,-f", sched.format, "Output format")
      ->check(CLI::IsMember({"text", "json", "torch-csv"}));
  sched_cmd->add_flag("--lowered", sched.lowered, "Include the send/receive actions");
  sched_cmd->add_option("--output,-o", sched.output, "Write to this file instead of stdout");

  ValidateOptions val;
  CLI::App* val_cmd = app.add_subcommand("validate", "Check a schedule file; list every problem");
  val_cmd->add_option("file", val.file, "Schedule file (text, JSON or torch CSV)")->required();
  val_cmd->add_option("--format,-f", val.format, "Input format")
      ->check(CLI::IsMember({"auto", "text", "json", "torch-csv"}));
  val_cmd
      ->add_option("--minibatches,-N", val.minibatches,
                   "Torch CSV: minibatches its microbatches split into (each gets an "
                   "optimizer step)")
      ->check(CLI::Range(1, pipecast::ir::kMaxCount));

  CLI::App* methods_cmd = app.add_subcommand("methods", "List the methods and their parameters");

  RunOptions run;
  CLI::App* run_cmd = app.add_subcommand("run", "Train a job's model with each method (executor)");
  run_cmd->add_option("job", run.job, "Job YAML file (see scenarios/*.job.yaml)")->required();
  run_cmd->add_option("--methods,-m", run.methods, "Methods to train, comma-separated")
      ->delimiter(',');
  run_cmd->add_option("--format,-f", run.format, "Output format")
      ->check(CLI::IsMember({"table", "json", "csv"}));
  run_cmd->add_option("--output,-o", run.output, "Write the report to this file");
  run_cmd->add_option("--epochs", run.epochs, "Override the job's number of epochs")
      ->check(CLI::PositiveNumber);
  run_cmd->add_option("--trace", run.trace,
                      "Write the measured timeline (first method, last segment) as a Perfetto "
                      "trace");
  run_cmd->add_option("--profile-out", run.profile_out,
                      "Write the measured per-stage costs as a scenario for `pipecast sim`");
  run_cmd->add_flag("--compare-sim", run.compare_sim,
                    "Simulate each program with the measured costs and print the error");
  run_cmd->add_option("--checkpoint-dir", run.checkpoint_dir,
                      "Write a safetensors checkpoint per method after each evaluation");
  run_cmd->add_flag("--resume", run.resume,
                    "Continue from the checkpoints in --checkpoint-dir (bit-identical)");
  run_cmd->add_flag(
      "--mpi", run.mpi,
      "One stage per process: `mpirun -np STAGES pipecast run JOB --mpi` (with --device "
      "cuda, one GPU per rank and NCCL messages)");
  run_cmd
      ->add_option("--device", run.device,
                   "Device to train on: cpu, or cuda (the job's gpus, sm_partition and "
                   "precision; one GPU per rank under mpirun --mpi, torchrun or srun); "
                   "default: the job's device:")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  run_cmd
      ->add_option("--seeds", run.seeds,
                   "Train each method with this many seeds and report mean ± sd")
      ->check(CLI::Range(1, 1000));
  run_cmd->add_option("--predict-with", run.predict_with,
                      "Simulate every method with this scenario's costs (e.g. a --profile-out "
                      "of a 1f1b run) and compare with the measured time");
  run_cmd->add_flag("--quiet,-q", run.quiet, "No progress output");
  run_cmd->add_option("--convergence-out", run.convergence_out,
                      "Write each method's convergence profile (loss against steps and samples, "
                      "per seed) for pipecast plan");
  run_cmd
      ->add_option("--evaluations", run.evaluations,
                   "Override the job's number of evaluations (points of the profile)")
      ->check(CLI::Range(1, 100000));

  PlanOptions plan;
  CLI::App* plan_cmd = AddPlanSubcommand(app, plan);

  ReportOptions report;
  CLI::App* report_cmd = AddReportCommand(app, report);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (*sim_cmd) return RunSim(sim);
  if (*sched_cmd) return RunSchedule(sched);
  if (*val_cmd) return RunValidate(val);
  if (*methods_cmd) return RunMethods();
  if (*run_cmd) return RunTrain(run);
  if (*report_cmd) return RunReport(report);
  if (*plan_cmd) return RunPlanCommand(plan);
  return kExitUsage;
}
