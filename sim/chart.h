// SVG charts for reports (`pipecast report`, docs/outputs.md): bar charts, grouped or stacked,
// with an optional reference line (a device's capacity); line charts with a band around each
// series (the spread over seeds); scatter plots with groups (a Pareto front coloured by
// staleness). Every chart has a title, axis labels with units and a legend, like the timeline
// of svg.h, whose palette and text escaping it shares.
//
// Charts are plain data in, one <svg> element out (no XML declaration, so it can be inlined in
// HTML; prepend kSvgDeclaration for a file of its own). Output is deterministic. Values that are
// not finite are not drawn.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast::sim {

inline constexpr const char* kSvgDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

// The Okabe-Ito palette (distinguishable with common colour-vision deficiencies), without its
// yellow, which is unreadable on white: the colours callers give series, in order.
// Neighbours in this order differ in hue and lightness.
inline constexpr const char* kSeriesColours[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                                 "#56B4E9", "#D55E00", "#000000"};
inline constexpr size_t kNumSeriesColours = std::size(kSeriesColours);

// What every chart has. Sizes in px; the picture is `width` wide and as high as its plot area
// (`plot_height`), axes and legend need.
struct ChartFrame {
  std::string title;
  std::string x_label;  // with the unit: "time per sample (ms)"
  std::string y_label;
  int width = 560;
  int plot_height = 220;
};

// A horizontal line across the plot: a device's memory capacity, a constraint.
struct ReferenceLine {
  double value = 0;
  std::string label;  // in the legend
  std::string colour = "#D55E00";
};

struct BarSeries {
  std::string name;  // in the legend
  std::string colour;
  std::vector<double> values;         // one per category; not finite = no bar
  std::vector<std::string> tooltips;  // one per category, or empty (then name: value)
};

struct BarChart {
  ChartFrame frame;
  std::vector<std::string> categories;  // along x, in order
  std::vector<BarSeries> series;        // side by side in each category, or stacked
  bool stacked = false;                 // stacked: values must be >= 0
  std::optional<ReferenceLine> reference;
  double y_at_least = 0;  // the y axis reaches at least this (one scale for small multiples)
};

struct LineSeries {
  std::string name;
  std::string colour;
  bool dashed = false;
  std::vector<double> x, y;
  std::vector<double> low, high;  // empty, or a band from low to high at each x
};

struct LineChart {
  ChartFrame frame;
  std::vector<LineSeries> series;
  bool x_from_zero = true;  // the x axis starts at 0 (else at the smallest x)
  bool y_from_zero = false;
  std::string band_legend;  // what the bands are, e.g. "band: min to max over 3 seeds"
};

struct ScatterGroup {
  std::string name;  // in the legend (only groups that have points are listed)
  std::string colour;
};

struct ScatterPoint {
  double x = 0, y = 0;
  size_t group = 0;         // index into ScatterChart::groups
  bool emphasised = false;  // drawn larger, with a black ring (the chosen configuration)
  std::string label;        // written next to an emphasised point
  std::string tooltip;
};

struct ScatterChart {
  ChartFrame frame;
  std::vector<ScatterGroup> groups;
  std::vector<ScatterPoint> points;  // drawn in order, the later on top
  std::optional<ReferenceLine> y_reference;
  std::vector<size_t> connect;  // indices of points joined by a line in this order (a front)
  std::string connect_legend;   // its legend entry, when `connect` is not empty
};

std::string RenderBarChart(const BarChart& chart);
std::string RenderLineChart(const LineChart& chart);
std::string RenderScatterChart(const ScatterChart& chart);

// A linear axis from `lo` to `hi` (both multiples of `step`) covering the data range, with ticks
// every `step`, a "nice" step of 1, 2 or 5 x 10^k giving at most about `target_ticks` intervals.
struct LinearAxis {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> ticks;
};
LinearAxis NiceAxis(double lo, double hi, int target_ticks = 5);

// Tick text for a value on an axis with this step: as many decimals as the step needs.
std::string TickText(double value, double step);

// A unit to show values in: value / divisor, named `name` (empty for plain numbers).
struct DisplayUnit {
  double divisor = 1;
  std::string name;
};
DisplayUnit BytesUnit(double max_bytes);      // B, KiB, MiB, GiB, TiB
DisplayUnit SecondsUnit(double max_seconds);  // ns, µs, ms, s
DisplayUnit CountUnit(double max_count);      // "", thousand (k), million (M), billion (G)

// Text safe in SVG and HTML: & < > " ' written as entities.
std::string EscapeText(std::string_view text);

}  // namespace pipecast::sim
