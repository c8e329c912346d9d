#include "sim/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast::sim {
namespace {

using Json = nlohmann::ordered_json;  // keeps fields in the documented order

constexpr double kNsPerSecond = 1e9;

double Seconds(TimeNs ns) { return static_cast<double>(ns) / kNsPerSecond; }

// Formats |value| (>= 0, < 1000 after rounding) with three significant digits.
std::string ThreeDigits(double value) {
  if (value < 9.995) return fmt::format("{:.2f}", value);
  if (value < 99.95) return fmt::format("{:.1f}", value);
  return fmt::format("{:.0f}", value);
}

// Scales `value` down by `base` while it reaches the next unit (1000 ns is "1.00 µs", 1024 B is
// "1.00 KiB"), and appends the unit. units[0] is the unit of `value` itself (written without
// decimals); the others get three significant digits.
std::string ScaledUnits(double value, double base, const std::vector<std::string_view>& units) {
  const double threshold = base - 0.5;  // values that would round to `base` move up a unit
  double v = std::fabs(value);
  size_t u = 0;
  while (u + 1 < units.size() && v >= threshold) {
    v /= base;
    ++u;
  }
  const std::string digits = (u == 0 || v >= 999.5) ? fmt::format("{:.0f}", v) : ThreeDigits(v);
  return fmt::format("{}{} {}", value < 0 ? "-" : "", digits, units[u]);
}

// A rate or count with an SI suffix, three significant digits: "320", "12.3", "45.5k", "1.20M".
std::string FormatRate(double value) {
  if (!std::isfinite(value)) return "-";
  static const std::vector<std::string_view> kSuffixes = {"", "k", "M", "G", "T"};
  double v = std::fabs(value);
  size_t u = 0;
  while (u + 1 < kSuffixes.size() && v >= 999.5) {
    v /= 1000.0;
    ++u;
  }
  return fmt::format("{}{}{}", value < 0 ? "-" : "", ThreeDigits(v), kSuffixes[u]);
}

std::string Percent(double fraction) {
  if (!std::isfinite(fraction)) return "-";
  return fmt::format("{:.1f}%", fraction * 100.0);
}

// Width of a UTF-8 string in terminal columns: one per code point (the table uses no wide or
// combining characters).
size_t DisplayWidth(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// ---- Aligned text tables ----

enum class Align { kLeft, kRight };

struct Cell {
  std::string text;
  const char* style = nullptr;  // ANSI escape applied when colour is on
};

class TextTable {
 public:
  void AddColumn(std::string header, Align align) {
    headers_.push_back(std::move(header));
    aligns_.push_back(align);
  }
  void AddRow(std::vector<Cell> row) { rows_.push_back(std::move(row)); }

  std::string Render(bool colour) const {
    std::vector<size_t> widths(headers_.size(), 0);
    for (size_t c = 0; c < headers_.size(); ++c) widths[c] = DisplayWidth(headers_[c]);
    for (const auto& row : rows_)
      for (size_t c = 0; c < row.size() && c < widths.size(); ++c)
        widths[c] = std::max(widths[c], DisplayWidth(row[c].text));
    std::string out;
    std::vector<Cell> header;
    for (const auto& h : headers_) header.push_back({h, "\x1b[1m"});
    AppendLine(out, header, widths, colour);
    for (const auto& row : rows_) AppendLine(out, row, widths, colour);
    return out;
  }

 private:
  void AppendLine(std::string& out, const std::vector<Cell>& row, const std::vector<size_t>& widths,
                  bool colour) const {
    std::string line;
    for (size_t c = 0; c < widths.size(); ++c) {
      const Cell empty;
      const Cell& cell = c < row.size() ? row[c] : empty;
      const size_t pad = widths[c] - std::min(widths[c], DisplayWidth(cell.text));
      std::string padded = aligns_[c] == Align::kLeft ? cell.text + std::string(pad, ' ')
                                                      : std::string(pad, ' ') + cell.text;
      if (colour && cell.style != nullptr) padded = cell.style + padded + "\x1b[0m";
      if (c > 0) line += "  ";
      line += padded;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  }

  std::vector<std::string> headers_;
  std::vector<Align> aligns_;
  std::vector<std::vector<Cell>> rows_;
};

constexpr const char* kRed = "\x1b[31;1m";

// Method-level maxima over the stages.
struct RunSummary {
  int64_t peak_memory = 0;
  bool over_memory = false;
  int32_t live_versions = 0;
  int32_t version_gap = 0;
  int32_t gradient_delay = 0;
};

RunSummary Summarise(const SimResult& r) {
  RunSummary s;
  for (const StageMetrics& m : r.stages) {
    s.peak_memory = std::max(s.peak_memory, m.peak_memory_bytes);
    s.over_memory = s.over_memory || m.over_memory;
    s.live_versions = std::max(s.live_versions, m.versions.live_versions_max);
    s.version_gap = std::max(s.version_gap, m.versions.gap_max);
    s.gradient_delay = std::max(s.gradient_delay, m.versions.delay_max);
  }
  return s;
}

// The memory cell: a trailing "!" when over memory, a space otherwise, so numbers stay aligned.
Cell MemoryCell(int64_t bytes, bool over) {
  return {FormatBytes(bytes) + (over ? "!" : " "), over ? kRed : nullptr};
}

std::string ScenarioLine(const ReportContext& context) {
  std::string line = "scenario: ";
  line += context.scenario_name.empty() ? "(unnamed)" : context.scenario_name;
  if (!context.scenario_source.empty()) line += " (" + context.scenario_source + ")";
  return line + '\n';
}

std::string PerStageSection(const MethodRun& run, bool colour) {
  const SimResult& r = run.result;
  TextTable t;
  t.AddColumn("dev", Align::kRight);
  t.AddColumn("busy", Align::kRight);
  t.AddColumn("span", Align::kRight);
  t.AddColumn("util", Align::kRight);
  t.AddColumn("peak mem", Align::kRight);
  t.AddColumn("weights", Align::kRight);
  t.AddColumn("opt state", Align::kRight);
  t.AddColumn("grads", Align::kRight);
  t.AddColumn("acts", Align::kRight);
  t.AddColumn("extra", Align::kRight);
  t.AddColumn("act mb", Align::kRight);
  t.AddColumn("versions", Align::kRight);
  t.AddColumn("gap max/mean", Align::kRight);
  t.AddColumn("delay max/mean", Align::kRight);
  t.AddColumn("horizon F/B", Align::kRight);
  t.AddColumn("crossing", Align::kRight);
  t.AddColumn("steps", Align::kRight);
  for (const StageMetrics& m : r.stages) {
    const double util =
        r.makespan > 0 ? static_cast<double>(m.busy) / static_cast<double>(r.makespan) : 0.0;
    const MemoryBreakdown& b = m.peak_breakdown;
    t.AddRow(
        {{std::to_string(m.stage)},
         {FormatDuration(m.busy)},
         {FormatDuration(m.span())},
         {Percent(util)},
         MemoryCell(m.peak_memory_bytes, m.over_memory),
         {FormatBytes(b.weights)},
         {FormatBytes(b.optimizer_state)},
         {FormatBytes(b.gradients)},
         {FormatBytes(b.activations)},
         {FormatBytes(b.extra)},
         {fmt::format("{:.2f}", m.peak_activations_microbatches)},
         {std::to_string(m.versions.live_versions_max)},
         {fmt::format("{}/{:.2f}", m.versions.gap_max, m.versions.gap_mean)},
         {fmt::format("{}/{:.2f}", m.versions.delay_max, m.versions.delay_mean)},
         {fmt::format("{}/{}", m.versions.horizon_forward_max, m.versions.horizon_backward_max)},
         {Percent(m.versions.crossing_fraction)},
         {std::to_string(m.versions.steps)}});
  }
  return fmt::format("\nper stage: {}\n", MethodLabel(run)) + t.Render(colour);
}

// ---- JSON ----

Json ParamsJson(const std::map<std::string, std::string>& params) {
  Json j = Json::object();
  for (const auto& [k, v] : params) j[k] = v;
  return j;
}

Json StageJson(const StageMetrics& m) {
  Json s;
  s["stage"] = m.stage;
  s["busy_s"] = Seconds(m.busy);
  s["span_s"] = Seconds(m.span());
  s["first_start_s"] = Seconds(m.first_start);
  s["last_end_s"] = Seconds(m.last_end);
  s["peak_memory_bytes"] = m.peak_memory_bytes;
  s["memory_breakdown"] = {{"weights", m.peak_breakdown.weights},
                           {"optimizer_state", m.peak_breakdown.optimizer_state},
                           {"gradients", m.peak_breakdown.gradients},
                           {"activations", m.peak_breakdown.activations},
                           {"extra", m.peak_breakdown.extra}};
  s["peak_activations_microbatches"] = m.peak_activations_microbatches;
  s["live_weight_versions_max"] = m.versions.live_versions_max;
  s["version_gap_max"] = m.versions.gap_max;
  s["version_gap_mean"] = m.versions.gap_mean;
  s["gradient_delay_max"] = m.versions.delay_max;
  s["gradient_delay_mean"] = m.versions.delay_mean;
  s["prediction_horizon"] = {{"forward_max", m.versions.horizon_forward_max},
                             {"backward_max", m.versions.horizon_backward_max}};
  s["crossing_fraction"] = m.versions.crossing_fraction;
  s["steps"] = m.versions.steps;
  s["over_memory"] = m.over_memory;
  s["memory_capacity_bytes"] = m.memory_capacity_bytes;
  return s;
}

Json BubbleWorkJson(const BubbleFill& f) {
  Json devices = Json::array();
  for (const BubbleFillDevice& d : f.devices) {
    devices.push_back({{"work_ns", d.work},
                       {"hidden_ns", d.hidden},
                       {"exposed_ns", d.exposed},
                       {"items", d.items},
                       {"placed", d.placed}});
  }
  return {{"hidden_fraction", f.HiddenFraction()},
          {"extra_ns", f.extra},
          {"makespan_with_work_ns", f.makespan_with_work},
          {"devices", std::move(devices)}};
}

// Below the table when the scenario has bubble work: how much of it each method hides.
std::string BubbleWorkSection(const std::vector<MethodRun>& runs, bool colour) {
  TextTable t;
  t.AddColumn("method", Align::kLeft);
  for (const char* name : {"work", "hidden", "exposed", "makespan", "with work", "slower"})
    t.AddColumn(name, Align::kRight);
  bool any = false;
  for (const MethodRun& run : runs) {
    if (!run.bubble_fill) continue;
    any = true;
    const BubbleFill& f = *run.bubble_fill;
    TimeNs work = 0, exposed = 0;  // the device with the most
    for (const BubbleFillDevice& d : f.devices) {
      work = std::max(work, d.work);
      exposed = std::max(exposed, d.exposed);
    }
    const TimeNs m = run.result.makespan;
    t.AddRow({{MethodLabel(run)},
              {FormatDuration(work)},
              {Percent(f.HiddenFraction())},
              {FormatDuration(exposed)},
              {FormatDuration(m)},
              {FormatDuration(f.makespan_with_work)},
              {Percent(m > 0 ? static_cast<double>(f.extra) / static_cast<double>(m) : 0.0)}});
  }
  if (!any) return "";
  return "\nbubble work (PipeFisher's first fit; simulated only, the executor does not run it):\n" +
         t.Render(colour) +
         "work, exposed = the device with the most; hidden = share of all devices' work placed in\n"
         "bubbles; with work = makespan + per step the most exposed work of any device "
         "(docs/metrics.md).\n";
}

Json RunJson(const MethodRun& run) {
  const ir::Program& p = run.program;
  const SimResult& r = run.result;
  Json j;
  j["method"] = run.method;
  j["params"] = ParamsJson(run.params);
  j["devices"] = p.num_devices;
  j["virtual_stages"] = p.num_stages;
  j["microbatches"] = p.microbatches;
  j["minibatches"] = p.minibatches;
  j["microbatch_size"] = p.microbatch_size;
  j["makespan_s"] = Seconds(r.makespan);
  j["makespan_ns"] = r.makespan;
  j["samples"] = r.samples;
  j["throughput_samples_per_s"] = r.throughput_samples_per_s;
  j["steady_throughput_samples_per_s"] = r.steady_throughput_samples_per_s;
  j["bubble"] = {{"idle_fraction", r.bubble.idle_fraction},
                 {"overhead_vs_ideal", r.bubble.overhead_vs_ideal},
                 {"zb_rate", r.bubble.zb_rate}};
  if (!run.partition.empty()) j["partition"] = run.partition;
  Json stages = Json::array();
  for (const StageMetrics& m : r.stages) stages.push_back(StageJson(m));
  j["stages"] = std::move(stages);
  if (run.bubble_fill) j["bubble_work"] = BubbleWorkJson(*run.bubble_fill);
  return j;
}

// ---- CSV ----

// Shortest text that reads back as the same double; "" for NaN/inf (a missing value).
std::string CsvDouble(double v) { return std::isfinite(v) ? fmt::format("{}", v) : ""; }

const std::vector<std::string_view>& CsvHeader() {
  static const std::vector<std::string_view> kHeader = {
      "scenario",
      "method",
      "params",
      "devices",
      "virtual_stages",
      "microbatches",
      "minibatches",
      "microbatch_size",
      "makespan_s",
      "makespan_ns",
      "samples",
      "throughput_samples_per_s",
      "steady_throughput_samples_per_s",
      "bubble_idle_fraction",
      "bubble_overhead_vs_ideal",
      "bubble_zb_rate",
      "stage",
      "busy_s",
      "span_s",
      "peak_memory_bytes",
      "memory_weights_bytes",
      "memory_optimizer_state_bytes",
      "memory_gradients_bytes",
      "memory_activations_bytes",
      "memory_extra_bytes",
      "peak_activations_microbatches",
      "live_weight_versions_max",
      "version_gap_max",
      "version_gap_mean",
      "gradient_delay_max",
      "gradient_delay_mean",
      "prediction_horizon_forward_max",
      "prediction_horizon_backward_max",
      "crossing_fraction",
      "steps",
      "over_memory",
  };
  return kHeader;
}

void AppendCsvRow(std::string& out, const std::vector<std::string>& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += CsvField(fields[i]);
  }
  out += "\r\n";
}

}  // namespace

std::string MethodLabel(const MethodRun& run) {
  if (run.params.empty()) return run.method;
  std::string label = run.method + '(';
  bool first = true;
  for (const auto& [k, v] : run.params) {
    if (!first) label += ',';
    first = false;
    label += k + '=' + v;
  }
  return label + ')';
}

std::string FormatDuration(TimeNs ns) {
  static const std::vector<std::string_view> kUnits = {"ns", "µs", "ms", "s"};
  return ScaledUnits(static_cast<double>(ns), 1000.0, kUnits);
}

std::string FormatBytes(int64_t bytes) {
  static const std::vector<std::string_view> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  return ScaledUnits(static_cast<double>(bytes), 1024.0, kUnits);
}

std::string CsvField(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string quoted = "\"";
  for (char c : field) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

namespace {

// The distinct partitions of the runs, in order of first use; empty when fewer than two differ.
std::vector<std::vector<std::string>> Partitions(const std::vector<MethodRun>& runs) {
  std::vector<std::vector<std::string>> distinct;
  for (const MethodRun& run : runs) {
    if (run.partition.empty()) continue;
    if (std::find(distinct.begin(), distinct.end(), run.partition) == distinct.end()) {
      distinct.push_back(run.partition);
    }
  }
  if (distinct.size() < 2) distinct.clear();
  return distinct;
}

std::string PartitionLetter(const std::vector<std::vector<std::string>>& partitions,
                            const MethodRun& run) {
  for (size_t i = 0; i < partitions.size(); ++i) {
    if (partitions[i] == run.partition) return std::string(1, static_cast<char>('A' + i % 26));
  }
  return "-";
}

std::string PartitionLegend(const std::vector<std::vector<std::string>>& partitions) {
  std::string out =
      "part = how the model is cut (layers per device; E embedding, H head); runs on different\n"
      "partitions do not compare like with like:\n";
  for (size_t i = 0; i < partitions.size(); ++i) {
    out += fmt::format("  {}: ", static_cast<char>('A' + i % 26));
    for (size_t d = 0; d < partitions[i].size(); ++d) out += (d ? " | " : "") + partitions[i][d];
    out += '\n';
  }
  return out;
}

}  // namespace

std::string FormatTable(const ReportContext& context, const std::vector<MethodRun>& runs,
                        const TableOptions& options) {
  std::string out = ScenarioLine(context);
  if (runs.empty()) return out + "no results\n";
  const std::vector<std::vector<std::string>> partitions = Partitions(runs);
  // A devices column when the runs use different numbers (AvgPipe's pipelines are copies).
  bool devices_differ = false;
  for (const MethodRun& run : runs)
    devices_differ = devices_differ || run.program.num_devices != runs.front().program.num_devices;
  TextTable t;
  t.AddColumn("method", Align::kLeft);
  if (devices_differ) t.AddColumn("devices", Align::kRight);
  if (!partitions.empty()) t.AddColumn("part", Align::kLeft);
  t.AddColumn("makespan", Align::kRight);
  t.AddColumn("samples/s", Align::kRight);
  t.AddColumn("steady/s", Align::kRight);
  t.AddColumn("idle", Align::kRight);
  t.AddColumn("vs ideal", Align::kRight);
  t.AddColumn("zb", Align::kRight);
  t.AddColumn("peak mem", Align::kRight);
  t.AddColumn("versions", Align::kRight);
  t.AddColumn("gap", Align::kRight);
  t.AddColumn("delay", Align::kRight);
  bool any_over = false;
  for (const MethodRun& run : runs) {
    const SimResult& r = run.result;
    const RunSummary s = Summarise(r);
    any_over = any_over || s.over_memory;
    std::vector<Cell> row = {{MethodLabel(run)}};
    if (devices_differ) row.push_back({std::to_string(run.program.num_devices)});
    if (!partitions.empty()) row.push_back({PartitionLetter(partitions, run)});
    for (Cell c : std::vector<Cell>{{FormatDuration(r.makespan)},
                                    {FormatRate(r.throughput_samples_per_s)},
                                    {FormatRate(r.steady_throughput_samples_per_s)},
                                    {Percent(r.bubble.idle_fraction)},
                                    {Percent(r.bubble.overhead_vs_ideal)},
                                    {Percent(r.bubble.zb_rate)},
                                    MemoryCell(s.peak_memory, s.over_memory),
                                    {std::to_string(s.live_versions)},
                                    {std::to_string(s.version_gap)},
                                    {std::to_string(s.gradient_delay)}}) {
      row.push_back(std::move(c));
    }
    t.AddRow(std::move(row));
  }
  out += t.Render(options.colour);
  out +=
      "idle = 1 - busy / (devices x makespan); vs ideal = (makespan - max busy) / max busy;\n"
      "zb = (max span - max busy) / max span; peak mem, versions (live weight versions), gap\n"
      "(updates between F and B) and delay (gradient delay in updates) are maxima over devices.\n";
  if (any_over) out += "! = a device exceeds its memory\n";
  if (devices_differ) {
    out +=
        "devices = the devices a run uses: copies of the pipeline (AvgPipe's pipelines, data\n"
        "parallelism) add devices, so samples/s on more devices do not compare like with like\n";
  }
  if (!partitions.empty()) out += PartitionLegend(partitions);
  out += BubbleWorkSection(runs, options.colour);
  if (options.per_stage)
    for (const MethodRun& run : runs) out += PerStageSection(run, options.colour);
  return out;
}

std::string FormatJson(const ReportContext& context, const std::vector<MethodRun>& runs) {
  Json doc;
  doc["schema"] = kJsonSchemaName;
  doc["schema_version"] = kJsonSchemaVersion;
  doc["scenario"] = {{"name", context.scenario_name},
                     {"source", context.scenario_source},
                     {"device_memory_bytes", context.device_memory_bytes}};
  Json results = Json::array();
  for (const MethodRun& run : runs) results.push_back(RunJson(run));
  doc["results"] = std::move(results);
  return doc.dump(2) + '\n';
}

std::string FormatCsv(const ReportContext& context, const std::vector<MethodRun>& runs) {
  std::string out;
  const auto& header = CsvHeader();
  AppendCsvRow(out, std::vector<std::string>(header.begin(), header.end()));
  for (const MethodRun& run : runs) {
    const ir::Program& p = run.program;
    const SimResult& r = run.result;
    std::string params;
    for (const auto& [k, v] : run.params) {
      if (!params.empty()) params += ';';
      params += k + '=' + v;
    }
    const std::vector<std::string> method_fields = {
        context.scenario_name,
        run.method,
        params,
        std::to_string(p.num_devices),
        std::to_string(p.num_stages),
        std::to_string(p.microbatches),
        std::to_string(p.minibatches),
        std::to_string(p.microbatch_size),
        CsvDouble(Seconds(r.makespan)),
        std::to_string(r.makespan),
        std::to_string(r.samples),
        CsvDouble(r.throughput_samples_per_s),
        CsvDouble(r.steady_throughput_samples_per_s),
        CsvDouble(r.bubble.idle_fraction),
        CsvDouble(r.bubble.overhead_vs_ideal),
        CsvDouble(r.bubble.zb_rate),
    };
    if (r.stages.empty()) {
      std::vector<std::string> row = method_fields;
      row.resize(header.size());
      AppendCsvRow(out, row);
      continue;
    }
    for (const StageMetrics& m : r.stages) {
      std::vector<std::string> row = method_fields;
      const MemoryBreakdown& b = m.peak_breakdown;
      row.insert(row.end(), {
                                std::to_string(m.stage),
                                CsvDouble(Seconds(m.busy)),
                                CsvDouble(Seconds(m.span())),
                                std::to_string(m.peak_memory_bytes),
                                std::to_string(b.weights),
                                std::to_string(b.optimizer_state),
                                std::to_string(b.gradients),
                                std::to_string(b.activations),
                                std::to_string(b.extra),
                                CsvDouble(m.peak_activations_microbatches),
                                std::to_string(m.versions.live_versions_max),
                                std::to_string(m.versions.gap_max),
                                CsvDouble(m.versions.gap_mean),
                                std::to_string(m.versions.delay_max),
                                CsvDouble(m.versions.delay_mean),
                                std::to_string(m.versions.horizon_forward_max),
                                std::to_string(m.versions.horizon_backward_max),
                                CsvDouble(m.versions.crossing_fraction),
                                std::to_string(m.versions.steps),
                                m.over_memory ? "true" : "false",
                            });
      AppendCsvRow(out, row);
    }
  }
  return out;
}

}  // namespace pipecast::sim
