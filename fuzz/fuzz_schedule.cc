// libFuzzer target: arbitrary bytes as a schedule in the text and the JSON format. Both parsers
// must return a Status (never crash, throw or hang); errors carry a message.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/check.h"
#include "common/format_json.h"
#include "common/format_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const pipecast::Result<pipecast::ir::Program> from_text =
      pipecast::ir::ParseProgramText(text, "fuzz.txt");
  PIPECAST_CHECK(from_text.ok() || !from_text.status().message().empty());
  const pipecast::Result<pipecast::ir::Program> from_json =
      pipecast::ir::ParseProgramJson(text, "fuzz.json");
  PIPECAST_CHECK(from_json.ok() || !from_json.status().message().empty());
  return 0;
}
