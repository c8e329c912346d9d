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
  const int32_t last = p.num_stages - 1;
  for (size_t d = 0; d < p.devices.size(); ++d) {
    const std::vector<Action>& in = p.devices[d];
    std::vector<Action>& prog = out.devices[d];
    prog.clear();
    prog.reserve(in.size() * 2);
    for (const Action& a : in) {
      const bool fwd = a.kind == ActionKind::kForward;
      const bool bwd = IsBackward(a.kind);
      const bool valid_stage = a.stage >= 0 && a.stage <= last;
      if (fwd && valid_stage && a.stage > 0 && p.device_of(a.stage - 1) != p.device_of(a.stage))
        prog.push_back({ActionKind::kRecvActivation, a.stage, a.microbatch, {}});
      if (bwd && valid_stage && a.stage < last && p.device_of(a.stage + 1) != p.device_of(a.stage))
        prog.push_back({ActionKind::kRecvGradient, a.stage, a.microbatch, {}});
      prog.push_back(a);
      if (fwd && valid_stage && a.stage < last && p.device_of(a.stage + 1) != p.device_of(a.stage))
        prog.push_back({ActionKind::kSendActivation, a.stage, a.microbatch, {}});
      if (bwd && valid_stage && a.stage > 0 && p.device_of(a.stage - 1) != p.device_of(a.stage))
        prog.push_back({ActionKind::kSendGradient, a.stage, a.microbatch, {}});
    }
  }
  return out;
}

}  // namespace pipecast::ir
