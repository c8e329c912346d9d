#include "cli/report_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/io.h"
#include "cli/report_inputs.h"
#include "cli/report_model.h"
#include "cli/report_page.h"
#include "cli/report_sections.h"
#include "cli/report_timelines.h"
#include "cli/sim_runs.h"

namespace pipecast::cli {
namespace {

constexpr const char* kReportExamples = R"(
Examples:
  pipecast sim --format json -o sim.json && pipecast report sim.json -o report.html
  pipecast report sim.json runs.json plan.json -o review.html     sim, runs and plan together
  pipecast report sim.json --svg-window 1:1 -o report.html        timelines of minibatch 1 only
  pipecast report sim.json -o report.md                           Markdown, pictures in report-figures/
  pipecast run JOB --seeds 3 --format json -o runs.json --profile-out p.yaml
  pipecast sim p.yaml --format json -o p.json && pipecast report runs.json p.json -o job.html

A run JSON goes with the simulation of its own job's pipeline (the same name, or the name and a
suffix such as the -measured of --profile-out). Exit status: 0 success, 1 bad input (the message
names the file, the key and the fix), 2 usage error.
)";

int Fail(const Status& s) {
  std::cerr << "pipecast report: " << s.message() << "\n";
  return kExitError;
}

std::string Format(const ReportOptions& o) {
  if (o.format != "auto") return o.format;
  return o.output.size() > 3 && o.output.ends_with(".md") ? "md" : "html";
}

// The Markdown and its pictures, in DIR-figures/ next to it.
Status WriteMarkdown(const report::Page& page, const std::string& output) {
  const std::filesystem::path path(output);
  const std::string dir_name = path.stem().string() + "-figures";
  const std::filesystem::path dir = path.parent_path() / dir_name;
  const report::MarkdownOutput md = report::RenderMarkdown(page, dir_name);
  PIPECAST_RETURN_IF_ERROR(MakeDirectories(dir.string()));
  for (const auto& [name, svg] : md.files) {
    PIPECAST_RETURN_IF_ERROR(WriteFileAtomically((dir / name).string(), svg));
  }
  return WriteFileAtomically(output, md.markdown);
}

Result<std::vector<report::Timeline>> Timelines(const report::Inputs& inputs,
                                                const ReportOptions& o) {
  if (o.no_timelines) return std::vector<report::Timeline>{};
  report::TimelineOptions t;
  t.svg.width = 1100;
  if (!o.svg_window.empty()) {
    Result<sim::SvgWindow> window = sim::ParseSvgWindow(o.svg_window);
    if (!window.ok()) return window.status();
    t.svg.window = *window;
  }
  t.memory_budget = DefaultMemoryBudget();
  return report::DrawTimelines(inputs, t);
}

std::string TimelineNote(const ReportOptions& o) {
  if (o.no_timelines) return "Not drawn: --no-timelines.";
  return "Each timeline is the method simulated again from the scenario its sim JSON names (the "
         "makespan checked against the JSON's)" +
         (o.svg_window.empty() ? std::string(", the whole run.")
                               : ", window " + o.svg_window + " (--svg-window).");
}

}  // namespace

CLI::App* AddReportCommand(CLI::App& app, ReportOptions& o) {
  CLI::App* cmd = app.add_subcommand(
      "report", "Write an HTML (or Markdown) report from the JSON of sim, run and plan");
  cmd->footer(kReportExamples);
  cmd->add_option("files", o.files, "JSON files of pipecast sim, run and plan (--format json)");
  cmd->add_option("--format,-f", o.format, "html, md, or auto (md when -o ends in .md)")
      ->check(CLI::IsMember({"auto", "html", "md"}));
  cmd->add_option("--output,-o", o.output,
                  "Write the report to this file (Markdown: its pictures go to NAME-figures/)");
  cmd->add_option("--svg-window", o.svg_window,
                  "Draw part of each timeline: FROM:TO times with a unit (2ms:5ms) or minibatches "
                  "(3:4, 0-based, inclusive)");
  cmd->add_option("--accuracy-tolerance", o.accuracy_tolerance,
                  "Percentage points of final accuracy below the best that the recommendation may "
                  "give up for speed (default 1)")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_flag("--no-timelines", o.no_timelines,
                "Do not simulate the scenarios again to draw the timelines");
  return cmd;
}

int RunReport(const ReportOptions& o) {
  if (o.files.empty()) {
    std::cerr << "pipecast report: no input files; give the JSON of pipecast sim, run or plan "
                 "(--format json), e.g. pipecast sim --format json -o sim.json; pipecast report "
                 "sim.json -o report.html\n";
    return kExitUsage;
  }
  const std::string format = Format(o);
  if (format == "md" && o.output.empty()) {
    return Fail(
        InvalidArgument("--format md writes its pictures next to the report: give -o "
                        "report.md (they go to report-figures/)"));
  }
  Result<report::Inputs> inputs = report::ReadInputs(o.files);
  if (!inputs.ok()) return Fail(inputs.status());
  Result<std::vector<report::Timeline>> timelines = Timelines(*inputs, o);
  if (!timelines.ok()) return Fail(timelines.status());
  const auto undrawn = std::count_if(timelines->begin(), timelines->end(),
                                     [](const report::Timeline& t) { return t.svg.empty(); });
  if (undrawn > 0) {
    std::cerr << "pipecast report: note: " << undrawn << " of " << timelines->size()
              << " timelines not drawn; the page's Timelines section says why\n";
  }
  const report::ReportModel model = report::BuildModel(*inputs);
  report::PageOptions page_options;
  page_options.accuracy_tolerance = o.accuracy_tolerance / 100;
  page_options.timeline_note = TimelineNote(o);
  const report::Page page = report::BuildPage(model, *timelines, page_options);
  if (format == "md") {
    if (Status s = WriteMarkdown(page, o.output); !s.ok()) return Fail(s);
    return kExitOk;
  }
  const std::string html = report::RenderHtml(page);
  if (o.output.empty()) {
    std::cout << html;
  } else if (Status s = WriteFileAtomically(o.output, html); !s.ok()) {
    return Fail(s);
  }
  return kExitOk;
}

}  // namespace pipecast::cli
