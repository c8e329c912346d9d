// Simulator speed and memory (docs/performance.md). Issue bar: at least 20 M compute actions (F,
// B, I, W) per second and at most 64 bytes of peak memory per compute action, end to end, on
// 1F1B D=64 M=65536 and PipeOptim and ZB-H1 programs of similar size; design point 50 M/s and
// 32 bytes.
//
//   BM_Pipeline_*: the whole path of `pipecast sim` without a trace: generate (into the compact
//                  encoding) -> engine (derived transfers, fused version accounting) -> metrics
//                  -> JSON report;
//   BM_Engine_*:   Simulate alone on a generated program (ir::Program, 20-byte actions);
//   BM_Timeline_*: lower + Simulate with the full timeline, as for a trace or an SVG.
//
// items_per_second counts compute actions. peak_bytes_per_compute_action is the growth of the
// resident set while one iteration runs in a forked child (so it is the peak, not an estimate),
// divided by the compute actions: for BM_Pipeline everything the run allocates, for BM_Engine
// what Simulate allocates on top of the program.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "common/compact_program.h"
#include "common/generators.h"
#include "common/lower.h"
#include "sim/cost_model.h"
#include "sim/engine.h"
#include "sim/report.h"

namespace pipecast::sim {
namespace {

struct Case {
  const char* method;
  int32_t devices, microbatches, minibatches;
};

// 8.4 M compute actions each.
constexpr Case kOneFOneB{"1f1b", 64, 65536, 1};
constexpr Case kPipeOptim{"pipeoptim", 64, 64, 1024};
constexpr Case kZbH1{"zb-h1", 64, 43690, 1};
// 2.1 M compute actions, with stashes (the full version level).
constexpr Case kPipeDream{"pipedream", 16, 64, 1024};

ir::Program Make(const Case& c) {
  auto p = ir::Generate({c.method, c.devices, c.microbatches, c.minibatches, 1, {}});
  if (!p.ok()) std::abort();
  return std::move(*p);
}

CostModel Costs(int32_t stages) {
  CostModel c = UniformCostModel(stages, 1000, 2000, 1000, 1000);
  for (auto& s : c.stages) {
    s.message_bytes = 1 << 20;
    s.activation_bytes = 1 << 24;
    s.weight_bytes = 1 << 26;
    s.optimizer_state_bytes = 1 << 27;
    s.optimizer_step = -1;
  }
  c.devices[0].memory_bandwidth = 2e12;
  c.link = {5000, 25e9};
  return c;
}

int64_t ComputeActions(const ir::Program& p) {
  int64_t n = 0;
  for (const auto& dev : p.devices)
    for (const auto& a : dev) n += ir::IsCompute(a.kind);
  return n;
}

int64_t ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<int64_t>(resident) * sysconf(_SC_PAGESIZE);
}

// Peak resident growth of `work` run once in a forked child, in bytes (-1 if fork failed): the
// child's peak resident set minus its resident set when `work` starts (after `setup`).
int64_t PeakGrowth(const std::function<void()>& setup, const std::function<void()>& work) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setup();
    const int64_t before = ResidentBytes();
    work();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const int64_t growth = usage.ru_maxrss * 1024 - before;
    if (write(fds[1], &growth, sizeof(growth)) != sizeof(growth)) _exit(1);
    _exit(0);
  }
  int64_t growth = -1;
  if (read(fds[0], &growth, sizeof(growth)) != sizeof(growth)) growth = -1;
  waitpid(pid, nullptr, 0);
  close(fds[0]);
  close(fds[1]);
  return growth;
}

void Report(benchmark::State& state, int64_t compute, int64_t peak) {
  state.SetItemsProcessed(state.iterations() * compute);
  state.counters["compute_actions"] = static_cast<double>(compute);
  state.counters["peak_bytes_per_compute_action"] =
      static_cast<double>(peak) / static_cast<double>(compute);
}

// generate -> simulate (no timeline) -> metrics -> JSON, as `pipecast sim --format json` does:
// the program generated into the compact encoding, device by device (the expanded form for
// programs whose weight copies are tracked).
void RunPipeline(const Case& c) {
  const ir::GenerateOptions o{c.method, c.devices, c.microbatches, c.minibatches, 1, {}};
  MethodRun run;
  run.method = c.method;
  Result<SimResult> r = Status();
  if (ir::SizeOf(o)->tracked_copies) {
    run.program = Make(c);
    r = Simulate(run.program, Costs(run.program.num_stages), {.record_timeline = false});
  } else {
    Result<ir::CompactProgram> compact = ir::GenerateCompact(o);
    if (!compact.ok()) std::abort();
    r = Simulate(*compact, Costs(compact->header.num_stages));
    run.program = std::move(compact->header);
  }
  if (!r.ok()) std::abort();
  run.result = std::move(*r);
  std::vector<MethodRun> runs;
  runs.push_back(std::move(run));
  benchmark::DoNotOptimize(FormatJson({"bench", ""}, runs));
}

// Peaks are measured before any benchmark runs, in children forked from a process that has
// not yet allocated (freed heap memory stays resident and would hide a later child's growth).
struct Peaks {
  int64_t pipeline = -1, engine = -1;
};
std::map<std::string, Peaks>& PeakTable() {
  static std::map<std::string, Peaks> table;
  return table;
}

void MeasurePeaks(const Case& c) {
  Peaks& peaks = PeakTable()[c.method];
  peaks.pipeline = PeakGrowth([] {}, [&] { RunPipeline(c); });
  ir::Program p;
  peaks.engine = PeakGrowth(
      [&] { p = Make(c); },
      [&] {
        benchmark::DoNotOptimize(Simulate(p, Costs(p.num_stages), {.record_timeline = false}));
      });
}

void Pipeline(benchmark::State& state, const Case& c) {
  const int64_t compute = ComputeActions(Make(c));
  for (auto _ : state) RunPipeline(c);
  Report(state, compute, PeakTable()[c.method].pipeline);
}

void Engine(benchmark::State& state, const Case& c) {
  const ir::Program p = Make(c);
  const CostModel costs = Costs(p.num_stages);
  for (auto _ : state) {
    auto r = Simulate(p, costs, {.record_timeline = false});
    benchmark::DoNotOptimize(r);
  }
  Report(state, ComputeActions(p), PeakTable()[c.method].engine);
}

void Timeline(benchmark::State& state, const Case& c) {
  const ir::Program p = Make(c);
  const CostModel costs = Costs(p.num_stages);
  for (auto _ : state) {
    const ir::Program lowered = ir::InsertCommunication(p);
    auto r = Simulate(lowered, costs, {.record_timeline = true});
    benchmark::DoNotOptimize(r);
  }
  Report(state, ComputeActions(p), 0);
}

BENCHMARK_CAPTURE(Pipeline, OneFOneB_D64_M65536, kOneFOneB)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Pipeline, PipeOptim_D64_M64_N1024, kPipeOptim)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Pipeline, ZbH1_D64_M43690, kZbH1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Engine, OneFOneB_D64_M65536, kOneFOneB)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Engine, PipeOptim_D64_M64_N1024, kPipeOptim)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Engine, ZbH1_D64_M43690, kZbH1)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Engine, PipeDream_D16_M64_N1024, kPipeDream)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(Timeline, OneFOneB_D64_M4096, (Case{"1f1b", 64, 4096, 1}))
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pipecast::sim

int main(int argc, char** argv) {
  using namespace pipecast::sim;
  for (const Case& c : {kOneFOneB, kPipeOptim, kZbH1, kPipeDream}) MeasurePeaks(c);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
