// What `pipecast plan` searches and what it optimises: the `plan:` section of a scenario file
// (docs/plan.md, docs/scenarios.md) and the configurations it spans. Plain data, checked on
// parsing (every list non-empty, every value in range); the planner (sim/planner.h) enumerates
// and evaluates the space.
//
// Other commands ignore the section; ParseScenario accepts the key and ParsePlanSection reads it.
//
// A configuration is one point of the space: a method with its parameters, the pipeline depth D,
// the microbatches per minibatch M and the microbatch size b (M x b is the fixed global batch),
// activation recomputation and the partition rule. ConfiguredScenario gives the scenario of one
// configuration, which `pipecast sim` simulates exactly as the planner did.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/scenario.h"

namespace pipecast::ir {

enum class PlanObjective {
  kTimePerSample,  // steady-state time per sample
  kTimeToLoss,     // simulated time per optimizer step x measured steps to the target loss
};

// "time_per_sample", "time_to_loss".
const char* PlanObjectiveName(PlanObjective objective);

// A method and the values to try for each of its parameters (every combination is a config).
struct MethodGrid {
  std::string name;
  // key -> values to try. A parameter left out takes the method's default grid
  // (docs/plan.md), or the generator's default when the method has no grid for it.
  std::map<std::string, std::vector<std::string>> params;
  // false: a parameter left out takes the generator's default only (`pipecast plan --sweep`).
  bool default_grids = true;
  int32_t line = 0;  // where the entry was written (0: from a flag)
};

// Where a key of the plan section was written, for the planner's messages ("file:line:column").
struct PlanKeyPosition {
  int32_t line = 0;  // 1-based; 0 when unknown (the key came from a flag)
  int32_t column = 0;
};

struct PlanSpace {
  std::vector<MethodGrid> methods;        // empty: every method with its default grids
  std::vector<int32_t> stages;            // empty: the divisors of pipeline.stages
  // Data-parallel copies R to try (empty: 1 only). A configuration with D stages and R copies
  // uses D x R devices, at most pipeline.stages, and splits the global batch over the copies.
  std::vector<int32_t> data_parallel;
  std::vector<int32_t> microbatch_sizes;  // empty: every divisor of the global batch
  int64_t global_batch = 0;               // samples per minibatch; 0: M x b of the scenario
  std::vector<bool> recompute;            // empty: off and on (model: costs only)
  std::vector<PartitionRule> partitions;  // empty: every rule (model: costs only)
  PlanObjective objective = PlanObjective::kTimePerSample;
  std::optional<double> target_loss;        // test loss, for kTimeToLoss
  std::optional<int64_t> memory_cap_bytes;  // per device; absent: device memory (0 = none)
  std::optional<int32_t> max_gradient_delay;
  std::optional<int32_t> max_version_gap;
  std::string convergence;  // a convergence profile (docs/plan.md), relative to the scenario
  std::string dataset;      // the data set the profile must come from ("" = any)
  // Keys as written ("stages", "memory_cap", ...) and their positions.
  std::map<std::string, PlanKeyPosition> positions;
};

// One point of the space.
struct PlanConfig {
  std::string method;
  std::map<std::string, std::string> params;  // every parameter the grid set
  int32_t stages = 1;
  int32_t microbatches = 1;
  int32_t microbatch_size = 1;
  bool recompute = false;
  PartitionRule partition = PartitionRule::kBalanced;
  // Minibatches simulated: the scenario's, or more, so that at least kSteadyStateDepths x D
  // microbatches run (SimulatedMinibatches).
  int32_t minibatches = 1;
  // Copies of the pipeline; microbatches is one copy's (M x b x data_parallel = global batch).
  int32_t data_parallel = 1;
  friend bool operator==(const PlanConfig&, const PlanConfig&) = default;
};

// An asynchronous pipeline reaches its steady state (activations in flight, staleness, the rate
// of completions) only after about D microbatches; the planner simulates at least this many
// times D, so a configuration with few microbatches is not judged by its fill.
inline constexpr int32_t kSteadyStateDepths = 8;

// max(scenario minibatches, ceil(kSteadyStateDepths x D / M)), within kMaxCount microbatches.
int32_t SimulatedMinibatches(int32_t scenario_minibatches, int32_t stages, int32_t microbatches);

// "balanced", "even", "megatron-core".
const char* PartitionRuleName(PartitionRule rule);

// The scenario that simulates `config`: `base` with the configuration's pipeline shape
// (minibatches included), recomputation and partition (model: costs) and one method. The plan
// section is dropped. With per-device hardware (base.devices), D stages run on the first D
// devices. REQUIRES: config.stages <= base.devices.size() when base.devices is not empty.
Scenario ConfiguredScenario(const Scenario& base, const PlanConfig& config);

// "file:line:column: plan.KEY" for a key of the section, or "plan.KEY" for one set by a flag.
std::string WherePlanKey(const Scenario& scenario, const PlanSpace& space, const std::string& key);

// The `plan:` section of a scenario file (the text ParseScenario read), or nullopt when it has
// none. Errors (kInvalidArgument, kParseError): "file:line:column: plan.KEY ...", with what to
// write instead; an unknown key suggests the closest one.
Result<std::optional<PlanSpace>> ParsePlanSection(std::string_view yaml_text,
                                                  std::string_view filename);

}  // namespace pipecast::ir
