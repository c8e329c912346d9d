// Run under `mpirun -np 4`: every rank runs one device of each program with the MPI transport on
// a CPU device; rank 0 gathers the final weights and losses and compares them, bit for bit, with
// the same program run on threads in one process. Prints "N passed, N failed" and exits non-zero
// on any mismatch. Programs with replicas (Chimera, GEMS, data-parallel copies, AvgPipe's
// pipelines) compare every copy, and AvgPipe every copy's reference weights too.
//
// With `--die-rank R`, rank R exits abruptly once the first program is under way (a stand-in
// for a crashed process): every other rank must then stop, non-zero, within the deadline; the
// ctest entry checks the exit code, the time and that the report names rank R.
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/generators.h"
#include "common/lower.h"
#include "runtime/cpu/cpu_device.h"
#include "runtime/executor_adapter.h"
#include "runtime/inproc_transport.h"
#include "runtime/loader_feed.h"
#include "runtime/mpi_transport.h"

using namespace pipecast;                    // NOLINT
using namespace pipecast::runtime;           // NOLINT
using namespace pipecast::runtime::testing;  // NOLINT

namespace {

constexpr int32_t kMicrobatch = 8;

models::OptimizerConfig Adam() {
  models::OptimizerConfig c = models::DefaultOptimizerConfig(models::OptimizerKind::kAdamW);
  c.lr = 0.01;
  return c;
}

// 2S - 1 hidden layers, two Linear layers per virtual stage (7 at four stages; zb-v has eight).
int32_t LayersFor(const ir::Program& p) { return 2 * p.num_stages - 1; }

// True if `p` elastically averages its copies (AvgPipe): they then keep reference weights.
bool Averages(const ir::Program& p) { return p.options.elastic_alpha > 0 && p.replicas > 1; }

// This device's reference weights of stage s (empty if it keeps none).
std::vector<float> ReferenceOf(CpuDevice& cpu, int32_t s) {
  const StageState state = cpu.State(s).value();
  for (const auto& [name, values] : state.tensors)
    if (name == "reference") return values;
  return {};
}

// Runs `p` with this rank's device over MPI; returns every stage's weights on rank 0 (every
// copy's, then with Averages(p) every copy's reference weights).
Result<std::vector<std::vector<float>>> RunMpi(const ir::Program& p, int rank, int die_rank,
                                               std::vector<double>* losses) {
  const auto loader = ClusterLoader();
  const auto model = ClusterMlp(LayersFor(p));
  const auto stages = *models::Partition(*model, p.num_stages);
  const auto init = StageSlices(stages, model->Init(3));
  const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
  std::vector<CpuStageSpec> specs;
  for (int32_t s = 0; s < p.num_stages; ++s)
    if (p.holds(rank, s)) specs.push_back({s, stages[s], Adam()});
  auto cpu = CpuDevice::Create(std::move(specs));
  if (!cpu.ok()) return cpu.status();
  for (int32_t s = 0; s < p.num_stages; ++s)
    if (p.holds(rank, s)) (*cpu)->SetWeights(s, init[s]);
  PIPECAST_RETURN_IF_ERROR((*cpu)->Prepare({&p, &plan, rank, kMicrobatch, 0, false}));
  std::vector<Device*> devices(p.num_devices, nullptr);
  devices[rank] = cpu->get();
  LoaderFeed feed(*loader, kMicrobatch, 0);
  MpiTransport mpi(TrainingSpace(p));
  ExecutorConfig config;
  config.local_devices = {rank};
  config.deadline = std::chrono::milliseconds(die_rank >= 0 ? 5000 : 30000);
  if (rank == die_rank) _exit(3);  // dies after MPI_Init, before its first message
  auto r = Execute(p, plan, devices, feed, mpi, config);
  if (!r.ok()) return r.status();
  *losses = r->losses;
  // Every replica's copies to rank 0 (replica r's stage s at index r·S + s), and every
  // replica's losses from the device of its last stage.
  std::vector<std::vector<float>> weights;
  for (int32_t r = 0; r < p.replicas; ++r) {
    for (int32_t s = 0; s < p.num_stages; ++s) {
      weights.emplace_back(static_cast<size_t>(stages[s].num_params()), 0.0f);
      if (p.device_of_replica(s, r) == rank) (*cpu)->ReadWeights(s, weights.back());
    }
  }
  std::vector<int32_t> owners = p.placement;
  if (Averages(p)) {
    owners.insert(owners.end(), p.placement.begin(), p.placement.end());
    for (int32_t r = 0; r < p.replicas; ++r) {
      for (int32_t s = 0; s < p.num_stages; ++s) {
        weights.emplace_back(static_cast<size_t>(stages[s].num_params()), 0.0f);
        if (p.device_of_replica(s, r) == rank) weights.back() = ReferenceOf(**cpu, s);
      }
    }
  }
  PIPECAST_RETURN_IF_ERROR(GatherStages(owners, weights));
  std::vector<double> all = *losses;
  for (int32_t r = 0; r < p.replicas; ++r) {
    std::vector<double> from = *losses;
    PIPECAST_RETURN_IF_ERROR(BroadcastDoubles(p.device_of_replica(p.num_stages - 1, r), from));
    for (int32_t j = 0; j < p.total_microbatches(); ++j)
      if (p.replica_of(j) == r) all[j] = from[j];
  }
  *losses = std::move(all);
  return weights;
}

}  // namespace

