// SVG timeline of one simulated run: a picture a person can look at (docs/outputs.md, "SVG").
//
// One row per device ("dev k"), time to the right on an axis with ticks in human units, one box
// per compute action coloured by kind (F, B, I, W, optimizer step), the microbatch number inside
// boxes wide enough for it, idle time blank, and a legend. Actions that compute with weights other
// than the current ones are marked: a heavy border for stashed weights, hatching for predicted
// weights, a dashed border for PipeMare-corrected weights and a dotted border for an older buffer
// or an explicit version. Each box carries a <title> tooltip (token, times, version).
#pragma once

#include <string>

#include "sim/report.h"

namespace pipecast::sim {

struct SvgOptions {
  int width = 1200;             // total picture width in px; the makespan fills what labels leave
  int row_height = 26;          // px per device row
  bool show_transfers = false;  // draw each transfer as a thin line from send to arrival
  std::string title;            // replaces the default title "<method label> — makespan <time>"
};

// A standalone SVG document (XML declaration, xmlns), UTF-8, text escaped. Needs
// run.result.timing; without it the rows are empty. Deterministic output.
std::string FormatSvg(const MethodRun& run, const SvgOptions& options = {});

}  // namespace pipecast::sim
