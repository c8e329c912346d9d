// Tests of the report page (cli/report_sections.h, cli/report_page.h): every section present with
// the fixture's numbers, chart coordinates computed by hand, the recommendation's trade-off
// between speed and measured accuracy, self-contained HTML, and Markdown with its SVG files.
#include "cli/report_page.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/report_inputs.h"
#include "cli/report_model.h"
#include "cli/report_sections.h"
#include "cli/report_test_util.h"
#include "cli/report_timelines.h"
#include "sim/well_formed.h"

namespace pipecast::cli::report {
namespace {

using sim::testing_xml::CheckWellFormed;
using sim::testing_xml::Count;
using sim::testing_xml::Has;
using testing_report::ReadData;
using testing_report::ToySimJson;

Inputs Read(const std::vector<std::pair<std::string, std::string>>& files) {
  Inputs in;
  for (const auto& [name, text] : files) {
    const Status s = AddInput(name, text, in);
    EXPECT_TRUE(s.ok()) << s.message();
  }
  EXPECT_TRUE(CheckConsistent(in).ok()) << CheckConsistent(in).message();
  return in;
}

Inputs AllThree() {
  return Read({{"sim.json", ToySimJson()},
               {"run.json", ReadData("run-toy-report.json")},
               {"plan.json", ReadData("plan-toy-report.json")}});
}

Page MakePage(const Inputs& in, double tolerance = 0.01) {
  TimelineOptions t;
  t.svg.width = 1100;
  t.memory_budget = int64_t{1} << 30;
  PageOptions o;
  o.accuracy_tolerance = tolerance;
  return BuildPage(BuildModel(in), DrawTimelines(in, t), o);
}

const Section& Find(const Page& page, const std::string& id) {
  for (const Section& s : page.sections)
    if (s.id == id) return s;
  ADD_FAILURE() << "no section " << id;
  return page.sections.front();
}

TEST(ReportPage, EverySectionWithTheFixturesNumbers) {
  const Inputs in = AllThree();
  const Page page = MakePage(in);
  const std::string html = RenderHtml(page);
  for (const char* id :
       {"summary", "timelines", "bubbles", "memory", "staleness", "training", "pareto"}) {
    EXPECT_TRUE(Has(html, std::string("<section id=\"") + id + "\">")) << id;
  }
  // The plan's best, with why.
  EXPECT_EQ(page.headline,
            "Recommended: zb-h2 (4 stages, 8 microbatches of 1, recompute off, partition "
            "balanced), 2.00 ms per sample");
  EXPECT_TRUE(Has(html,
                  "evaluated 5 configurations, 4 of them feasible under a memory cap of "
                  "8.00 GiB per device"));
  EXPECT_FALSE(Has(html, "The fastest synchronous configuration"));  // the best is synchronous
  // 1f1b's two seeds: 80% and 82%, mean 81.00%, sample sd 1.41; loss 0.50 and 0.46.
  EXPECT_TRUE(Has(html, "<td class=\"num\">81.00% ± 1.41</td>"));
  EXPECT_TRUE(Has(html, "<td class=\"num\">0.4800 ± 0.0283</td>"));
  // Measured samples/s of 1f1b: 200 minibatches x 8 samples over 4.0 s and 4.4 s: 400, 364.
  EXPECT_TRUE(Has(html, "<td class=\"num\">382</td>"));
  // One timeline per simulated method, each re-simulated to the JSON's makespan.
  EXPECT_EQ(Find(page, "timelines").figures.size(), 4u);
  EXPECT_EQ(Count(html, " \u2014 makespan "), 4u);
  EXPECT_TRUE(Has(html, "1f1b \u2014 makespan 66.2 ms"));
  // Memory: one chart per method; staleness: the two stale methods only.
  EXPECT_EQ(Find(page, "memory").figures.size(), 4u);
  EXPECT_EQ(Find(page, "staleness").figures.size(), 3u);  // pipedream, pipeoptim, prediction error
  EXPECT_TRUE(Has(html, "No staleness on any device (all zero, not drawn): gpipe, 1f1b."));
  for (const Section& s : page.sections)
    for (const Figure& f : s.figures) EXPECT_EQ(CheckWellFormed(f.svg), "") << f.name;
}

TEST(ReportPage, ParetoPointsWhereTheyBelong) {
  const Page page = MakePage(AllThree());
  const Section& pareto = Find(page, "pareto");
  ASSERT_EQ(pareto.figures.size(), 1u);
  const std::string& svg = pareto.figures[0].svg;
  // x: 0 .. 5 ms over 1000 px from x = 76; y: 0 .. 10 GiB over 320 px up from y = 364.
  // The best, zb-h2 at 2 ms and 6 GiB: (476, 172), ringed and labelled.
  EXPECT_TRUE(Has(svg, R"(<circle class="point emphasised" cx="476.00" cy="172.00")")) << svg;
  EXPECT_TRUE(Has(svg, ">best: zb-h2</text>"));
  // pipedream-2bw (2.5 ms, 4 GiB, delay 1) and 1f1b with recompute (4 ms, 2 GiB) on the front.
  EXPECT_TRUE(Has(svg, R"(points="476.00,172.00 576.00,236.00 876.00,300.00")")) << svg;
  // The infeasible pipedream (2.2 ms, 9 GiB) in grey, and the 8 GiB cap at y = 108.
  EXPECT_TRUE(Has(svg, R"(cx="516.00" cy="76.00" r="3.5" fill="#888888")")) << svg;
  EXPECT_TRUE(Has(svg, R"(y1="108.00")"));
  EXPECT_TRUE(Has(svg, ">gradient delay 1</text>"));
  EXPECT_FALSE(Has(svg, ">gradient delay 4 or more</text>"));  // no such point
  EXPECT_EQ(pareto.tables.at(0).rows.size(), 3u);
  EXPECT_TRUE(pareto.tables[0].marked[0]);
}

// A simulation written by hand: one method on two devices of 8 GiB.
std::string HandSim() {
  auto stage = [](int d, int64_t acts) {
    const int64_t gib = int64_t{1} << 30;
    return nlohmann::json{{"stage", d},
                          {"busy_s", 1.0},
                          {"peak_memory_bytes", 4 * gib + acts},
                          {"memory_breakdown",
                           {{"weights", gib},
                            {"optimizer_state", 2 * gib},
                            {"gradients", gib},
                            {"activations", acts},
                            {"extra", 0}}},
                          {"live_weight_versions_max", 1},
                          {"version_gap_max", 0},
                          {"version_gap_mean", 0.0},
                          {"gradient_delay_max", 0},
                          {"gradient_delay_mean", 0.0},
                          {"prediction_horizon", {{"forward_max", 0}, {"backward_max", 0}}},
                          {"crossing_fraction", 0.0},
                          {"over_memory", false}};
  };
  nlohmann::json doc = {
      {"schema", "pipecast-sim"},
      {"schema_version", 1},
      {"scenario", {{"name", "hand"}, {"source", ""}, {"device_memory_bytes", int64_t{8} << 30}}},
      {"results",
       {{{"method", "1f1b"},
         {"params", nlohmann::json::object()},
         {"devices", 2},
         {"virtual_stages", 2},
         {"microbatches", 4},
         {"minibatches", 1},
         {"microbatch_size", 1},
         {"makespan_s", 0.01},
         {"makespan_ns", 10000000},
         {"samples", 4},
         {"throughput_samples_per_s", 400.0},
         {"steady_throughput_samples_per_s", 400.0},
         {"bubble", {{"idle_fraction", 0.2}, {"overhead_vs_ideal", 0.25}, {"zb_rate", 0.2}}},
         {"stages", {stage(0, int64_t{3} << 30), stage(1, int64_t{1} << 30)}}}}}};
  return doc.dump();
}

TEST(ReportPage, MemoryBarsStackAgainstTheCapacity) {
  const Inputs in = Read({{"hand.json", HandSim()}});
  const Page page = BuildPage(BuildModel(in), {}, {});
  const Section& memory = Find(page, "memory");
  ASSERT_EQ(memory.figures.size(), 1u);
  const std::string& svg = memory.figures[0].svg;
  // 0 .. 8 GiB over 200 px (25 px per GiB) up from y = 244; two 230 px bands from x = 76, each
  // bar 184 px wide from 23 px in. Device 0: weights 1, optimizer 2, gradients 1, activations 3.
  EXPECT_TRUE(Has(svg, R"(x="99.00" y="219.00" width="184.00" height="25.00" fill="#0072B2")"));
  EXPECT_TRUE(Has(svg, R"(x="99.00" y="169.00" width="184.00" height="50.00" fill="#E69F00")"));
  EXPECT_TRUE(Has(svg, R"(x="99.00" y="144.00" width="184.00" height="25.00" fill="#009E73")"));
  EXPECT_TRUE(Has(svg, R"(x="99.00" y="69.00" width="184.00" height="75.00" fill="#56B4E9")"));
  EXPECT_TRUE(Has(svg, R"(x="329.00" y="119.00" width="184.00" height="25.00" fill="#56B4E9")"));
  EXPECT_TRUE(Has(svg, R"(<line class="reference" x1="76.00" y1="44.00")"));  // 8 GiB
  EXPECT_TRUE(Has(svg, ">memory (GiB)</text>"));
  EXPECT_TRUE(Has(svg, ">capacity 8.00 GiB</text>"));
  // The bubbles: idle 20%, overhead 25%, zb 20% on 0 .. 25%.
  const std::string& bubbles = Find(page, "bubbles").figures.at(0).svg;
  EXPECT_TRUE(Has(bubbles, "<title>1f1b, overhead vs ideal: 25</title>"));
  // Without timelines, runs or a plan those sections say what to add.
  EXPECT_TRUE(Find(page, "training").paragraphs.at(0).rfind("No run among the inputs", 0) == 0);
  EXPECT_TRUE(Find(page, "pareto").paragraphs.at(0).rfind("No plan among the inputs", 0) == 0);
}

// Devices with capacities of their own (pipecast sim's stages[].memory_capacity_bytes): the
// page lists them instead of drawing one line, and says which device is over its own.
TEST(ReportPage, DevicesOfDifferentCapacities) {
  nlohmann::json doc = nlohmann::json::parse(HandSim());
  nlohmann::json& stages = doc["results"][0]["stages"];
  stages[0]["memory_capacity_bytes"] = int64_t{16} << 30;  // device 0 peaks at 7 GiB
  stages[1]["memory_capacity_bytes"] = int64_t{4} << 30;   // device 1 at 5 GiB
  stages[1]["over_memory"] = true;
  const Inputs in = Read({{"hand.json", doc.dump()}});
  const Page page = BuildPage(BuildModel(in), {}, {});
  const Section& memory = Find(page, "memory");
  ASSERT_EQ(memory.paragraphs.size(), 1u);
  EXPECT_TRUE(Has(memory.paragraphs[0],
                  "of their own (dev 0 16.0 GiB, dev 1 4.00 GiB), so no capacity line is drawn"))
      << memory.paragraphs[0];
  ASSERT_EQ(memory.figures.size(), 1u);
  EXPECT_EQ(memory.figures[0].caption, "1f1b: peak 7.00 GiB, over the capacity");
  EXPECT_FALSE(Has(memory.figures[0].svg, "class=\"reference\""));
  std::string text = page.headline;
  for (const Section& s : page.sections) {
    for (const std::string& p : s.paragraphs) text += "\n" + p;
    for (const Table& t : s.tables)
      for (const std::string& n : t.notes) text += "\n" + n;
  }
  EXPECT_TRUE(Has(text, "1f1b (needs 5.00 GiB on dev 1, more than its 4.00 GiB)")) << text;
  EXPECT_TRUE(Has(text, "fits: peak memory within each device's own capacity")) << text;
}

TEST(ReportPage, RecommendationWeighsSpeedAgainstMeasuredAccuracy) {
  // Without a plan: pipeoptim is the fastest simulated method (323 samples/s against 242), but
  // its measured accuracy (78%) is 3 points below 1f1b's 81%.
  const Inputs in = Read({{"sim.json", ToySimJson({"1f1b", "pipeoptim"})},
                          {"run.json", ReadData("run-toy-report.json")}});
  const Recommendation strict = Recommend(BuildModel(in), {0.01, ""});
  EXPECT_EQ(strict.choice, "1f1b");
  ASSERT_FALSE(strict.reasons.empty());
  EXPECT_TRUE(Has(strict.reasons.back(),
                  "Faster but ruled out: pipeoptim[sgd] (final accuracy 78.0%, more than 1.0 "
                  "points below 1f1b's 81.0% ± 1.4)"))
      << strict.reasons.back();
  const Recommendation loose = Recommend(BuildModel(in), {0.05, ""});
  EXPECT_EQ(loose.choice, "pipeoptim[sgd]");
  EXPECT_EQ(loose.headline, "Recommended: pipeoptim[sgd], 323 samples/s (simulated, steady state)");
  EXPECT_TRUE(Has(loose.reasons[0], "It runs 1.33x as fast as the next, 1f1b (242 samples/s)."))
      << loose.reasons[0];
  // A stale method nobody trained is recommended with a warning.
  const Inputs sim_only = Read({{"sim.json", ToySimJson()}});
  const Recommendation r = Recommend(BuildModel(sim_only), {0.01, ""});
  EXPECT_EQ(r.choice, "pipedream");
  EXPECT_TRUE(Has(r.reasons[2], "Its accuracy was not measured")) << r.reasons[2];
}

TEST(ReportPage, HtmlIsSelfContainedAndMarkdownHasItsPictures) {
  const Page page = MakePage(AllThree());
  const std::string html = RenderHtml(page);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_FALSE(Has(html, "<script"));
  EXPECT_FALSE(Has(html, "https://"));
  EXPECT_EQ(Count(html, "http://"), Count(html, "xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_FALSE(Has(html, "<?xml"));         // declarations of the timelines dropped
  EXPECT_FALSE(Has(html, "id=\"hatch\""));  // each picture's pattern has its own id
  EXPECT_TRUE(Has(html, "id=\"hatch-"));
  EXPECT_EQ(html, RenderHtml(MakePage(AllThree())));  // deterministic

  const MarkdownOutput md = RenderMarkdown(page, "report-figures");
  size_t figures = 0;
  for (const Section& s : page.sections) figures += s.figures.size();
  EXPECT_EQ(md.files.size(), figures);
  EXPECT_EQ(Count(md.markdown, "](report-figures/"), figures);
  EXPECT_TRUE(Has(md.markdown, "![the plan's configurations](report-figures/pareto.svg)"));
  EXPECT_TRUE(Has(md.markdown, "| **1** | **zb-h2** |"));
  for (const auto& [name, svg] : md.files) {
    EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg", 0), 0u) << name;
  }
}

}  // namespace
}  // namespace pipecast::cli::report
