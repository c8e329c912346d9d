// Tests of the report charts (sim/chart.h): nice axes and units, and the coordinates of bars,
// lines, bands and points on tiny charts, computed by hand from the layout: a 400 px wide chart
// with a 200 px plot has its plot area from x = 76 to 376 and from y = 44 (top) to 244 (bottom).
#include "sim/chart.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sim/well_formed.h"

namespace pipecast::sim {
namespace {

using testing_xml::CheckWellFormed;
using testing_xml::Count;
using testing_xml::Has;

ChartFrame SmallFrame() {
  ChartFrame f;
  f.title = "t";
  f.x_label = "method";
  f.y_label = "value (units)";
  f.width = 400;
  f.plot_height = 200;
  return f;
}

TEST(NiceAxis, StepsOfOneTwoOrFive) {
  const LinearAxis a = NiceAxis(0, 2);  // 2 / 5 = 0.4 -> 0.5
  EXPECT_DOUBLE_EQ(a.step, 0.5);
  EXPECT_DOUBLE_EQ(a.lo, 0);
  EXPECT_DOUBLE_EQ(a.hi, 2);
  EXPECT_EQ(a.ticks, (std::vector<double>{0, 0.5, 1, 1.5, 2}));
  const LinearAxis b = NiceAxis(0.823, 0.871);  // 0.048 / 5 -> 0.01, cover 0.82 .. 0.88
  EXPECT_DOUBLE_EQ(b.step, 0.01);
  EXPECT_NEAR(b.lo, 0.82, 1e-12);
  EXPECT_NEAR(b.hi, 0.88, 1e-12);
  EXPECT_EQ(b.ticks.size(), 7u);
  const LinearAxis zero = NiceAxis(0, 0);  // nothing but zeros: 0 to 1
  EXPECT_DOUBLE_EQ(zero.lo, 0);
  EXPECT_DOUBLE_EQ(zero.hi, 1);
  const LinearAxis one = NiceAxis(3, 3);  // 2.85 .. 3.15: step 0.1, 2.8 .. 3.2
  EXPECT_NEAR(one.lo, 2.8, 1e-12);
  EXPECT_NEAR(one.hi, 3.2, 1e-12);
  EXPECT_DOUBLE_EQ(NiceAxis(0, 7e9).step, 2e9);
}

TEST(NiceAxis, TickTextHasTheDecimalsOfTheStep) {
  EXPECT_EQ(TickText(1.5, 0.5), "1.5");
  EXPECT_EQ(TickText(2, 1), "2");
  EXPECT_EQ(TickText(0.05, 0.05), "0.05");
  EXPECT_EQ(TickText(-1e-17, 0.1), "0.0");  // never "-0.0"
  EXPECT_EQ(TickText(4000, 2000), "4000");
}

TEST(DisplayUnits, LargestUnitKeepingValuesAtLeastOne) {
  EXPECT_EQ(BytesUnit(80.0 * (1 << 30)).name, "GiB");
  EXPECT_DOUBLE_EQ(BytesUnit(80.0 * (1 << 30)).divisor, 1 << 30);
  EXPECT_EQ(BytesUnit(1000).name, "B");
  EXPECT_EQ(BytesUnit(2048).name, "KiB");
  EXPECT_EQ(SecondsUnit(0.0025).name, "ms");
  EXPECT_EQ(SecondsUnit(3e-7).name, "ns");
  EXPECT_EQ(SecondsUnit(12).name, "s");
  EXPECT_EQ(CountUnit(364000).name, "k");
  EXPECT_EQ(CountUnit(12).name, "");
}

TEST(BarChart, BarsStandOnZeroInTheirCategoryBand) {
  BarChart c;
  c.frame = SmallFrame();
  c.categories = {"a", "b"};
  c.series = {{"value", "#0072B2", {1, 2}, {}}};
  const std::string svg = RenderBarChart(c);
  EXPECT_EQ(CheckWellFormed(svg), "") << svg;
  // Axis 0..2; each category a 150 px band, the bar 80% of it (120 px) from 15 px in.
  EXPECT_TRUE(Has(svg, R"(x="91.00" y="144.00" width="120.00" height="100.00")")) << svg;
  EXPECT_TRUE(Has(svg, R"(x="241.00" y="44.00" width="120.00" height="200.00")")) << svg;
  EXPECT_TRUE(Has(svg, "<title>a, value: 1</title>"));
  EXPECT_TRUE(Has(svg, ">value (units)</text>"));  // the y label
  EXPECT_TRUE(Has(svg, ">method</text>"));         // the x label
  EXPECT_TRUE(Has(svg, R"(<text x="70.00" y="98.00" text-anchor="end">1.5</text>)")) << svg;
}

TEST(BarChart, GroupedSeriesShareTheBand) {
  BarChart c;
  c.frame = SmallFrame();
  c.categories = {"only"};
  c.series = {{"a", "#0072B2", {1}, {}}, {"b", "#E69F00", {2}, {}}};
  const std::string svg = RenderBarChart(c);
  // One 300 px band, a 240 px group from x = 106: two 120 px bars.
  EXPECT_TRUE(Has(svg, R"(x="106.00" y="144.00" width="120.00" height="100.00" fill="#0072B2")"));
  EXPECT_TRUE(Has(svg, R"(x="226.00" y="44.00" width="120.00" height="200.00" fill="#E69F00")"));
  EXPECT_EQ(Count(svg, "<rect class=\"bar\""), 2u);
}

TEST(BarChart, StackedBarsAgainstAReferenceLine) {
  BarChart c;
  c.frame = SmallFrame();
  c.categories = {"dev 0"};
  c.series = {{"weights", "#0072B2", {1}, {}}, {"activations", "#E69F00", {2}, {}}};
  c.stacked = true;
  c.reference = ReferenceLine{4, "capacity 4", "#D55E00"};
  const std::string svg = RenderBarChart(c);
  EXPECT_EQ(CheckWellFormed(svg), "") << svg;
  // Axis 0..4 (the reference is included): 50 px per unit.
  EXPECT_TRUE(Has(svg, R"(x="106.00" y="194.00" width="240.00" height="50.00" fill="#0072B2")"));
  EXPECT_TRUE(Has(svg, R"(x="106.00" y="94.00" width="240.00" height="100.00" fill="#E69F00")"));
  EXPECT_TRUE(Has(svg, R"(<line class="reference" x1="76.00" y1="44.00" x2="376.00" y2="44.00")"));
  EXPECT_TRUE(Has(svg, ">capacity 4</text>"));  // in the legend
  EXPECT_TRUE(Has(svg, ">weights</text>"));
}

TEST(BarChart, MissingValuesDrawNoBarAndEmptyChartsStillHaveAxes) {
  BarChart c;
  c.frame = SmallFrame();
  c.categories = {"a", "b"};
  c.series = {{"s", "#0072B2", {1, NAN}, {}}};
  EXPECT_EQ(Count(RenderBarChart(c), "<rect class=\"bar\""), 1u);
  BarChart empty;
  empty.frame = SmallFrame();
  const std::string svg = RenderBarChart(empty);
  EXPECT_EQ(CheckWellFormed(svg), "");
  EXPECT_TRUE(Has(svg, "class=\"axis y-axis\""));
}

TEST(LineChart, PointsMapLinearlyAndBandsGoOutAndBack) {
  LineChart c;
  c.frame = SmallFrame();
  c.y_from_zero = true;
  LineSeries s{"loss", "#0072B2", false, {0, 1, 2}, {1, 2, 3}, {0.5, 1.5, 2.5}, {1.5, 2.5, 4}};
  c.series = {s};
  c.band_legend = "min to max over 2 seeds";
  const std::string svg = RenderLineChart(c);
  EXPECT_EQ(CheckWellFormed(svg), "") << svg;
  // x 0..2 over 300 px; y 0..4 over 200 px (the band reaches 4).
  EXPECT_TRUE(Has(svg, R"(points="76.00,194.00 226.00,144.00 376.00,94.00")")) << svg;
  EXPECT_TRUE(Has(svg, R"(points="76.00,169.00 226.00,119.00 376.00,44.00 376.00,119.00 )"
                       R"(226.00,169.00 76.00,219.00 ")"))
      << svg;
  EXPECT_TRUE(Has(svg, ">min to max over 2 seeds</text>"));
  EXPECT_EQ(Count(svg, "<circle class=\"point\""), 3u);
}

TEST(ScatterChart, EmphasisedPointsAFrontAndAReference) {
  ScatterChart c;
  c.frame = SmallFrame();
  c.frame.title = "Pareto <front> & more";
  c.groups = {{"delay 0", "#0072B2"}, {"delay 1", "#E69F00"}};
  c.points = {{1, 2, 0, false, "", "a"}, {2, 1, 1, true, "best", "b"}};
  c.connect = {0, 1};
  c.connect_legend = "Pareto front";
  c.y_reference = ReferenceLine{3, "memory cap", "#D55E00"};
  const std::string svg = RenderScatterChart(c);
  EXPECT_EQ(CheckWellFormed(svg), "") << svg;
  // x 0..2 (300 px), y 0..3 (200 px).
  EXPECT_TRUE(Has(svg, R"(<circle class="point" cx="226.00" cy="110.67")")) << svg;
  EXPECT_TRUE(Has(svg, R"(<circle class="point emphasised" cx="376.00" cy="177.33")")) << svg;
  EXPECT_TRUE(Has(svg, ">best</text>"));
  EXPECT_TRUE(Has(svg, R"(points="226.00,110.67 376.00,177.33")"));
  EXPECT_TRUE(Has(svg, "Pareto &lt;front&gt; &amp; more"));
  EXPECT_TRUE(Has(svg, ">memory cap</text>"));
  EXPECT_TRUE(Has(svg, ">delay 1</text>"));
}

}  // namespace
}  // namespace pipecast::sim
