// The sections of the `pipecast report` page, each built from the joined inputs (report_model.h)
// as tables, paragraphs and charts (sim/chart.h): the summary and recommendation
// (report_summary.cc); the simulated timelines, bubbles, memory and staleness
// (report_sim_sections.cc); training curves, measured against simulated time and prediction
// error (report_run_sections.cc); the plan's Pareto front (report_plan_section.cc).
#pragma once

#include <string>
#include <vector>

#include "cli/report_model.h"
#include "cli/report_page.h"

namespace pipecast::cli::report {

// A simulated method's timeline, drawn by the command (it re-simulates the scenario), or why not.
struct Timeline {
  std::string label;
  std::string svg;   // empty when not drawn
  std::string note;  // why not drawn, or what was drawn (the window)
};

struct PageOptions {
  double accuracy_tolerance = 0.01;  // fraction: how far below the best a recommendation may be
  std::string timeline_note;         // how the timelines were made (scenario, window)
};

// The recommendation: what to run and why.
struct Recommendation {
  std::string headline;              // "Recommended: zb-h2 (...)"
  std::vector<std::string> reasons;  // sentences
  std::string choice;                // the recommended method's label ("" if none)
};
Recommendation Recommend(const ReportModel& m, const PageOptions& o);

Section SummarySection(const ReportModel& m, const Recommendation& r);
Section TimelineSection(const ReportModel& m, const std::vector<Timeline>& timelines,
                        const PageOptions& o);
Section BubbleSection(const ReportModel& m);
Section MemorySection(const ReportModel& m);
Section StalenessSection(const ReportModel& m);
Section TrainingSection(const ReportModel& m);
Section ParetoSection(const ReportModel& m);

// Every section, in order, with the title and the list of inputs.
Page BuildPage(const ReportModel& m, const std::vector<Timeline>& timelines, const PageOptions& o);

// Shared by the sections.
Section Titled(std::string id, std::string title);
std::string MethodColour(const MethodView& v);  // sim::kSeriesColours, cycled
bool MethodDashed(const MethodView& v);         // the second time round the colours
std::string Seconds(double s);                  // "2.20 ms", three significant digits
std::string Bytes(double bytes);                // "6.69 GiB"
std::string Rate(double per_s);                 // "364k"
std::string Join(const std::vector<std::string>& parts, const std::string& separator);
// A file-name-safe stem from a label: "paci(a=4)" -> "paci-a-4".
std::string FigureName(const std::string& prefix, const std::string& label);

}  // namespace pipecast::cli::report
