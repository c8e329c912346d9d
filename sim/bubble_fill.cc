#include "sim/bubble_fill.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/check.h"

namespace pipecast::sim {
namespace {

struct Gap {
  TimeNs start = 0;
  TimeNs end = 0;
};

// The idle gaps of device d between `from` and the start of action `stop` (its step), given the
// actions [first, stop) of its program.
std::vector<Gap> GapsBefore(const ir::Program& p, const SimResult& r, int32_t d, size_t first,
                            size_t stop, TimeNs from) {
  std::vector<Gap> gaps;
  TimeNs cursor = from;
  auto busy = [&](size_t i) {
    const ir::Action& a = p.devices[d][i];
    return ir::IsCompute(a.kind) || a.kind == ir::ActionKind::kStep;
  };
  for (size_t i = first; i <= stop && i < p.devices[d].size(); ++i) {
    if (!busy(i)) continue;
    const ActionTiming& t = r.timing[d][i];
    if (t.start > cursor) gaps.push_back({cursor, t.start});
    if (i == stop) break;
    cursor = std::max(cursor, t.end);
  }
  return gaps;
}

// Places `count` items of `duration` first fit into `gaps`; returns how many found room.
int64_t Place(std::vector<Gap>& gaps, TimeNs duration, int64_t count) {
  int64_t placed = 0;
  for (int64_t c = 0; c < count; ++c) {
    for (Gap& g : gaps) {
      if (g.end - g.start >= duration) {
        g.start += duration;
        ++placed;
        break;
      }
    }
  }
  return placed;
}

Status CheckWork(const ir::Program& p, const std::vector<ir::BubbleWorkItem>& work) {
  for (const ir::BubbleWorkItem& item : work) {
    if (item.duration_ns.size() != static_cast<size_t>(p.num_devices)) {
      return InvalidArgument(fmt::format("bubble work '{}' has {} durations for {} devices",
                                         item.name, item.duration_ns.size(), p.num_devices));
    }
    for (int64_t ns : item.duration_ns)
      if (ns < 0) return InvalidArgument(fmt::format("bubble work '{}': negative duration", item.name));
  }
  return Status::Ok();
}

}  // namespace

double BubbleFill::HiddenFraction() const {
  TimeNs work = 0, hidden = 0;
  for (const BubbleFillDevice& d : devices) {
    work += d.work;
    hidden += d.hidden;
  }
  return work == 0 ? 1.0 : static_cast<double>(hidden) / static_cast<double>(work);
}

Result<BubbleFill> FillBubbles(const ir::Program& p, const SimResult& r,
                               const std::vector<ir::BubbleWorkItem>& work) {
  PIPECAST_CHECK(r.timing.size() == static_cast<size_t>(p.num_devices))
      << "bubble filling needs the simulated timeline (SimOptions::record_timeline)";
  PIPECAST_RETURN_IF_ERROR(CheckWork(p, work));
  BubbleFill out;
  out.devices.resize(static_cast<size_t>(p.num_devices));
  std::vector<TimeNs> exposed_per_step;  // [k]: the most any device leaves exposed
  for (int32_t d = 0; d < p.num_devices; ++d) {
    BubbleFillDevice& dev = out.devices[static_cast<size_t>(d)];
    const std::vector<ir::Action>& prog = p.devices[d];
    size_t first = 0;
    TimeNs from = 0;
    int32_t step = 0, backwards = 0;
    for (size_t i = 0; i < prog.size(); ++i) {
      const ir::ActionKind kind = prog[i].kind;
      if (kind == ir::ActionKind::kBackward || kind == ir::ActionKind::kBackwardInput) ++backwards;
      if (kind != ir::ActionKind::kStep) continue;
      std::vector<Gap> gaps = GapsBefore(p, r, d, first, i, from);
      TimeNs exposed = 0;
      for (const ir::BubbleWorkItem& item : work) {
        const TimeNs ns = item.duration_ns[static_cast<size_t>(d)];
        const int64_t count = item.per_backward ? backwards : 1;
        const int64_t placed = Place(gaps, ns, count);
        dev.items += count;
        dev.placed += placed;
        dev.work += ns * count;
        dev.hidden += ns * placed;
        exposed += ns * (count - placed);
      }
      dev.exposed += exposed;
      if (exposed_per_step.size() <= static_cast<size_t>(step)) exposed_per_step.resize(step + 1, 0);
      exposed_per_step[step] = std::max(exposed_per_step[step], exposed);
      ++step;
      backwards = 0;
      first = i + 1;
      from = r.timing[d][i].end;
    }
  }
  for (TimeNs e : exposed_per_step) out.extra += e;
  out.makespan_with_work = r.makespan + out.extra;
  return out;
}

}  // namespace pipecast::sim
