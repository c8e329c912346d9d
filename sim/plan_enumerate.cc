// The search space of `pipecast plan`: the defaults of every list (docs/plan.md), the checks of
// the lists against the scenario, and the enumeration of every configuration in a fixed order.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/generators.h"
#include "common/limits.h"
#include "sim/planner.h"

namespace pipecast::sim {
namespace {

std::vector<int32_t> Divisors(int64_t n) {
  std::vector<int32_t> out;
  for (int64_t d = 1; d <= n && d <= ir::kMaxCount; ++d) {
    if (n % d == 0) out.push_back(static_cast<int32_t>(d));
  }
  return out;
}

// The values of a parameter the planner tries when the plan does not list them: those that
// change the schedule (and so time, memory or staleness). Empty: the generator's default only.
std::vector<std::string> DefaultGrid(const std::string& method, const std::string& param,
                                     const ir::Scenario& scenario, int32_t stages,
                                     int32_t microbatches) {
  if (method == "interleaved" && param == "chunks") {
    std::vector<std::string> out;
    const int32_t layers = scenario.model ? scenario.model->layers + 2 : 1 << 30;
    for (int32_t v : {2, 3, 4}) {
      if (static_cast<int64_t>(v) * stages <= layers) out.push_back(std::to_string(v));
    }
    return out;
  }
  if (method == "chimera" && param == "pipelines") {  // 2f for every divisor f of D/2
    std::vector<std::string> out;
    for (int32_t f = 1; f <= stages / 2; ++f)
      if ((stages / 2) % f == 0 && stages % 2 == 0) out.push_back(std::to_string(2 * f));
    return out;
  }
  if (method == "avgpipe" && param == "advance") {  // 1F1B, then all forwards first (AFAB)
    return {"0", std::to_string(microbatches)};
  }
  if (method == "paci" && param == "accumulation") {
    std::vector<std::string> out;
    for (int32_t div : {1, 2, 4}) {
      if (microbatches % div == 0) out.push_back(std::to_string(microbatches / div));
    }
    return out;
  }
  static const std::map<std::string, std::vector<std::string>> kChoices = {
      {"pipedream/vertical_sync", {"false", "true"}},
      {"spectrain/variant", {"v1", "v2"}},
      {"xpipe/horizon", {"round_trip", "sequential", "formula"}},
      {"pipemare/correction", {"true", "false"}},
      {"pipeoptim/horizon", {"paper", "code"}},
  };
  const auto it = kChoices.find(method + "/" + param);
  return it == kChoices.end() ? std::vector<std::string>{} : it->second;
}

// Every combination of the method's parameter values for one pipeline shape, in key order.
std::vector<std::map<std::string, std::string>> ParamCombinations(const ir::MethodGrid& grid,
                                                                  const ir::Scenario& scenario,
                                                                  int32_t stages,
                                                                  int32_t microbatches) {
  std::vector<std::map<std::string, std::string>> combos = {{}};
  const ir::MethodInfo* info = ir::FindMethod(grid.name);
  for (const ir::ParamInfo& p : info->params) {
    const auto listed = grid.params.find(p.name);
    std::vector<std::string> values;
    if (listed != grid.params.end()) {
      values = listed->second;
    } else if (grid.default_grids) {
      values = DefaultGrid(grid.name, p.name, scenario, stages, microbatches);
    }
    if (values.empty()) continue;
    std::vector<std::map<std::string, std::string>> next;
    for (const auto& c : combos) {
      for (const std::string& v : values) {
        auto with = c;
        with[p.name] = v;
        next.push_back(std::move(with));
      }
    }
    combos = std::move(next);
  }
  return combos;
}

// Explicit per-stage costs describe one pipeline of one microbatch size: depth, microbatch size,
// recomputation and the partition cannot be searched over them.
Status CheckExplicit(const ir::Scenario& s, const ir::PlanSpace& space) {
  const auto refuse = [&](const std::string& key, const std::string& why) {
    return InvalidArgument(fmt::format(
        "{}: {}; explicit per-stage costs (costs:) describe one pipeline, so describe the model "
        "(model: and cluster:) to search this, or drop the key",
        ir::WherePlanKey(s, space, key), why));
  };
  if (space.stages != std::vector<int32_t>{s.pipeline.stages}) {
    return refuse("stages",
                  fmt::format("only pipeline.stages = {} can be planned", s.pipeline.stages));
  }
  if (space.microbatch_sizes != std::vector<int32_t>{s.pipeline.microbatch_size}) {
    return refuse("microbatch_sizes", fmt::format("the costs are per microbatch of {} samples",
                                                  s.pipeline.microbatch_size));
  }
  if (space.recompute != std::vector<bool>{false}) {
    return refuse("recompute", "recomputation is a property of the model's layers");
  }
  if (space.partitions != std::vector<ir::PartitionRule>{ir::PartitionRule::kBalanced}) {
    return refuse("partitions", "the costs are already cut into stages");
  }
  return Status::Ok();
}

// Fills the lists the plan leaves empty with their defaults.
void FillDefaults(const ir::Scenario& s, ir::PlanSpace* space, int64_t global_batch) {
  if (space->stages.empty()) {
    space->stages = s.model ? Divisors(s.pipeline.stages) : std::vector{s.pipeline.stages};
  }
  if (space->microbatch_sizes.empty()) {
    space->microbatch_sizes =
        s.model ? Divisors(global_batch) : std::vector{s.pipeline.microbatch_size};
  }
  if (space->data_parallel.empty()) space->data_parallel = {1};
  if (space->recompute.empty()) {
    space->recompute = s.model ? std::vector<bool>{false, true} : std::vector<bool>{false};
  }
  if (space->partitions.empty()) {
    space->partitions = s.model
                            ? std::vector{ir::PartitionRule::kBalanced, ir::PartitionRule::kEven,
                                          ir::PartitionRule::kMegatronCore}
                            : std::vector{ir::PartitionRule::kBalanced};
  }
  if (space->methods.empty()) {
    for (const ir::MethodInfo& m : ir::Methods()) space->methods.push_back({m.name, {}, true, 0});
  }
}

}  // namespace

Result<std::vector<ir::PlanConfig>> EnumerateSpace(const ir::Scenario& s, ir::PlanSpace* space,
                                                   int64_t* global_batch) {
  const int64_t batch = space->global_batch > 0 ? space->global_batch
                                                : static_cast<int64_t>(s.pipeline.microbatches) *
                                                      s.pipeline.microbatch_size;
  *global_batch = batch;
  FillDefaults(s, space, batch);
  if (!s.model) PIPECAST_RETURN_IF_ERROR(CheckExplicit(s, *space));
  // With per-device hardware, a pipeline of D stages runs on the first D devices described.
  for (int32_t d : space->stages) {
    if (!s.devices.empty() && static_cast<size_t>(d) > s.devices.size()) {
      return InvalidArgument(fmt::format(
          "{}: D = {} needs {} devices, but {} describes {} (a pipeline of D stages runs on the "
          "first D of them); list D up to {}, or describe more devices",
          ir::WherePlanKey(s, *space, "stages"), d, d, s.model ? "cluster.devices" : "devices",
          s.devices.size(), s.devices.size()));
    }
  }
  for (int32_t b : space->microbatch_sizes) {
    if (batch % b != 0) {
      return InvalidArgument(fmt::format(
          "{}: microbatch size {} does not divide the global batch of {} samples (plan."
          "global_batch, else pipeline.microbatches x pipeline.microbatch_size); list divisors "
          "of it",
          ir::WherePlanKey(s, *space, "microbatch_sizes"), b, batch));
    }
    if (batch / b * s.pipeline.minibatches > ir::kMaxCount) {
      return InvalidArgument(fmt::format(
          "{}: microbatch size {} gives {} microbatches x {} minibatches, more than the {} "
          "pipecast simulates in one run; use larger microbatches",
          ir::WherePlanKey(s, *space, "microbatch_sizes"), b, batch / b, s.pipeline.minibatches,
          ir::kMaxCount));
    }
  }
  for (int32_t r : space->data_parallel) {
    if (batch % r != 0) {
      return InvalidArgument(fmt::format(
          "{}: {} data-parallel copies do not divide the global batch of {} samples; list "
          "degrees that divide it",
          ir::WherePlanKey(s, *space, "data_parallel"), r, batch));
    }
  }
  std::vector<ir::PlanConfig> out;
  for (int32_t r : space->data_parallel) {
    for (int32_t d : space->stages) {
      // R copies of D stages must fit the scenario's devices (pipeline.stages).
      if (r > 1 && static_cast<int64_t>(d) * r > s.pipeline.stages) continue;
      for (int32_t b : space->microbatch_sizes) {
        if ((batch / r) % b != 0) continue;  // a copy's batch is not whole microbatches
        const auto m = static_cast<int32_t>(batch / r / b);
        const int32_t n = ir::SimulatedMinibatches(s.pipeline.minibatches, d, m);
        for (bool rc : space->recompute) {
          for (ir::PartitionRule part : space->partitions) {
            for (const ir::MethodGrid& grid : space->methods) {
              for (auto& params : ParamCombinations(grid, s, d, m)) {
                out.push_back({grid.name, std::move(params), d, m, b, rc, part, n, r});
              }
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace pipecast::sim
