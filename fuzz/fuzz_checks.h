// What the fuzz targets check on one input, shared with the corpus replay of the ordinary test
// build (fuzz_corpus_test.cc), so every input the fuzzers found stays checked. A violated check
// aborts (PIPECAST_CHECK): it is a bug in pipecast, whatever the input.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/check.h"
#include "common/compact_program.h"
#include "common/format_json.h"
#include "common/format_text.h"
#include "common/format_torch_csv.h"
#include "common/generators.h"
#include "common/lower.h"
#include "common/plan_space.h"
#include "common/scenario.h"
#include "common/scenario_writer.h"
#include "common/schedule_source.h"
#include "sim/cost_builder.h"
#include "sim/cost_model.h"
#include "sim/engine.h"

namespace pipecast::fuzzing {

// A parsed schedule: validated with its file's positions and, when valid and small, simulated
// as written and lowered, which must agree.
inline void CheckSchedule(const Result<ir::Program>& program, const ir::ScheduleSource& source) {
  if (!program.ok()) {
    PIPECAST_CHECK(!program.status().message().empty());
    return;
  }
  const Status valid = ir::ValidateInSource(*program, source);
  if (!valid.ok()) {
    PIPECAST_CHECK(!valid.message().empty());
    return;
  }
  if (program->num_actions() > 20000) return;
  const sim::CostModel cost = sim::UniformCostModel(program->num_stages, 3, 5);
  Result<sim::SimResult> as_written = sim::Simulate(*program, cost, {.record_timeline = false});
  Result<sim::SimResult> lowered = sim::Simulate(ir::InsertCommunication(*program), cost);
  PIPECAST_CHECK(as_written.ok() == lowered.ok());
  if (as_written.ok()) PIPECAST_CHECK(as_written->makespan == lowered->makespan);
}

// Bytes as a schedule in the text, JSON and torch CSV formats.
inline void CheckScheduleBytes(std::string_view text) {
  {
    ir::ScheduleSource source;
    CheckSchedule(ir::ParseProgramText(text, "fuzz.txt", &source), source);
  }
  {
    ir::ScheduleSource source;
    CheckSchedule(ir::ParseProgramJson(text, "fuzz.json", &source), source);
  }
  {
    ir::ScheduleSource source;
    const auto minibatches = 1 + static_cast<int32_t>(text.size() % 3);
    CheckSchedule(ir::ParseTorchCsv(text, "fuzz.csv", minibatches, &source), source);
  }
}

// A scenario's small runs of `method` simulate, or fail with an error a user can act on (costs
// too large for the clock are errors, never wrapped numbers).
inline void CheckSimulation(const ir::Scenario& s, const char* method) {
  const ir::GenerateOptions o{method,
                              s.pipeline.stages,
                              s.pipeline.microbatches,
                              s.pipeline.minibatches,
                              s.pipeline.microbatch_size,
                              {}};
  const Result<ir::ProgramSize> size = ir::SizeOf(o);
  if (!size.ok() || size->actions() > 20000) return;
  const Result<sim::CostModel> cost = sim::BuildCostModel(s, size->stages);
  const Result<ir::CompactProgram> program = ir::GenerateCompact(o);
  if (!cost.ok() || !program.ok()) return;
  const Result<sim::SimResult> r = sim::Simulate(*program, *cost);
  if (!r.ok()) {
    PIPECAST_CHECK(r.status().code() == StatusCode::kInvalidArgument) << r.status().message();
    return;
  }
  PIPECAST_CHECK(r->makespan >= 0);
  PIPECAST_CHECK(r->bubble.idle_fraction <= 1.0 + 1e-9) << r->bubble.idle_fraction;
}

// Bytes as a scenario: it parses or fails with a message; an accepted one builds a cost model
// (or fails with a message) for one to three chunks, and its small runs simulate.
inline void CheckScenarioBytes(std::string_view text) {
  const Result<ir::Scenario> scenario = ir::ParseScenario(text, "fuzz.yaml");
  if (!scenario.ok()) {
    PIPECAST_CHECK(!scenario.status().message().empty());
    return;
  }
  for (int32_t chunks = 1; chunks <= 3; ++chunks) {
    const Result<sim::CostModel> cost =
        sim::BuildCostModel(*scenario, scenario->pipeline.stages * chunks);
    if (cost.ok()) {
      PIPECAST_CHECK(cost->stages.size() ==
                     static_cast<size_t>(scenario->pipeline.stages * chunks));
    } else {
      PIPECAST_CHECK(!cost.status().message().empty());
    }
  }
  CheckSimulation(*scenario, "1f1b");
  CheckSimulation(*scenario, "pipeoptim");
  // The plan section parses or fails with a message, and the scenario written back reads again
  // as the same pipeline (what `pipecast plan --emit-scenario` relies on).
  const Result<std::optional<ir::PlanSpace>> plan = ir::ParsePlanSection(text, "fuzz.yaml");
  PIPECAST_CHECK(plan.ok() || !plan.status().message().empty());
  const Result<ir::Scenario> back =
      ir::ParseScenario(ir::FormatScenarioYaml(*scenario, ""), "back.yaml");
  PIPECAST_CHECK(back.ok() && back->pipeline.stages == scenario->pipeline.stages &&
                 back->pipeline.microbatches == scenario->pipeline.microbatches);
}

}  // namespace pipecast::fuzzing
