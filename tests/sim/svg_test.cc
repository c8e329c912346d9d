// Tests of the SVG timeline (sim/svg.h) on a hand-timed two-device run. The picture itself was
// checked by eye (rendered to PNG); these tests check that it is well-formed standalone SVG with
// one box per compute action, a legend, an axis and escaped text.
#include "sim/svg.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/generators.h"
#include "common/lower.h"
#include "common/version_plan.h"
#include "sim/engine.h"
#include "sim/timed_run.h"
#include "sim/well_formed.h"

namespace pipecast::sim {
namespace {

using ir::ActionKind;
using ir::WeightSource;

using testing_runs::TimedRun;
using testing_xml::CheckWellFormed;
using testing_xml::Count;

TEST(SvgTest, IsWellFormedStandaloneSvg) {
  const std::string svg = FormatSvg(TimedRun());
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1200.00\""),
            std::string::npos);
  EXPECT_EQ(Count(svg, "<svg"), Count(svg, "</svg>"));
  EXPECT_EQ(Count(svg, "<g"), Count(svg, "</g>"));
  EXPECT_EQ(Count(svg, "<text"), Count(svg, "</text>"));
}

TEST(SvgTest, OneBoxPerComputeActionAndALegend) {
  const std::string svg = FormatSvg(TimedRun());
  EXPECT_EQ(Count(svg, "<rect class=\"action\""), 10u);  // F, F, B, B, S per device
  EXPECT_EQ(Count(svg, "<title>"), 10u);                 // one tooltip per box
  // Legend: the kinds that occur (F, B, S), idle, and the stash and prediction hints.
  EXPECT_EQ(Count(svg, "<rect class=\"legend\""), 6u);
  for (const char* text : {"F forward", "B backward", "S optimizer step", "idle", "stashed weights",
                           "predicted weights"}) {
    EXPECT_NE(svg.find(std::string(">") + text + "</text>"), std::string::npos) << text;
  }
  EXPECT_EQ(svg.find("I input grad"), std::string::npos);
  // The predicted F is hatched (box and legend swatch); the stashed B has a heavy border.
  EXPECT_EQ(Count(svg, "<rect class=\"hatch\""), 2u);
  EXPECT_EQ(Count(svg, "fill=\"#009E73\" stroke=\"#000000\" stroke-width=\"2\""), 1u);
  EXPECT_EQ(Count(svg, "fill=\"#ffffff\" stroke=\"#000000\" stroke-width=\"2\""), 1u);
  // Rows, title, axis.
  EXPECT_NE(svg.find(">dev 0</text>"), std::string::npos);
  EXPECT_NE(svg.find(">dev 1</text>"), std::string::npos);
  EXPECT_NE(svg.find("custom \u2014 makespan 22.0 µs"), std::string::npos);
  EXPECT_NE(svg.find(">time (µs)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">20</text>"), std::string::npos);  // a tick label
  // The boxes are wide enough for microbatch numbers (F = 2 µs of 22 µs is about 100 px).
  EXPECT_GE(Count(svg, "dominant-baseline=\"central\" fill="), 10u);
  // Distinct colours per kind.
  EXPECT_EQ(Count(svg, "<rect class=\"action\" x=\"64.00\" y=\"55.00\""), 1u);  // 0F0 at t=0
}

TEST(SvgTest, BoxesScaleToTheMakespan) {
  const std::string svg = FormatSvg(TimedRun());
  // Plot width 1200 - 64 - 40 = 1096 px for 22 µs: the step of device 0 (20-22 µs) ends at the
  // right edge, 1160 px, so it starts at 64 + 1096 * 20 / 22 = 1060.36 px and is 99.64 px wide.
  EXPECT_NE(svg.find("x=\"1060.36\" y=\"55.00\" width=\"99.64\""), std::string::npos);
}

TEST(SvgTest, EscapesTextAndDrawsTransfersWhenAsked) {
  MethodRun run = TimedRun();
  run.method = "a<b&c";
  run.params = {{"k", "\"q\""}};
  SvgOptions options;
  options.show_transfers = true;
  const std::string svg = FormatSvg(run, options);
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_NE(svg.find("a&lt;b&amp;c(k=&quot;q&quot;)"), std::string::npos);
  EXPECT_EQ(svg.find("a<b"), std::string::npos);
  EXPECT_EQ(Count(svg, "<line class=\"transfer\""), 4u);
  EXPECT_EQ(Count(FormatSvg(TimedRun()), "class=\"transfer\""), 0u);
}

// A window draws only what overlaps it, cut to it, on an axis of its own.
TEST(SvgTest, WindowsDrawPartOfTheRun) {
  SvgOptions options;
  options.window = {SvgWindow::Kind::kTime, 9000, 17000};
  const std::string svg = FormatSvg(TimedRun(), options);
  EXPECT_EQ(CheckWellFormed(svg), "");
  // Device 0: B0 (10-14 µs), B1 (16-20, cut at 17); device 1: B0 (5-9) ends at 9 and is left
  // out, F1 (9-11), B1 (11-15), S (15-17).
  EXPECT_EQ(Count(svg, "<rect class=\"action\""), 5u);
  EXPECT_NE(svg.find("(9.00 µs to 17.0 µs)"), std::string::npos);
  // 1096 px for 8 µs: B1 of device 0 starts at 64 + 7 x 137 = 1023 px and is cut to 137 px.
  EXPECT_NE(svg.find("x=\"1023.00\" y=\"55.00\" width=\"137.00\""), std::string::npos) << svg;
  // Minibatch 0 is the whole of this one-minibatch run's compute: 0 to 20 µs.
  options.window = {SvgWindow::Kind::kMinibatches, 0, 0};
  EXPECT_NE(FormatSvg(TimedRun(), options).find("minibatch 0 (0 ns to 20.0 µs)"),
            std::string::npos);
}

TEST(SvgTest, ZeroLengthActionsAreNotDrawnAndChunksAreShaded) {
  MethodRun run = TimedRun();
  run.result.timing[0][8] = {22000, 22000};  // device 0's step takes no time
  EXPECT_EQ(Count(FormatSvg(run), "<rect class=\"action\""), 9u);
  // Two virtual stages on device 0 (stage 2 on device 0): its second stage's boxes are lighter.
  run.program.num_stages = 3;
  run.program.placement = {0, 1, 0};
  run.program.devices[0][2].stage = 2;  // F1 of device 0 now belongs to stage 2
  const std::string svg = FormatSvg(run);
  // F0 of device 0, two F of device 1, and the legend's F and chunk 0 swatches.
  EXPECT_EQ(Count(svg, "fill=\"#56B4E9\" stroke"), 5u);
  // 60% of the way to white, (86, 180, 233) -> (187, 225, 246): F1 and the chunk 1 swatch.
  EXPECT_EQ(Count(svg, "fill=\"#BBE1F6\" stroke"), 2u);
  EXPECT_NE(svg.find(">chunk 1</text>"), std::string::npos);
}

// Chimera at D = 2, M = 2, simulated: every device holds both stages, one per direction; the up
// copy's boxes are the lighter shade, and each device's two all-reduces are strips on its row.
TEST(SvgTest, ReplicasAreShadedByCopyAndAllReducesDrawn) {
  auto program = ir::Generate({"chimera", 2, 2, 1, 1, {}});
  ASSERT_TRUE(program.ok());
  MethodRun run;
  run.method = "chimera";
  run.program = ir::InsertCommunication(*program);
  CostModel c = UniformCostModel(2, 1000, 1000);
  for (StageCost& sc : c.stages) sc.weight_bytes = 1000;
  c.link.bandwidth = 1e9;
  auto r = Simulate(run.program, c);
  ASSERT_TRUE(r.ok()) << r.status().message();
  run.result = std::move(*r);
  const std::string svg = FormatSvg(run);
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_EQ(Count(svg, "<rect class=\"collective\""), 4u);  // 2 stages x 2 copies
  EXPECT_NE(svg.find(">all-reduce / average (collective channel)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">copy 1</text>"), std::string::npos);
  // Down copy at F's full colour (device 0's F0 and device 1's F0 of stage 1), the up copy
  // lighter (device 1's F1 of stage 0, device 0's F1 of stage 1), plus each legend swatch.
  EXPECT_EQ(Count(svg, "fill=\"#56B4E9\" stroke"), 4u);
  EXPECT_EQ(Count(svg, "fill=\"#BBE1F6\" stroke"), 3u);
}

TEST(SvgTest, WindowsParseAsTimesOrMinibatches) {
  Result<SvgWindow> t = ParseSvgWindow("1.5ms:3ms");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->kind, SvgWindow::Kind::kTime);
  EXPECT_EQ(t->from, 1'500'000);
  EXPECT_EQ(t->to, 3'000'000);
  Result<SvgWindow> m = ParseSvgWindow("3:4");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, SvgWindow::Kind::kMinibatches);
  EXPECT_EQ(m->from, 3);
  EXPECT_EQ(m->to, 4);
  for (const char* bad : {"3", "4:3", "1.5:3", "2ms:1ms", "a:b", ":", "1:2ms"}) {
    Result<SvgWindow> w = ParseSvgWindow(bad);
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_EQ(w.status().message().rfind("--svg-window: expected FROM:TO", 0), 0u) << bad;
  }
}

TEST(SvgTest, EmptyAndUntimedRunsStillRender) {
  MethodRun run = TimedRun();
  run.result.timing.clear();
  run.result.makespan = 0;
  const std::string svg = FormatSvg(run);
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_EQ(Count(svg, "<rect class=\"action\""), 0u);
  EXPECT_EQ(CheckWellFormed(FormatSvg(MethodRun{})), "");
}

}  // namespace
}  // namespace pipecast::sim
