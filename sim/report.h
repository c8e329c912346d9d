// Reports of simulation results: a human comparison table, a versioned JSON document and a CSV
// file with one row per (method, stage). docs/outputs.md documents every column and JSON field.
//
// All three read only MethodRun values (the Program and the SimResult computed from it), so the
// CLI can compare several methods on one scenario in one report. Output is deterministic: the
// same inputs give byte-identical text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/ir.h"
#include "sim/bubble_fill.h"
#include "sim/cost_model.h"
#include "sim/result.h"

namespace pipecast::sim {

// One simulated method: what was asked for, the program it produced and its simulation.
struct MethodRun {
  std::string method;
  // Parameters to show next to the method name. Callers pass the parameters the user set (those
  // that differ from the generator's defaults), so "paci(a=4)" stays short; the reports show
  // exactly what is here, in key order.
  std::map<std::string, std::string> params;
  ir::Program program;
  SimResult result;
  // Which model layers each device holds (sim::DeviceLayers), when the costs come from a model;
  // the table marks runs whose partitions differ, so they are not compared as like with like.
  std::vector<std::string> partition;
  // The scenario's bubble work filled into the timeline (sim/bubble_fill.h), when it has any.
  std::optional<BubbleFill> bubble_fill;
};

// Where the results come from; written into the report headers and the JSON "scenario" object.
struct ReportContext {
  std::string scenario_name;
  std::string scenario_source;  // e.g. the scenario file's path; may be empty
  int64_t device_memory_bytes = 0;  // each device's capacity; 0 = unlimited (JSON only)
};

struct TableOptions {
  // Adds a per-stage (per-device) section under the comparison table, one block per method.
  bool per_stage = false;
  // ANSI colours (bold header, red over-memory marker). Callers enable it only for terminals;
  // columns stay aligned either way because escapes are added after padding.
  bool colour = false;
};

// The current JSON schema_version written by FormatJson. Bump it on incompatible changes
// (renamed or removed fields, changed units); adding fields keeps the version.
inline constexpr int kJsonSchemaVersion = 1;
// The JSON "schema" identifier.
inline constexpr const char* kJsonSchemaName = "pipecast-sim";

// A comparison table: one row per run, in the given order, followed by the per-stage section
// when asked. Ends with a newline.
std::string FormatTable(const ReportContext& context, const std::vector<MethodRun>& runs,
                        const TableOptions& options = {});

// The JSON report (schema "pipecast-sim", kJsonSchemaVersion), pretty-printed, ending with a
// newline. Times are seconds (doubles), memory is bytes (integers).
std::string FormatJson(const ReportContext& context, const std::vector<MethodRun>& runs);

// RFC 4180 CSV: a header row, then one row per (run, stage) with the run-level columns repeated
// on each row; a run without stage metrics still gets one row (stage columns empty). Lines end
// with CRLF.
std::string FormatCsv(const ReportContext& context, const std::vector<MethodRun>& runs);

// "method" or "method(k1=v1,k2=v2)" from run.method and run.params.
std::string MethodLabel(const MethodRun& run);

// Human units with three significant digits, e.g. "850 ns", "12.5 µs", "2.20 ms", "1.50 s".
std::string FormatDuration(TimeNs ns);

// Binary units, e.g. "512 B", "1.50 KiB", "640 MiB", "2.25 GiB".
std::string FormatBytes(int64_t bytes);

// Quotes a CSV field when it contains a comma, a double quote, CR or LF (quotes doubled).
std::string CsvField(const std::string& field);

}  // namespace pipecast::sim
