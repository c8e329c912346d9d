// libFuzzer target: arbitrary bytes as a scenario file. ParseScenario must return a Status (never
// crash, throw, hang or exhaust memory), a scenario it accepts must build into a cost model or
// fail with a Status, for one and several chunks per device, and a small one must simulate or
// fail with an error (fuzz_checks.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pipecast::fuzzing::CheckScenarioBytes(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
