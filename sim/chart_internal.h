// Internal to the report charts (chart.cc, chart_bars.cc, chart_plots.cc): the layout every chart
// shares (margins, the plot area and its scales), the axes and the legend.
#pragma once

#include <string>
#include <vector>

#include "sim/chart.h"

namespace pipecast::sim::chart_internal {

// Layout, in px.
inline constexpr double kLeft = 76;          // y tick labels and the rotated y label
inline constexpr double kRight = 24;         // the last x tick label
inline constexpr double kTop = 44;           // the title
inline constexpr double kTickLabelGap = 16;  // plot bottom to the x tick labels' baseline
inline constexpr double kXLabelGap = 36;     // plot bottom to the x label's baseline (numeric x)
inline constexpr double kLegendGap = 20;     // x label's baseline to the first legend row's top
inline constexpr double kLegendRow = 18;
inline constexpr double kCharWidth = 6.2;  // estimated width of a character at 11 px
inline constexpr double kBottomPad = 8;

// The plot area and the scales from data to px.
struct Plot {
  double left = kLeft, top = kTop, right = 0, bottom = 0;
  LinearAxis x, y;
  double X(double v) const { return left + (v - x.lo) / (x.hi - x.lo) * (right - left); }
  double Y(double v) const { return bottom - (v - y.lo) / (y.hi - y.lo) * (bottom - top); }
};

// The plot area of a chart whose frame is `f`.
Plot PlotArea(const ChartFrame& f);

// "<svg ...>", a white background and the title.
std::string OpenChart(const ChartFrame& f, double height, const std::string& kind);

// Horizontal grid lines at the y ticks, the tick labels, the axis line and the rotated y label.
void DrawYAxis(std::string& out, const Plot& p, const std::string& label);
// Ticks and labels along a numeric x axis, with the x label under them.
void DrawXAxis(std::string& out, const Plot& p, const std::string& label);
// A dashed horizontal line at `r.value`, if it lies on the y axis.
void DrawReference(std::string& out, const Plot& p, const ReferenceLine& r);

enum class Swatch { kBox, kLine, kDashedLine, kDot, kBand };
struct LegendEntry {
  std::string text;
  std::string colour;
  Swatch swatch = Swatch::kBox;
};
// The legend laid out in rows from `x` to `x + width`: its height, and drawing it at `y` (top).
double LegendHeight(const std::vector<LegendEntry>& entries, double width);
void DrawLegend(std::string& out, const std::vector<LegendEntry>& entries, double x, double y,
                double width);

// Extends [lo, hi] by the finite values of `v`.
void Extend(const std::vector<double>& v, double& lo, double& hi);

}  // namespace pipecast::sim::chart_internal
