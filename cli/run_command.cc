// `pipecast run`: train a job's model with each listed method (and seed) and compare them.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/io.h"
#include "cli/run_convergence.h"
#include "cli/run_report.h"
#include "common/generators.h"
#include "common/job.h"
#include "common/scenario.h"
#include "runtime/trainer.h"
#ifdef PIPECAST_HAVE_CUDA
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_processes.h"
#include "runtime/cuda/cuda_run.h"
#ifdef PIPECAST_HAVE_MPI
#include "runtime/cuda/nccl_bootstrap_mpi.h"
#endif
#endif
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
                  "%-24s seed %-3llu epoch %5.2f/%-5.2g train loss %.4f  test loss %.4f  "
                  "acc %.2f%%  %.0f samples/s",
                  Label(t).c_str(), static_cast<unsigned long long>(t.seed), e.epoch, epochs,
                  e.train_loss, e.test_loss, 100 * e.test_accuracy, e.samples_per_s);
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

// The job's methods, or those named on the command line (a name the job lists keeps its
// parameters there; other names run with their defaults).
std::vector<ir::MethodSpec> SelectMethods(const ir::Job& job, const RunOptions& options) {
  if (options.methods.empty()) return job.methods;
  std::vector<ir::MethodSpec> methods;
  for (const std::string& name : options.methods) {
    bool found = false;
    for (const ir::MethodSpec& m : job.methods) {
      if (m.name == name) {
        methods.push_back(m);
        found = true;
      }
    }
    if (!found) methods.push_back({name, {}, 0, 0});
  }
  return methods;
}

#ifdef PIPECAST_HAVE_MPI
// The devices a method's program runs on: the job's stages, times its data-parallel copies and
// the method's own copies (AvgPipe's pipelines).
int32_t DevicesOf(const ir::Job& job, const ir::MethodSpec& m) {
  const ir::GenerateOptions o{m.name,   job.pipeline.stages,       job.pipeline.microbatches, 1, 1,
                              m.params, job.pipeline.data_parallel};
  const Result<ir::ProgramSize> size = ir::SizeOf(o);
  return size.ok() ? size->devices : job.pipeline.stages * job.pipeline.data_parallel;
}

// One device per rank: the world must have as many ranks as every selected method has devices.
int SetUpMpi(const ir::Job& job, const std::vector<ir::MethodSpec>& methods,
             const RunOptions& options, runtime::TrainOptions& train, int* rank) {
  int argc = 0;
  char** argv = nullptr;
  const auto [r, size] = runtime::InitMpi(&argc, &argv);
  *rank = r;
  std::string counts;
  int devices = job.pipeline.stages * job.pipeline.data_parallel;
  bool same = true;
  for (size_t i = 0; i < methods.size(); ++i) {
    const int n = DevicesOf(job, methods[i]);
    if (i == 0) devices = n;
    same = same && n == devices;
    counts += (i ? ", " : "") + methods[i].name + " " + std::to_string(n);
  }
  if (!same) {
    if (r == 0) {
      std::cerr << "pipecast run: with --mpi every method must run on the same number of devices, "
                << "but they need " << counts << ": run each group with its own `mpirun -np N "
                << "pipecast run " << job.source << " --mpi --methods ...`\n";
    }
    runtime::FinalizeMpi();
    return kExitUsage;
  }
  if (size != devices) {
    if (r == 0) {
      std::cerr << "pipecast run: the MPI world has " << size << " processes but the methods of "
                << job.source << " run on " << devices << " devices (" << counts
                << "): run `mpirun -np " << devices << " pipecast run " << job.source
                << " --mpi`\n";
    }
    runtime::FinalizeMpi();
    return kExitError;
  }
  if (!options.checkpoint_dir.empty()) {
    if (r == 0) std::cerr << "pipecast run: --checkpoint-dir is not supported with --mpi yet\n";
    runtime::FinalizeMpi();
    return kExitUsage;
  }
  train.local_devices = {r};
  train.make_transport = [](int32_t, const runtime::MessageSpace& space) {
    return std::unique_ptr<runtime::Transport>(new runtime::MpiTransport(space));
  };
  train.share_doubles = [](int root, std::span<double> v) {
    return runtime::BroadcastDoubles(root, v);
  };
  train.share_floats = [](int root, std::span<float> v) {
    std::vector<std::vector<float>> one = {std::vector<float>(v.begin(), v.end())};
    PIPECAST_RETURN_IF_ERROR(runtime::BroadcastStages({root}, one));
    std::copy(one[0].begin(), one[0].end(), v.begin());
    return Status::Ok();
  };
  return kExitOk;
}
#endif

