// libFuzzer target: arbitrary bytes as a scenario file. ParseScenario must return a Status (never
// crash, throw, hang or exhaust memory) and a scenario it accepts must build into a cost model or
// fail with a Status, for one and several chunks per device.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/check.h"
#include "common/scenario.h"
#include "sim/cost_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const pipecast::Result<pipecast::ir::Scenario> scenario =
      pipecast::ir::ParseScenario(text, "fuzz.yaml");
  if (!scenario.ok()) {
    PIPECAST_CHECK(!scenario.status().message().empty());
    return 0;
  }
  for (int32_t chunks = 1; chunks <= 3; ++chunks) {
    const pipecast::Result<pipecast::sim::CostModel> cost =
        pipecast::sim::BuildCostModel(*scenario, scenario->pipeline.stages * chunks);
    if (cost.ok()) {
      PIPECAST_CHECK(cost->stages.size() ==
                     static_cast<size_t>(scenario->pipeline.stages * chunks));
    } else {
      PIPECAST_CHECK(!cost.status().message().empty());
    }
  }
  return 0;
}
