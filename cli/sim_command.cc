// `pipecast sim`: simulate every chosen method on a scenario and compare them.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/io.h"
#include "cli/sim_runs.h"
#include "common/scenario.h"
#include "common/units.h"
#include "sim/report.h"
#include "sim/svg.h"
#include "sim/trace.h"

namespace pipecast::cli {
namespace {

int Fail(const Status& s) {
  std::cerr << "pipecast sim: " << s.message() << "\n";
  return kExitError;
}

// Output directories are created, and output paths checked, before anything is simulated.
Status PrepareOutputs(const SimOptions& options) {
  for (const auto& [flag, dir] :
       {std::pair{"--trace-dir", options.trace_dir}, {"--svg-dir", options.svg_dir}}) {
    if (dir.empty()) continue;
    std::error_code ec;
    if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec)) {
      return InvalidArgument(std::string(flag) + " " + dir +
                             ": is a file, not a directory; name a directory to write into");
    }
    PIPECAST_RETURN_IF_ERROR(MakeDirectories(dir));
  }
  if (!options.output.empty()) {
    const std::filesystem::path parent = std::filesystem::path(options.output).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
      return InvalidArgument("-o " + options.output + ": the directory " + parent.string() +
                             " does not exist");
    }
  }
  return Status::Ok();
}

Result<int64_t> MemoryBudget(const SimOptions& options) {
  if (options.max_memory.empty()) return DefaultMemoryBudget();
  Result<int64_t> bytes = ir::ParseBytes(options.max_memory);
  if (!bytes.ok() || *bytes <= 0) {
    return InvalidArgument("--max-memory: expected a size such as 8GiB, got '" +
                           options.max_memory + "'");
  }
  return *bytes;
}

std::string Report(const ir::Scenario& scenario, const std::vector<sim::MethodRun>& runs,
                   const SimOptions& options) {
  const sim::ReportContext context{scenario.name, scenario.source, scenario.device_memory_bytes};
  if (options.format == "json") return sim::FormatJson(context, runs);
  if (options.format == "csv") return sim::FormatCsv(context, runs);
  sim::TableOptions t;
  t.per_stage = options.per_stage;
  t.colour = options.output.empty() && ::isatty(STDOUT_FILENO);
  return sim::FormatTable(context, runs, t);
}

// One trace and one SVG per run, named after its label; a second run with the same label gets
// "-2", "-3", ...
Status WritePictures(const std::vector<sim::MethodRun>& runs, const SimOptions& options,
                     const sim::SvgOptions& svg_options, bool tell) {
  for (const auto& [dir, svg] : {std::pair{options.trace_dir, false}, {options.svg_dir, true}}) {
    if (dir.empty()) continue;
    std::set<std::string> used;
    for (const sim::MethodRun& run : runs) {
      std::string base = LabelFileName(sim::MethodLabel(run));
      for (int n = 2; !used.insert(base).second; ++n) {
        base = LabelFileName(sim::MethodLabel(run)) + "-" + std::to_string(n);
      }
      const std::string path = dir + "/" + base + (svg ? ".svg" : ".trace.json");
      const std::string body =
          svg ? sim::FormatSvg(run, svg_options) : sim::FormatPerfettoTrace(run);
      PIPECAST_RETURN_IF_ERROR(WriteFileAtomically(path, body));
      if (tell) std::cerr << "wrote " << path << "\n";
    }
  }
  return Status::Ok();
}

}  // namespace

int RunSim(const SimOptions& options) {
  Result<ir::Scenario> scenario =
      options.scenario.empty() ? ir::DefaultScenario() : ir::LoadScenarioFile(options.scenario);
  if (!scenario.ok()) return Fail(scenario.status());
  auto choices = ChooseMethods(*scenario, options.methods);
  if (!choices.ok()) return Fail(choices.status());
  Result<int64_t> budget = MemoryBudget(options);
  if (!budget.ok()) return Fail(budget.status());
  if (Status s = PrepareOutputs(options); !s.ok()) return Fail(s);
  sim::SvgOptions svg_options;
  svg_options.width = options.svg_width;
  svg_options.show_transfers = options.svg_transfers;
  if (!options.svg_window.empty()) {
    Result<sim::SvgWindow> window = sim::ParseSvgWindow(options.svg_window);
    if (!window.ok()) return Fail(window.status());
    svg_options.window = *window;
  }
  RunSettings settings;
  settings.outputs = {!options.trace_dir.empty(), !options.svg_dir.empty(),
                      !options.svg_window.empty()};
  settings.memory_budget = *budget;

  std::vector<sim::MethodRun> runs;
  for (const Choice& c : *choices) {
    auto run = RunOne(*scenario, c, settings);
    if (!run.ok()) return Fail(run.status());
    runs.push_back(std::move(*run));
  }
  const std::string report = Report(*scenario, runs, options);
  const bool tell = !options.quiet && ::isatty(STDERR_FILENO);
  if (options.output.empty()) {
    std::cout << report;
  } else if (Status s = WriteFileAtomically(options.output, report); !s.ok()) {
    return Fail(s);
  } else if (tell) {
    std::cerr << "wrote " << options.output << "\n";
  }
  if (Status s = WritePictures(runs, options, svg_options, tell); !s.ok()) return Fail(s);
  return kExitOk;
}

}  // namespace pipecast::cli
