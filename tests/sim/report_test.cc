// Tests of the comparison table, the JSON report and the CSV report (sim/report.h), on
// hand-made SimResults (no engine needed).
#include "sim/report.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace pipecast::sim {
namespace {

using ir::Action;
using ir::ActionKind;

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMiB = int64_t{1} << 20;

ir::Program TwoStageProgram(const std::string& method) {
  ir::Program p;
  p.method = method;
  p.num_devices = 2;
  p.num_stages = 2;
  p.placement = {0, 1};
  p.microbatches = 2;
  p.minibatches = 1;
  p.microbatch_size = 4;
  p.devices = {{{ActionKind::kForward, 0, 0, {}}, {ActionKind::kForward, 0, 1, {}}},
               {{ActionKind::kForward, 1, 0, {}}, {ActionKind::kForward, 1, 1, {}}}};
  return p;
}

StageMetrics Stage(int32_t d, TimeNs busy, int64_t peak, bool over) {
  StageMetrics m;
  m.stage = d;
  m.busy = busy;
  m.first_start = 1000 * d;
  m.last_end = 20'000 + 1000 * d;
  m.peak_memory_bytes = peak;
  m.peak_breakdown = {peak / 2, peak / 4, peak / 8, peak / 8, 0};
  m.peak_activations_microbatches = 1.5;
  m.versions.live_versions_max = 1 + d;
  m.versions.gap_max = d;
  m.versions.gap_mean = 0.5 * d;
  m.versions.delay_max = 2 * d;
  m.versions.delay_mean = 0.25;
  m.versions.horizon_forward_max = d;
  m.versions.horizon_backward_max = 0;
  m.versions.crossing_fraction = 0.125;
  m.versions.steps = 1;
  m.over_memory = over;
  return m;
}

// Two runs: 1f1b (no params, fits in memory) and paci(a=4) with one stage over memory.
std::vector<MethodRun> Runs() {
  MethodRun a;
  a.method = "1f1b";
  a.program = TwoStageProgram("1f1b");
  a.result.makespan = 22'000;
  a.result.samples = 8;
  a.result.throughput_samples_per_s = 8 / 22e-6;  // 363636.36...
  a.result.steady_throughput_samples_per_s = 400'000;
  a.result.bubble = {0.25, 1.0 / 3.0, 0.2};
  a.result.stages = {Stage(0, 14'000, 3 * kGiB / 2, false), Stage(1, 15'000, 640 * kMiB, false)};

  MethodRun b;
  b.method = "paci";
  b.params = {{"a", "4"}};
  b.program = TwoStageProgram("paci");
  b.program.minibatches = 3;
  b.result.makespan = 2'500'000'000;  // 2.5 s
  b.result.samples = 24;
  b.result.throughput_samples_per_s = 9.6;
  b.result.steady_throughput_samples_per_s = 12.5;
  b.result.bubble = {0.5, 0.75, 0.1};
  b.result.stages = {Stage(0, 1'000'000'000, 2 * kGiB, false),
                     Stage(1, 1'200'000'000, 3 * kGiB, true)};
  return {a, b};
}

ReportContext Context() { return {"gpt, \"small\"", "scenarios/gpt.yaml"}; }

// ---- Units ----

TEST(ReportUnitsTest, DurationsUseHumanUnits) {
  EXPECT_EQ(FormatDuration(0), "0 ns");
  EXPECT_EQ(FormatDuration(850), "850 ns");
  EXPECT_EQ(FormatDuration(999), "999 ns");
  EXPECT_EQ(FormatDuration(1'000), "1.00 µs");
  EXPECT_EQ(FormatDuration(12'500), "12.5 µs");
  EXPECT_EQ(FormatDuration(22'000), "22.0 µs");
  EXPECT_EQ(FormatDuration(999'999), "1.00 ms");
  EXPECT_EQ(FormatDuration(2'200'000), "2.20 ms");
  EXPECT_EQ(FormatDuration(1'500'000'000), "1.50 s");
  EXPECT_EQ(FormatDuration(3'600'000'000'000), "3600 s");
}

TEST(ReportUnitsTest, BytesUseBinaryUnits) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(640 * kMiB), "640 MiB");
  EXPECT_EQ(FormatBytes(9 * kGiB / 4), "2.25 GiB");
}

TEST(ReportUnitsTest, MethodLabelListsParams) {
  MethodRun r;
  r.method = "paci";
  EXPECT_EQ(MethodLabel(r), "paci");
  r.params = {{"b", "x"}, {"a", "4"}};
  EXPECT_EQ(MethodLabel(r), "paci(a=4,b=x)");
}

TEST(ReportUnitsTest, CsvFieldQuotesOnlyWhenNeeded) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField(""), "");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField("cr\r"), "\"cr\r\"");
}

// ---- Table ----

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t nl = s.find('\n', pos);
    lines.push_back(s.substr(pos, nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return lines;
}

// Columns in terminal cells (µ is one cell).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

TEST(ReportTableTest, HasOneRowPerMethodWithFormattedNumbers) {
  const std::string table = FormatTable(Context(), Runs());
  const std::vector<std::string> lines = Lines(table);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines[0], "scenario: gpt, \"small\" (scenarios/gpt.yaml)");
  const std::string& header = lines[1];
  for (const char* col : {"method", "makespan", "samples/s", "steady/s", "idle", "vs ideal", "zb",
                          "peak mem", "versions", "gap", "delay"}) {
    EXPECT_NE(header.find(col), std::string::npos) << col;
  }
  const std::string& row_a = lines[2];
  const std::string& row_b = lines[3];
  EXPECT_EQ(row_a.rfind("1f1b ", 0), 0u) << row_a;
  EXPECT_EQ(row_b.rfind("paci(a=4) ", 0), 0u) << row_b;
  // 1f1b: 22 µs, 364k samples/s, steady 400k, bubbles 25.0 / 33.3 / 20.0 %, 1.50 GiB, 2 versions,
  // gap 1, delay 2.
  for (const char* cell : {"22.0 µs", "364k", "400k", "25.0%", "33.3%", "20.0%", "1.50 GiB"})
    EXPECT_NE(row_a.find(cell), std::string::npos) << cell << " in " << row_a;
  EXPECT_EQ(row_a.find('!'), std::string::npos);
  // paci: 2.5 s, 9.60 and 12.5 samples/s, 50.0 / 75.0 / 10.0 %, max memory 3 GiB over memory.
  for (const char* cell : {"2.50 s", "9.60", "12.5", "50.0%", "75.0%", "10.0%", "3.00 GiB!"})
    EXPECT_NE(row_b.find(cell), std::string::npos) << cell << " in " << row_b;
  EXPECT_NE(table.find("! = a device exceeds its memory"), std::string::npos);
  EXPECT_EQ(table.find("\x1b["), std::string::npos) << "no colour unless asked";
  EXPECT_EQ(table.find("per stage"), std::string::npos);
}

TEST(ReportTableTest, ColumnsAreAligned) {
  const std::vector<std::string> lines = Lines(FormatTable(Context(), Runs()));
  // Right-aligned columns end at the same place on every row: the last column ("delay") ends the
  // line, so header and rows have the same width.
  EXPECT_EQ(Width(lines[1]), Width(lines[2]));
  EXPECT_EQ(Width(lines[1]), Width(lines[3]));
  // The makespan column ends at the same offset in every row.
  const size_t end_header = lines[1].find("makespan") + std::string("makespan").size();
  const size_t end_a = lines[2].find("22.0 µs") + std::string("22.0 µs").size();
  const size_t end_b = lines[3].find("2.50 s") + std::string("2.50 s").size();
  EXPECT_EQ(Width(lines[1].substr(0, end_header)), Width(lines[2].substr(0, end_a)));
  EXPECT_EQ(Width(lines[1].substr(0, end_header)), Width(lines[3].substr(0, end_b)));
}

TEST(ReportTableTest, PerStageSectionAndColourOnlyWhenAsked) {
  TableOptions options;
  options.per_stage = true;
  options.colour = true;
  const std::string table = FormatTable(Context(), Runs(), options);
  EXPECT_NE(table.find("per stage: 1f1b"), std::string::npos);
  EXPECT_NE(table.find("per stage: paci(a=4)"), std::string::npos);
  EXPECT_NE(table.find("640 MiB"), std::string::npos);     // stage 1 of 1f1b
  EXPECT_NE(table.find("1/0.50"), std::string::npos);      // version gap max/mean of a stage 1
  EXPECT_NE(table.find("\x1b[1m"), std::string::npos);     // bold headers
  EXPECT_NE(table.find("\x1b[31;1m"), std::string::npos);  // red over-memory marker
}

// Runs on different partitions of the model are marked, with a legend of every partition; runs
// on one partition (or explicit costs, without one) get no marker.
TEST(ReportTableTest, MarksRunsOnDifferentPartitions) {
  std::vector<MethodRun> runs = Runs();
  EXPECT_EQ(FormatTable(Context(), runs).find("part"), std::string::npos);
  runs[0].partition = {"E+0-2", "3-5+H"};
  runs[1].partition = runs[0].partition;
  EXPECT_EQ(FormatTable(Context(), runs).find("part"), std::string::npos);
  runs[1].partition = {"E+0,4", "1-3,H"};
  const std::vector<std::string> lines = Lines(FormatTable(Context(), runs));
  EXPECT_EQ(lines[1].rfind("method     part  makespan", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("1f1b       A     ", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3].rfind("paci(a=4)  B     ", 0), 0u) << lines[3];
  const std::string table = FormatTable(Context(), runs);
  EXPECT_NE(table.find("  A: E+0-2 | 3-5+H\n  B: E+0,4 | 1-3,H\n"), std::string::npos) << table;
  const auto j = nlohmann::json::parse(FormatJson(Context(), runs));
  EXPECT_EQ(j["results"][1]["partition"], (std::vector<std::string>{"E+0,4", "1-3,H"}));
}

TEST(ReportTableTest, EmptyRunList) {
  EXPECT_EQ(FormatTable({"s", ""}, {}), "scenario: s\nno results\n");
}

// ---- JSON ----

TEST(ReportJsonTest, ParsesBackWithTheDocumentedSchema) {
  const std::string text = FormatJson(Context(), Runs());
  const nlohmann::json doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc["schema"], "pipecast-sim");
  EXPECT_EQ(doc["schema_version"], 1);
  EXPECT_EQ(doc["scenario"]["name"], "gpt, \"small\"");
  EXPECT_EQ(doc["scenario"]["source"], "scenarios/gpt.yaml");
  EXPECT_EQ(doc["scenario"]["device_memory_bytes"], 0);  // not given: unlimited
  ASSERT_EQ(doc["results"].size(), 2u);

  const nlohmann::json& a = doc["results"][0];
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  const std::set<std::string> expected_keys = {"method",
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
                                               "bubble",
                                               "stages"};
  EXPECT_EQ(keys, expected_keys);
  EXPECT_EQ(a["method"], "1f1b");
  EXPECT_TRUE(a["params"].is_object());
  EXPECT_TRUE(a["params"].empty());
  EXPECT_EQ(a["devices"], 2);
  EXPECT_EQ(a["virtual_stages"], 2);
  EXPECT_EQ(a["microbatches"], 2);
  EXPECT_EQ(a["minibatches"], 1);
  EXPECT_EQ(a["microbatch_size"], 4);
  EXPECT_TRUE(a["makespan_s"].is_number_float());
  EXPECT_DOUBLE_EQ(a["makespan_s"].get<double>(), 2.2e-5);
  EXPECT_EQ(a["makespan_ns"], 22'000);
  EXPECT_EQ(a["samples"], 8);
  EXPECT_DOUBLE_EQ(a["throughput_samples_per_s"].get<double>(), 8 / 22e-6);
  EXPECT_DOUBLE_EQ(a["steady_throughput_samples_per_s"].get<double>(), 400'000);
  EXPECT_DOUBLE_EQ(a["bubble"]["idle_fraction"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(a["bubble"]["overhead_vs_ideal"].get<double>(), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(a["bubble"]["zb_rate"].get<double>(), 0.2);

  ASSERT_EQ(a["stages"].size(), 2u);
  const nlohmann::json& s1 = a["stages"][1];
  std::set<std::string> stage_keys;
  for (const auto& [k, v] : s1.items()) stage_keys.insert(k);
  for (const char* key :
       {"stage", "busy_s", "span_s", "peak_memory_bytes", "memory_breakdown",
        "peak_activations_microbatches", "live_weight_versions_max", "version_gap_max",
        "version_gap_mean", "gradient_delay_max", "gradient_delay_mean", "prediction_horizon",
        "crossing_fraction", "steps", "over_memory"}) {
    EXPECT_TRUE(stage_keys.count(key)) << key;
  }
  EXPECT_EQ(s1["stage"], 1);
  EXPECT_DOUBLE_EQ(s1["busy_s"].get<double>(), 1.5e-5);
  EXPECT_DOUBLE_EQ(s1["span_s"].get<double>(), 2e-5);
  EXPECT_EQ(s1["peak_memory_bytes"], 640 * kMiB);
  EXPECT_EQ(s1["memory_breakdown"]["weights"], 320 * kMiB);
  EXPECT_EQ(s1["memory_breakdown"]["optimizer_state"], 160 * kMiB);
  EXPECT_EQ(s1["memory_breakdown"]["gradients"], 80 * kMiB);
  EXPECT_EQ(s1["memory_breakdown"]["activations"], 80 * kMiB);
  EXPECT_EQ(s1["memory_breakdown"]["extra"], 0);
  EXPECT_DOUBLE_EQ(s1["peak_activations_microbatches"].get<double>(), 1.5);
  EXPECT_EQ(s1["live_weight_versions_max"], 2);
  EXPECT_EQ(s1["version_gap_max"], 1);
  EXPECT_DOUBLE_EQ(s1["version_gap_mean"].get<double>(), 0.5);
  EXPECT_EQ(s1["gradient_delay_max"], 2);
  EXPECT_DOUBLE_EQ(s1["gradient_delay_mean"].get<double>(), 0.25);
  EXPECT_EQ(s1["prediction_horizon"]["forward_max"], 1);
  EXPECT_EQ(s1["prediction_horizon"]["backward_max"], 0);
  EXPECT_DOUBLE_EQ(s1["crossing_fraction"].get<double>(), 0.125);
  EXPECT_EQ(s1["steps"], 1);
  EXPECT_EQ(s1["over_memory"], false);

  const nlohmann::json& b = doc["results"][1];
  EXPECT_EQ(b["method"], "paci");
  EXPECT_EQ(b["params"]["a"], "4");
  EXPECT_EQ(b["minibatches"], 3);
  EXPECT_DOUBLE_EQ(b["makespan_s"].get<double>(), 2.5);
  EXPECT_EQ(b["stages"][1]["over_memory"], true);
}

TEST(ReportJsonTest, EmptyRunListIsStillADocument) {
  const nlohmann::json doc = nlohmann::json::parse(FormatJson({}, {}));
  EXPECT_EQ(doc["schema_version"], kJsonSchemaVersion);
  EXPECT_TRUE(doc["results"].is_array());
  EXPECT_TRUE(doc["results"].empty());
}

// ---- CSV ----

// A strict RFC 4180 reader: CRLF record ends, quoted fields with doubled quotes.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '"') {
      ++i;
      while (true) {
        EXPECT_LT(i, text.size()) << "unterminated quote";
        if (i >= text.size()) return rows;
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
    }
    while (i < text.size() && text[i] != ',' && text[i] != '\r') {
      EXPECT_NE(text[i], '"') << "quote inside an unquoted field";
      EXPECT_NE(text[i], '\n') << "bare LF";
      field += text[i++];
    }
    if (i < text.size() && text[i] == ',') {
      row.push_back(field);
      field.clear();
      ++i;
    } else if (i < text.size()) {
      EXPECT_EQ(text.substr(i, 2), "\r\n");
      row.push_back(field);
      field.clear();
      rows.push_back(row);
      row.clear();
      i += 2;
    }
  }
  EXPECT_TRUE(row.empty() && field.empty()) << "last record without CRLF";
  return rows;
}

TEST(ReportCsvTest, OneRowPerMethodAndStageWithQuoting) {
  const std::string text = FormatCsv(Context(), Runs());
  const auto rows = ParseCsv(text);
  ASSERT_EQ(rows.size(), 1u + 2u + 2u);  // header, 2 stages x 2 methods
  const std::vector<std::string>& header = rows[0];
  ASSERT_EQ(header.size(), 36u);
  for (const auto& row : rows) EXPECT_EQ(row.size(), header.size());
  auto col = [&](const std::string& name) {
    for (size_t c = 0; c < header.size(); ++c)
      if (header[c] == name) return c;
    ADD_FAILURE() << "no column " << name;
    return size_t{0};
  };
  EXPECT_EQ(header[0], "scenario");
  EXPECT_EQ(header[1], "method");
  // The scenario name has a comma and quotes: quoted in the file, intact after parsing.
  EXPECT_NE(text.find("\"gpt, \"\"small\"\"\""), std::string::npos);
  EXPECT_EQ(rows[1][col("scenario")], "gpt, \"small\"");
  EXPECT_EQ(rows[1][col("method")], "1f1b");
  EXPECT_EQ(rows[1][col("params")], "");
  EXPECT_EQ(rows[1][col("stage")], "0");
  EXPECT_EQ(rows[2][col("stage")], "1");
  EXPECT_EQ(rows[2][col("makespan_s")], rows[1][col("makespan_s")]);  // repeated per stage
  EXPECT_DOUBLE_EQ(std::stod(rows[1][col("makespan_s")]), 2.2e-5);
  EXPECT_EQ(rows[1][col("makespan_ns")], "22000");
  EXPECT_EQ(rows[2][col("peak_memory_bytes")], std::to_string(640 * kMiB));
  EXPECT_EQ(rows[2][col("memory_weights_bytes")], std::to_string(320 * kMiB));
  EXPECT_EQ(rows[3][col("method")], "paci");
  EXPECT_EQ(rows[3][col("params")], "a=4");
  EXPECT_EQ(rows[3][col("minibatches")], "3");
  EXPECT_EQ(rows[3][col("over_memory")], "false");
  EXPECT_EQ(rows[4][col("over_memory")], "true");
  EXPECT_DOUBLE_EQ(std::stod(rows[4][col("bubble_overhead_vs_ideal")]), 0.75);
}

TEST(ReportCsvTest, RunWithoutStagesKeepsOneRow) {
  std::vector<MethodRun> runs = Runs();
  runs[0].result.stages.clear();
  runs[0].params = {{"note", "a,b"}, {"x", "1"}};
  const auto rows = ParseCsv(FormatCsv(Context(), runs));
  ASSERT_EQ(rows.size(), 1u + 1u + 2u);
  EXPECT_EQ(rows[1][2], "note=a,b;x=1");
  EXPECT_EQ(rows[1][16], "");  // stage column empty
  EXPECT_EQ(rows[1].size(), 36u);
}

}  // namespace
}  // namespace pipecast::sim
