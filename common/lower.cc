#include "common/lower.h"

#include <vector>

namespace pipecast::ir {

bool HasCommunication(const Program& p) {
  for (const auto& dev : p.devices)
    for (const Action& a : dev)
      if (IsCommunication(a.kind)) return true;
  return false;
}

Program InsertCommunication(const Program& p) {
  if (HasCommunication(p)) return p;
  Program out = p;
  if (!p.placement_well_formed()) return out;  // the validator reports it
  const int32_t last = p.num_stages - 1;
  for (size_t d = 0; d < p.devices.size(); ++d) {
    const std::vector<Action>& in = p.devices[d];
    std::vector<Action>& prog = out.devices[d];
    prog.clear();
    prog.reserve(in.size() * 2);
    for (const Action& a : in) {
      const bool fwd = a.kind == ActionKind::kForward;
      const bool bwd = IsBackward(a.kind);
      const bool valid = (fwd || bwd) && a.stage >= 0 && a.stage <= last && a.microbatch >= 0 &&
                         a.microbatch < p.total_microbatches();
      if (!valid) {
        prog.push_back(a);
        continue;
      }
      // The copies this microbatch runs on (its replica's).
      const int32_t here = p.device_of(a.stage, a.microbatch);
      const bool prev_away = a.stage > 0 && p.device_of(a.stage - 1, a.microbatch) != here;
      const bool next_away = a.stage < last && p.device_of(a.stage + 1, a.microbatch) != here;
      if (fwd && prev_away) prog.push_back({ActionKind::kRecvActivation, a.stage, a.microbatch, {}});
      if (bwd && next_away) prog.push_back({ActionKind::kRecvGradient, a.stage, a.microbatch, {}});
      prog.push_back(a);
      if (fwd && next_away) prog.push_back({ActionKind::kSendActivation, a.stage, a.microbatch, {}});
      if (bwd && prev_away) prog.push_back({ActionKind::kSendGradient, a.stage, a.microbatch, {}});
    }
  }
  return out;
}

}  // namespace pipecast::ir
