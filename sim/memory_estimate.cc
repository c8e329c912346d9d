#include "sim/memory_estimate.h"

#include <algorithm>

#include "common/ir.h"
#include "sim/engine_versions.h"
#include "sim/result.h"

namespace pipecast::sim {

int64_t EstimateSimulationBytes(const ir::ProgramSize& size, const RunOutputs& outputs) {
  const double cells = static_cast<double>(size.cells());
  const double actions = static_cast<double>(size.actions());
  const double action_bytes = sizeof(ir::Action);
  // The program (in the 8-byte compact encoding unless its weight copies are tracked or a
  // timeline is recorded, plus one device's actions while they are encoded), and what the
  // engine keeps per stage-microbatch pair: when the data of its next consumer is ready
  // (8 bytes) and what its forward used (8 bytes).
  const bool compact = !size.tracked_copies && !outputs.trace && !outputs.svg;
  const double program =
      compact ? actions * sizeof(uint64_t) + actions / std::max(1, size.devices) * action_bytes
              : actions * action_bytes;
  double bytes = program + cells * (8 + sizeof(internal::ForwardVersion));
  if (size.stashes) bytes += cells * sizeof(internal::StashRecord);
  if (outputs.trace || outputs.svg) {
    // At most two transfers per pair (an activation and a gradient), each a send and a receive
    // in the lowered copy of the program; a timing per lowered action, a transfer record per
    // send, memory samples, the receives' indices, the producers' ends and the version plan.
    const double transfers = 2 * cells;
    const double lowered = actions + 2 * transfers;
    bytes += lowered * (action_bytes + sizeof(ActionTiming)) + transfers * sizeof(Transfer) +
             static_cast<double>(size.compute_actions) * sizeof(MemorySample) +
             cells * (2 * sizeof(int32_t) + sizeof(TimeNs) + sizeof(ir::VersionRecord));
    // The documents: a trace holds a JSON object per event (about 1 KiB each while it is built,
    // then its text), an SVG about 400 bytes of text per box.
    if (outputs.trace) bytes += (actions + 3 * transfers) * 1200.0;
    if (outputs.svg && !outputs.svg_window) bytes += actions * 400.0;
  }
  constexpr double kFixed = 16 << 20;  // the process: code, libraries, the scenario, reports
  return static_cast<int64_t>(bytes + kFixed);
}

}  // namespace pipecast::sim
