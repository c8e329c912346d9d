// Simulator throughput: actions timed per second for large programs (issue targets: >= 20M
// actions/s on one core for 1F1B D=64 M=4096, a PipeOptim run of similar size, ZB-H1 D=32
// M=1024). Counters: items_per_second counts the actions the issue counts, compute actions
// (F, B, I, W) plus their transfers (one per send); ir_actions_per_s counts every action of
// the lowered program (also receives and steps); compute_actions_per_s counts F/B/I/W only;
// bytes_per_action is the engine's working memory (result and scratch arrays) divided by the
// number of IR actions.
#include <benchmark/benchmark.h>

#include "common/generators.h"
#include "common/lower.h"
#include "sim/cost_model.h"
#include "sim/engine.h"

namespace pipecast::sim {
namespace {

ir::Program Make(const std::string& method, int32_t d, int32_t m, int32_t n) {
  auto p = ir::Generate({method, d, m, n, 1, {}});
  if (!p.ok()) std::abort();
  return ir::InsertCommunication(*p);
}

CostModel Costs(const ir::Program& p) {
  CostModel c = UniformCostModel(p.num_stages, 1000, 2000, 1000, 1000);
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

void Run(benchmark::State& state, const ir::Program& p, bool record) {
  const CostModel c = Costs(p);
  int64_t compute = 0, transfers = 0;
  for (const auto& dev : p.devices) {
    for (const auto& a : dev) {
      compute += ir::IsCompute(a.kind);
      transfers += a.kind == ir::ActionKind::kSendActivation ||
                   a.kind == ir::ActionKind::kSendGradient;
    }
  }
  const auto total = static_cast<int64_t>(p.num_actions());
  SimOptions options;
  options.record_timeline = record;
  for (auto _ : state) {
    auto r = Simulate(p, c, options);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * (compute + transfers));
  state.counters["ir_actions"] = static_cast<double>(total);
  state.counters["ir_actions_per_s"] = benchmark::Counter(
      static_cast<double>(total) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["compute_actions_per_s"] = benchmark::Counter(
      static_cast<double>(compute) * state.iterations(), benchmark::Counter::kIsRate);
  // Working memory per action: data-ready and producer-end arrays (4 x int64 per stage x
  // microbatch), the version table (7 x int32 per stage x microbatch), live-version counts
  // (int32 per action) and, when recording, 16 bytes of timing per action.
  const double slots = static_cast<double>(p.num_stages) * p.total_microbatches();
  const double bytes = slots * (4 * 8 + 7 * 4 + 8 + 1) + total * 4.0 + (record ? total * 16.0 : 0);
  state.counters["bytes_per_action"] = bytes / total;
}

void BM_OneFOneB_D64_M4096(benchmark::State& s) { Run(s, Make("1f1b", 64, 4096, 1), false); }
void BM_PipeOptim_D64_M64_N64(benchmark::State& s) { Run(s, Make("pipeoptim", 64, 64, 64), false); }
void BM_ZbH1_D32_M1024(benchmark::State& s) { Run(s, Make("zb-h1", 32, 1024, 1), false); }
void BM_OneFOneB_D64_M4096_Timeline(benchmark::State& s) {
  Run(s, Make("1f1b", 64, 4096, 1), true);
}
void BM_PipeDream_D16_M64_N16(benchmark::State& s) { Run(s, Make("pipedream", 16, 64, 16), false); }

BENCHMARK(BM_OneFOneB_D64_M4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PipeOptim_D64_M64_N64)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ZbH1_D32_M1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OneFOneB_D64_M4096_Timeline)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PipeDream_D16_M64_N16)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pipecast::sim

BENCHMARK_MAIN();
