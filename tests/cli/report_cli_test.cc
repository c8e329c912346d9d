// `pipecast report` as a user meets it: the page from sim, run and plan JSON, byte-identical on
// every run; Markdown with its pictures; and bad input (none, empty, not JSON, an old schema,
// runs and simulations of different scenarios) met with one message and a non-zero exit.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <fstream>
#include <string>

#include "cli/cli_test_util.h"

namespace {

using pipecast::testing::Output;
using pipecast::testing::Pipecast;
using pipecast::testing::Slurp;
using pipecast::testing::TempDir;

const std::string kRun = "tests/cli/data/run-toy-report.json";
const std::string kPlan = "tests/cli/data/plan-toy-report.json";

// The simulation of the report tests' scenario, written into `dir`.
std::string SimJson(const std::string& dir) {
  const std::string path = dir + "/sim.json";
  const Output o = Pipecast("sim tests/cli/data/toy-report.yaml --format json -o " + path);
  EXPECT_EQ(o.status, 0) << o.text;
  return path;
}

void ExpectError(const std::string& args, int status, const std::string& message) {
  const Output o = Pipecast("report " + args);
  EXPECT_EQ(o.status, status) << args << "\n" << o.text;
  EXPECT_NE(o.text.find(message), std::string::npos) << args << "\n" << o.text;
  EXPECT_EQ(o.text.rfind("pipecast report: ", 0), 0u) << "one message: " << o.text;
}

TEST(ReportCli, HtmlFromSimRunAndPlanIsDeterministic) {
  const std::string dir = TempDir("report_html");
  const std::string sim = SimJson(dir);
  const std::string args = sim + " " + kRun + " " + kPlan;
  ASSERT_EQ(Pipecast("report " + args + " -o " + dir + "/a.html").status, 0);
  ASSERT_EQ(Pipecast("report " + args + " -o " + dir + "/b.html").status, 0);
  const std::string html = Slurp(dir + "/a.html");
  EXPECT_EQ(html, Slurp(dir + "/b.html"));
  for (const char* id :
       {"summary", "timelines", "bubbles", "memory", "staleness", "training", "pareto"}) {
    EXPECT_NE(html.find(std::string("<section id=\"") + id + "\">"), std::string::npos) << id;
  }
  EXPECT_NE(html.find("Recommended: zb-h2"), std::string::npos);
  // The device's capacity comes from the sim JSON pipecast sim wrote (scenario's device.memory).
  EXPECT_NE(html.find(">capacity 8.00 GiB</text>"), std::string::npos);
  // Standard output when no -o is given.
  EXPECT_EQ(Pipecast("report " + args).text, html);
}

TEST(ReportCli, TimelineWindowAndNoTimelines) {
  const std::string dir = TempDir("report_window");
  const std::string sim = SimJson(dir);
  const Output window = Pipecast("report " + sim + " --svg-window 1:1");
  ASSERT_EQ(window.status, 0) << window.text;
  EXPECT_NE(window.text.find("; minibatch 1 ("), std::string::npos);
  EXPECT_NE(window.text.find("window 1:1 (--svg-window)"), std::string::npos);
  const Output none = Pipecast("report " + sim + " --no-timelines");
  ASSERT_EQ(none.status, 0) << none.text;
  EXPECT_EQ(none.text.find("class=\"action\""), std::string::npos);
  ExpectError(sim + " --svg-window 5", 1, "--svg-window: expected FROM:TO");
}

TEST(ReportCli, MarkdownWritesItsPicturesNextToIt) {
  const std::string dir = TempDir("report_md");
  const std::string sim = SimJson(dir);
  const Output o = Pipecast("report " + sim + " " + kRun + " " + kPlan + " -o " + dir + "/r.md");
  ASSERT_EQ(o.status, 0) << o.text;
  const std::string md = Slurp(dir + "/r.md");
  EXPECT_EQ(md.rfind("# pipecast report: toy-report\n", 0), 0u);
  size_t links = 0;
  for (size_t p = md.find("](r-figures/"); p != std::string::npos;
       p = md.find("](r-figures/", p + 1))
    ++links;
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/r-figures")) {
    EXPECT_EQ(e.path().extension(), ".svg");
    ++files;
  }
  EXPECT_EQ(links, files);
  EXPECT_GT(files, 10u);
  EXPECT_TRUE(std::filesystem::exists(dir + "/r-figures/pareto.svg"));
  ExpectError(sim + " --format md", 1, "--format md writes its pictures next to the report");
}

TEST(ReportCli, BadInputGetsOneMessageAndANonZeroExit) {
  const std::string dir = TempDir("report_bad");
  ExpectError("", 2, "no input files; give the JSON of pipecast sim, run or plan");
  std::ofstream(dir + "/empty.json") << "";
  ExpectError(dir + "/empty.json", 1, dir + "/empty.json: the file is empty");
  ASSERT_EQ(Pipecast("sim tests/cli/data/toy-report.yaml -o " + dir + "/table.txt").status, 0);
  ExpectError(dir + "/table.txt", 1, dir + "/table.txt: not JSON (");
  std::ofstream(dir + "/old.json") << R"({"schema": "pipecast-run", "schema_version": 1})";
  ExpectError(dir + "/old.json", 1, "old.json: schema_version: 1 is older than this pipecast");
  ExpectError("/nonexistent/sim.json", 1, "/nonexistent/sim.json");
  // The default scenario's simulation with the toy scenario's runs.
  ASSERT_EQ(Pipecast("sim --methods 1f1b --format json -o " + dir + "/default.json").status, 0);
  ExpectError(dir + "/default.json " + kRun, 1,
              kRun + ": job.name: 'toy-report' is another scenario than " + dir +
                  "/default.json's scenario.name 'default'");
}

TEST(ReportCli, HelpHasExamples) {
  const Output o = Pipecast("report --help");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.text.find("Examples:"), std::string::npos);
  EXPECT_NE(o.text.find("--svg-window"), std::string::npos);
  EXPECT_NE(Pipecast("--help").text.find("pipecast report"), std::string::npos);
}

}  // namespace

namespace {

// A plan whose objective is the time to a loss (the PACI scenario with its convergence profile)
// gets the ranking by that time, each speed-up and its two factors as the plan's JSON gives them.
TEST(ReportCli, TimeToLossPlanRanksByTimeToLoss) {
  const std::string dir = TempDir("report_ttl");
  const Output plan = Pipecast("plan scenarios/paci-gpt2-medium.yaml --format json -o " + dir +
                               "/plan.json");
  ASSERT_EQ(plan.status, 0) << plan.text;
  const auto j = nlohmann::json::parse(Slurp(dir + "/plan.json"));
  ASSERT_EQ(j["objective"], "time_to_loss");
  const Output o = Pipecast("report " + dir + "/plan.json -o " + dir + "/r.html");
  ASSERT_EQ(o.status, 0) << o.text;
  const std::string html = Slurp(dir + "/r.html");
  EXPECT_NE(html.find("time to loss"), std::string::npos);
  int checked = 0;
  for (const auto& c : j["configs"]) {
    if (!c.contains("time_to_loss") || c["label"] != "paci(accumulation=4)") continue;
    const auto& t = c["time_to_loss"];
    for (const char* key : {"speedup_vs_baseline", "throughput_factor", "convergence_factor"}) {
      const std::string shown = fmt::format("{:.2f}x", t[key].get<double>());
      EXPECT_NE(html.find(shown), std::string::npos) << key << " " << shown;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