int main(int argc, char** argv) {
  int die_rank = -1;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--die-rank") == 0) die_rank = std::atoi(argv[i + 1]);
  const auto [rank, size] = InitMpi(&argc, &argv);
  int passed = 0, failed = 0;
  // Chimera's and GEMS's two directions over every rank, two data-parallel copies of a
  // synchronous and an asynchronous method on half the ranks each, and AvgPipe's two pipelines
  // on half the ranks each (averaged after every second step): their all-reduces and averages
  // go through MPI.
  struct Case {
    const char* method;
    int32_t data_parallel;
    int32_t pipelines = 1;  // AvgPipe's
  };
  const Case cases[] = {{"1f1b", 1},      {"zb-h2", 1},     {"zb-v", 1},      {"pipedream", 1},
                        {"pipedream-2bw", 1}, {"pipeoptim", 1}, {"spectrain", 1}, {"pipemare", 1},
                        {"paci", 1},      {"xpipe", 1},     {"gpipe", 1},     {"chimera", 1},
                        {"gems", 1},      {"1f1b", 2},      {"pipedream", 2}, {"avgpipe", 1, 2}};
  for (const auto& [method, dp, pipelines] : cases) {
    if (size % (dp * pipelines) != 0) continue;
    std::map<std::string, std::string> params;
    if (pipelines > 1) params = {{"pipelines", std::to_string(pipelines)}, {"period", "2"}};
    auto generated = ir::Generate({method, size / dp / pipelines, 4, 3, kMicrobatch, params, dp});
    if (!generated.ok()) {
      std::fprintf(stderr, "%s\n", generated.status().message().c_str());
      return 2;
    }
    const ir::Program p = ir::InsertCommunication(*generated);
    std::vector<double> losses;
    auto weights = RunMpi(p, rank, die_rank, &losses);
    if (!weights.ok()) {
      std::fprintf(stderr, "rank %d: %s: %s\n", rank, StatusCodeName(weights.status().code()),
                   weights.status().message().c_str());
      AbortMpi(1);
    }
    if (rank == 0) {
      const auto model = ClusterMlp(LayersFor(p));
      const auto stages = *models::Partition(*model, p.num_stages);
      const auto loader = ClusterLoader();
      LoaderFeed feed(*loader, kMicrobatch, 0);
      auto ref = RunOnCpu(p, stages, Adam(), StageSlices(stages, model->Init(3)), feed);
      std::vector<std::vector<float>> copies;
      if (ref.ok())
        for (const auto& replica : ref->copies)
          copies.insert(copies.end(), replica.begin(), replica.end());
      if (ref.ok() && Averages(p))
        for (const auto& replica : ref->references)
          copies.insert(copies.end(), replica.begin(), replica.end());
      const bool same = ref.ok() && copies == *weights && ref->exec.losses == losses;
      std::printf("%s %s (data_parallel %d): MPI (%d ranks) and threads %s%s\n",
                  same ? "[ OK ]" : "[FAIL]", method, dp, size,
                  same ? "give identical weights (every copy) and losses" : "DIFFER",
                  same && Averages(p) ? ", and every copy's reference weights" : "");
      (same ? passed : failed)++;
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  if (rank == 0) std::printf("%d passed, %d failed\n", passed, failed);
  FinalizeMpi();
  return failed == 0 ? 0 : 1;
}