#ifdef PIPECAST_HAVE_CUDA
// device: cuda: one process with every device (several per GPU), or one process per GPU under
// mpirun (--mpi; MPI shares values, NCCL carries messages) or torchrun/Slurm (their variables;
// the TCP store shares values). Sets `processes` for the latter two; one line on failure.
int SetUpCuda(const ir::Job& job, const RunOptions& options, runtime::TrainOptions& train,
              std::shared_ptr<runtime::cuda::CudaProcesses>* processes, int* rank) {
  auto env = runtime::ReadProcessLaunchEnv();
  if (!env.ok()) {
    std::cerr << "pipecast run: " << env.status().message() << "\n";
    return kExitUsage;
  }
  // A checkpoint reads and writes every stage's state, and a rank holds only its own device's
  // (SetUpMpi refuses it under --mpi for the same reason).
  if (env->world_size > 1 && !options.checkpoint_dir.empty()) {
    if (env->rank == 0) {
      std::cerr << "pipecast run: --checkpoint-dir is not supported with one process per "
                   "device yet: drop it, or run in one process (without torchrun or srun)\n";
    }
    return kExitUsage;
  }
  if (runtime::cuda::VisibleGpus() == 0) {  // before any rank waits for another
    std::cerr << "pipecast run: " << runtime::cuda::NoCudaDevice().message() << "\n";
    return kExitError;
  }
  const auto deadline = runtime::Clock::now() + runtime::cuda::kProcessSetUpDeadline;
  Result<std::shared_ptr<runtime::cuda::CudaProcesses>> made =
      std::shared_ptr<runtime::cuda::CudaProcesses>();
  if (options.mpi) {
#ifdef PIPECAST_HAVE_MPI
    made = runtime::cuda::CudaProcesses::Create(*env, runtime::cuda::MpiUniqueIdExchange(), nullptr,
                                                deadline);
#endif
  } else if (env->world_size > 1) {
    auto store = runtime::ConnectStore(*env, deadline);
    if (!store.ok()) {
      std::cerr << "pipecast run: rank " << env->rank << ": " << store.status().message() << "\n";
      return kExitError;
    }
    runtime::TcpStore* s = store->get();
    const int r = env->rank;
    made = runtime::cuda::CudaProcesses::Create(
        *env,
        [s, r, deadline](const std::string& id) {
          return runtime::ExchangeFromRank0(*s, r, id, deadline);
        },
        std::move(*store), deadline);
    if (made.ok()) {
      auto p = *made;
      train.share_doubles = [p](int root, std::span<double> v) { return p->ShareDoubles(root, v); };
      train.share_floats = [p](int root, std::span<float> v) { return p->ShareFloats(root, v); };
      *rank = env->rank;
    }
  } else {
    auto run = runtime::cuda::InProcessCudaRun(job);
    if (!run.ok()) {
      std::cerr << "pipecast run: " << run.status().message() << "\n";
      return kExitError;
    }
    train.make_device = run->make_device;
    train.make_transport = run->make_transport;
    return kExitOk;
  }
  if (!made.ok()) {
    std::cerr << "pipecast run: " << made.status().message() << "\n";
    return kExitError;
  }
  *processes = *made;
  return kExitOk;
}
#endif

