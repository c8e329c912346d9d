// The page of `pipecast report` put together (report_sections.h), and the formatting every
// section shares.
#include "cli/report_sections.h"

#include <fmt/format.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "cli/io.h"
#include "sim/chart.h"
#include "sim/report.h"

namespace pipecast::cli::report {
namespace {

std::vector<std::string> InputLines(const Inputs& in) {
  std::vector<std::string> lines;
  for (const SimInput& s : in.sims) {
    lines.push_back(fmt::format("{}: pipecast sim of scenario {} ({}), {} method{}", s.file,
                                s.scenario_name, s.scenario_source, s.results.size(),
                                s.results.size() == 1 ? "" : "s"));
  }
  for (const RunInput& r : in.runs) {
    lines.push_back(fmt::format("{}: pipecast run of job {} ({}), {} run{} ({} stages, {} x {})",
                                r.file, r.job_name, r.job_source, r.results.size(),
                                r.results.size() == 1 ? "" : "s", r.stages, r.microbatches,
                                r.microbatch_size));
  }
  for (const PlanInput& p : in.plans) {
    lines.push_back(fmt::format("{}: pipecast plan of scenario {} ({}), {} configurations", p.file,
                                p.scenario_name, p.scenario_source, p.evaluated));
  }
  return lines;
}

}  // namespace

Page BuildPage(const ReportModel& m, const std::vector<Timeline>& timelines, const PageOptions& o) {
  Page page;
  page.title = "pipecast report: " + (m.scenario.empty() ? std::string("(unnamed)") : m.scenario);
  const Recommendation r = Recommend(m, o);
  page.headline = r.headline;
  page.inputs = InputLines(*m.inputs);
  page.sections.push_back(SummarySection(m, r));
  page.sections.push_back(TimelineSection(m, timelines, o));
  page.sections.push_back(BubbleSection(m));
  page.sections.push_back(MemorySection(m));
  page.sections.push_back(StalenessSection(m));
  page.sections.push_back(TrainingSection(m));
  page.sections.push_back(ParetoSection(m));
  return page;
}

Section Titled(std::string id, std::string title) {
  Section s;
  s.id = std::move(id);
  s.title = std::move(title);
  return s;
}

std::string MethodColour(const MethodView& v) {
  return sim::kSeriesColours[v.colour % sim::kNumSeriesColours];
}

bool MethodDashed(const MethodView& v) { return (v.colour / sim::kNumSeriesColours) % 2 == 1; }

std::string Seconds(double s) {
  if (!std::isfinite(s)) return "-";
  return sim::FormatDuration(static_cast<sim::TimeNs>(std::llround(s * 1e9)));
}

std::string Bytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  return sim::FormatBytes(static_cast<int64_t>(std::llround(bytes)));
}

std::string Rate(double per_s) {
  if (!std::isfinite(per_s)) return "-";
  const sim::DisplayUnit u = sim::CountUnit(per_s);
  return fmt::format("{:.3g}{}", per_s / u.divisor, u.name);
}

std::string Join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

std::string FigureName(const std::string& prefix, const std::string& label) {
  return prefix + "-" + LabelFileName(label);
}

}  // namespace pipecast::cli::report
