// The timelines of `pipecast report`: each simulated method re-simulated from the scenario its
// sim JSON names, and drawn with the simulator's SVG writer (sim/svg.h).
//
// Why re-simulate rather than carry the timeline in the JSON: the picture needs the whole
// program (every action, its weight annotation, the placement of virtual stages) and every
// action's times, which for the default scenario are tens of thousands of records and for large
// runs millions, while the JSON stays a small, stable summary; and the simulator is exact and
// deterministic (integer nanoseconds), so the report can check the re-simulation against the
// JSON's makespan_ns and refuses to draw a timeline whose scenario has changed since.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/report_inputs.h"
#include "cli/report_sections.h"
#include "sim/svg.h"

namespace pipecast::cli::report {

struct TimelineOptions {
  sim::SvgOptions svg;        // width, window
  int64_t memory_budget = 0;  // bytes one re-simulation may plan to use
};

// One Timeline per simulated method, in input order: the SVG, or a note saying why it was not
// drawn (the scenario cannot be read or changed since, a hand-written schedule, too large).
std::vector<Timeline> DrawTimelines(const Inputs& inputs, const TimelineOptions& options);

}  // namespace pipecast::cli::report
