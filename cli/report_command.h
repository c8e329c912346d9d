// `pipecast report`: one self-contained HTML page (or Markdown with SVG files) from the JSON of
// `pipecast sim`, `pipecast run` and `pipecast plan`, for a design review: the recommendation
// and why, timelines, bubbles, memory, staleness, training curves and the plan's Pareto front.
// The subcommand registers itself (AddReportCommand), so main.cc only dispatches to it.
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace pipecast::cli {

struct ReportOptions {
  std::vector<std::string> files;   // JSON of pipecast sim, run and plan
  std::string format = "auto";      // html | md | auto (md when -o ends in .md)
  std::string output;               // file; empty = standard output (HTML only)
  std::string svg_window;           // the timelines' window, as pipecast sim --svg-window
  double accuracy_tolerance = 1.0;  // percentage points below the best a recommendation may be
  bool no_timelines = false;        // do not re-simulate the scenarios for the timelines
};

// Adds the `report` subcommand and its options to `app`; returns it.
CLI::App* AddReportCommand(CLI::App& app, ReportOptions& options);

// The exit code: 0, 1 for bad input (one message naming the file, the key and the fix), 2 for
// no input at all.
int RunReport(const ReportOptions& options);

}  // namespace pipecast::cli
