#include "common/compact_program.h"

#include <utility>

namespace pipecast::ir {

Program CompactProgram::Expand() const {
  Program p = header;
  p.devices.assign(devices.size(), {});
  for (size_t d = 0; d < devices.size(); ++d) {
    p.devices[d].reserve(devices[d].size());
    for (uint64_t x : devices[d]) p.devices[d].push_back(Unpack(x));
  }
  return p;
}

Result<CompactProgram> GenerateCompact(const GenerateOptions& options) {
  CompactProgram compact;
  bool fits = true;
  Result<Program> header = Generate(options, [&](int32_t device, std::vector<Action>&& actions) {
    if (compact.devices.size() <= static_cast<size_t>(device)) {
      compact.devices.resize(static_cast<size_t>(device) + 1);
    }
    std::vector<uint64_t>& out = compact.devices[static_cast<size_t>(device)];
    out.reserve(actions.size());
    for (const Action& a : actions) {
      fits = fits && CompactProgram::Fits(a);
      out.push_back(fits ? CompactProgram::Pack(a) : 0);
    }
    std::vector<Action>().swap(actions);  // free it now: the next device reuses the memory
  });
  if (!header.ok()) return header.status();
  if (!fits) {
    return InvalidArgument("the program has a weight value beyond the compact encoding's " +
                           std::to_string(1 << CompactProgram::kValueBits));
  }
  compact.header = std::move(*header);
  compact.devices.resize(static_cast<size_t>(compact.header.num_devices));
  return compact;
}

}  // namespace pipecast::ir
