// `pipecast run`: train a job's model with each listed method and compare them.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/io.h"
#include "cli/run_report.h"
#include "common/job.h"
#include "runtime/trainer.h"
#ifdef PIPECAST_HAVE_MPI
#include "runtime/mpi_transport.h"
#endif

namespace pipecast::cli {
namespace {

// One progress line per evaluation; on a terminal the line is rewritten in place.
class Progress {
 public:
  explicit Progress(bool terminal) : terminal_(terminal) {}
  void Update(const runtime::MethodTraining& t, const runtime::Evaluation& e, double epochs) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "%-22s epoch %5.2f/%-5.2g train loss %.4f  test loss %.4f  acc %.2f%%  "
                  "%.0f samples/s",
                  Label(t).c_str(), e.epoch, epochs, e.train_loss, e.test_loss,
                  100 * e.test_accuracy, e.samples_per_s);
    if (terminal_) {
      const int width = 28;
      const int filled = static_cast<int>(std::lround(width * std::min(1.0, e.epoch / epochs)));
      std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ') << "] "
                << line << "\x1b[K" << std::flush;
      if (e.epoch >= epochs - 1e-9) std::cerr << "\n";
    } else {
      std::cerr << line << "\n";
    }
  }

 private:
  bool terminal_;
};

}  // namespace

int RunTrain(const RunOptions& options) {
  if (options.resume && options.checkpoint_dir.empty()) {
    std::cerr << "pipecast run: --resume needs --checkpoint-dir DIR\n";
    return kExitUsage;
  }
  auto job = ir::LoadJobFile(options.job);
  if (!job.ok()) {
    std::cerr << "pipecast run: " << job.status().message() << "\n";
    return kExitError;
  }
  if (options.epochs > 0) job->epochs = options.epochs;
  std::vector<ir::MethodSpec> methods = job->methods;
  if (!options.methods.empty()) {
    methods.clear();
    for (const std::string& name : options.methods) {
      bool found = false;
      for (const ir::MethodSpec& m : job->methods) {
        if (m.name == name) {
          methods.push_back(m);
          found = true;
        }
      }
      if (!found) methods.push_back({name, {}, 0, 0});
    }
  }
  int rank = 0;
  if (options.mpi) {
#ifdef PIPECAST_HAVE_MPI
    int argc = 0;
    char** argv = nullptr;
    const auto [r, size] = runtime::InitMpi(&argc, &argv);
    rank = r;
    if (size != job->pipeline.stages) {
      if (rank == 0) {
        std::cerr << "pipecast run: the MPI world has " << size << " processes but "
                  << job->source << " has " << job->pipeline.stages
                  << " stages: run `mpirun -np " << job->pipeline.stages << " pipecast run "
                  << job->source << " --mpi`\n";
      }
      runtime::FinalizeMpi();
      return kExitError;
    }
    if (!options.checkpoint_dir.empty()) {
      if (rank == 0) std::cerr << "pipecast run: --checkpoint-dir is not supported with --mpi yet\n";
      runtime::FinalizeMpi();
      return kExitUsage;
    }
#else
    std::cerr << "pipecast run: this build has no MPI support (install libopenmpi-dev and "
                 "rebuild)\n";
    return kExitError;
#endif
  }
  const bool quiet = options.quiet || rank != 0;
  Progress progress(!quiet && ::isatty(STDERR_FILENO));
  runtime::TrainOptions train;
#ifdef PIPECAST_HAVE_MPI
  if (options.mpi) {
    train.local_devices = {rank};
    train.make_transport = [](const ir::Program& p) -> std::unique_ptr<runtime::Transport> {
      return std::make_unique<runtime::MpiTransport>(p.placement);
    };
    train.share = runtime::ShareResults;
  }
#endif
  if (!quiet) {
    train.on_evaluation = [&](const runtime::MethodTraining& t, const runtime::Evaluation& e) {
      progress.Update(t, e, job->epochs);
    };
  }
  if (!options.checkpoint_dir.empty()) {
    if (Status s = MakeDirectories(options.checkpoint_dir); !s.ok()) {
      std::cerr << "pipecast run: " << s.message() << "\n";
      return kExitError;
    }
  }
  train.resume = options.resume;
  std::vector<runtime::MethodTraining> results;
  for (const ir::MethodSpec& m : methods) {
    if (!options.checkpoint_dir.empty()) {
      runtime::MethodTraining label;
      label.method = m.name;
      label.params = m.params;
      train.checkpoint = options.checkpoint_dir + "/" + FileSafe(Label(label)) + ".safetensors";
    }
    auto r = runtime::TrainMethod(*job, m, train);
    if (!r.ok()) {
      std::cerr << "pipecast run: " << job->source << ": " << m.name << ": "
                << r.status().message() << "\n";
#ifdef PIPECAST_HAVE_MPI
      if (options.mpi) runtime::AbortMpi(kExitError);
#endif
      return kExitError;
    }
    results.push_back(std::move(*r));
  }
#ifdef PIPECAST_HAVE_MPI
  if (options.mpi) runtime::FinalizeMpi();
#endif
  if (rank != 0) return kExitOk;
  std::string report;
  if (options.format == "json") {
    report = RunJson(*job, results);
  } else if (options.format == "csv") {
    report = RunCsv(*job, results);
  } else {
    report = RunTable(*job, results);
  }
  if (options.output.empty()) {
    std::cout << report;
  } else if (Status s = WriteFileAtomically(options.output, report); !s.ok()) {
    std::cerr << "pipecast run: " << s.message() << "\n";
    return kExitError;
  }
  if (!options.trace.empty() && !results.empty()) {
    if (Status s = WriteFileAtomically(options.trace, MeasuredTrace(results.front())); !s.ok()) {
      std::cerr << "pipecast run: " << s.message() << "\n";
      return kExitError;
    }
  }
  if (!options.profile_out.empty() && !results.empty()) {
    if (Status s = WriteFileAtomically(options.profile_out, ProfileScenario(*job, results.front()));
        !s.ok()) {
      std::cerr << "pipecast run: " << s.message() << "\n";
      return kExitError;
    }
  }
  if (options.compare_sim) std::cout << CompareWithSimulation(results);
  return kExitOk;
}

}  // namespace pipecast::cli
