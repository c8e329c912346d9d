// libFuzzer target: arbitrary bytes as a schedule in the text, JSON and torch CSV formats. Every
// parser must return a Status (never crash, throw or hang); a program one accepts is validated
// with the file's positions and, when valid and small, simulated as written and lowered, which
// must agree (fuzz_checks.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pipecast::fuzzing::CheckScheduleBytes(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