int WriteOutputs(const ir::Job& job, const RunOptions& options,
                 const std::vector<MethodRuns>& results) {
  std::string report;
  if (options.format == "json") {
    report = RunJson(job, results);
  } else if (options.format == "csv") {
    report = RunCsv(job, results);
  } else {
    report = RunTable(job, results);
  }
  if (options.output.empty()) {
    std::cout << report;
  } else if (Status s = WriteFileAtomically(options.output, report); !s.ok()) {
    std::cerr << "pipecast run: " << s.message() << "\n";
    return kExitError;
  }
  if (!options.trace.empty() && !results.empty()) {
    if (Status s = WriteFileAtomically(options.trace, MeasuredTrace(results.front().back()));
        !s.ok()) {
      std::cerr << "pipecast run: " << s.message() << "\n";
      return kExitError;
    }
  }
  if (!options.profile_out.empty() && !results.empty()) {
    if (Status s =
            WriteFileAtomically(options.profile_out, ProfileScenario(job, results.front().back()));
        !s.ok()) {
      std::cerr << "pipecast run: " << s.message() << "\n";
      return kExitError;
    }
  }
  if (!options.convergence_out.empty() && !results.empty()) {
    const std::string profile = ir::FormatConvergenceJson(ConvergenceProfileOf(job, results));
    if (Status s = WriteFileAtomically(options.convergence_out, profile); !s.ok()) {
      std::cerr << "pipecast run: " << s.message() << "\n";
      return kExitError;
    }
  }
  if (options.compare_sim) std::cout << CompareWithSimulation(results, nullptr);
  return kExitOk;
}

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
  if (options.evaluations > 0) job->evaluations = options.evaluations;
  if (options.device == "cuda") job->device = ir::JobDevice::kCuda;
  if (options.device == "cpu") job->device = ir::JobDevice::kCpu;
  std::optional<ir::Scenario> predict;
  if (!options.predict_with.empty()) {
    auto sc = ir::LoadScenarioFile(options.predict_with);
    if (!sc.ok()) {
      std::cerr << "pipecast run: --predict-with: " << sc.status().message() << "\n";
      return kExitError;
    }
    if (sc->pipeline.stages != job->pipeline.stages) {
      std::cerr << "pipecast run: --predict-with " << options.predict_with << " describes "
                << sc->pipeline.stages << " stages but " << job->source << " has "
                << job->pipeline.stages << "; profile a run of this job\n";
      return kExitError;
    }
    predict = std::move(*sc);
  }
  const std::vector<ir::MethodSpec> methods = SelectMethods(*job, options);
  int rank = 0;
  runtime::TrainOptions train;
  if (options.mpi) {
#ifdef PIPECAST_HAVE_MPI
    if (int rc = SetUpMpi(*job, methods, options, train, &rank); rc != kExitOk) return rc;
#else
    std::cerr << "pipecast run: this build has no MPI support (install libopenmpi-dev and "
                 "rebuild)\n";
    return kExitError;
#endif
  }
#ifdef PIPECAST_HAVE_CUDA
  std::shared_ptr<runtime::cuda::CudaProcesses> processes;
  if (job->device == ir::JobDevice::kCuda) {
    if (int rc = SetUpCuda(*job, options, train, &processes, &rank); rc != kExitOk) return rc;
  }
#endif
  const bool quiet = options.quiet || rank != 0;
  Progress progress(!quiet && ::isatty(STDERR_FILENO));
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
  std::vector<MethodRuns> results;
  for (const ir::MethodSpec& m : methods) {
#ifdef PIPECAST_HAVE_CUDA
    if (processes != nullptr) {
      if (Status st = processes->PrepareMethod(*job, m, train); !st.ok()) {
        std::cerr << "pipecast run: " << job->source << ": " << m.name << ": rank "
                  << processes->rank() << ": " << st.message() << "\n";
#ifdef PIPECAST_HAVE_MPI
        if (options.mpi) runtime::AbortMpi(kExitError);
#endif
        return kExitError;
      }
    }
#endif
    MethodRuns runs;
    for (int k = 0; k < options.seeds; ++k) {
      ir::Job seeded = *job;
      seeded.seed = job->seed + static_cast<uint64_t>(k);
      if (!options.checkpoint_dir.empty()) {
        runtime::MethodTraining label;
        label.method = m.name;
        label.params = m.params;
        std::string name = FileSafe(Label(label));
        if (options.seeds > 1) name += ".seed" + std::to_string(seeded.seed);
        train.checkpoint = options.checkpoint_dir + "/" + name + ".safetensors";
      }
      auto r = runtime::TrainMethod(seeded, m, train);
      if (!r.ok()) {
        std::cerr << "pipecast run: " << job->source << ": " << m.name << ": "
                  << r.status().message() << "\n";
#ifdef PIPECAST_HAVE_MPI
        if (options.mpi) runtime::AbortMpi(kExitError);
#endif
        return kExitError;
      }
      runs.push_back(std::move(*r));
    }
    results.push_back(std::move(runs));
  }
#ifdef PIPECAST_HAVE_MPI
  if (options.mpi) runtime::FinalizeMpi();
#endif
  if (rank != 0) return kExitOk;
  if (int rc = WriteOutputs(*job, options, results); rc != kExitOk) return rc;
  if (predict) std::cout << CompareWithSimulation(results, &*predict);
  return kExitOk;
}

}  // namespace pipecast::cli
