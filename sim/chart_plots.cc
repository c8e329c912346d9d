// Line charts and scatter plots (chart.h) on two numeric axes.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "sim/chart.h"
#include "sim/chart_internal.h"
#include "sim/svg_style.h"

namespace pipecast::sim {
namespace {

using chart_internal::Extend;
using chart_internal::LegendEntry;
using chart_internal::Plot;
using chart_internal::Swatch;
using internal::Escape;
using internal::Num;

constexpr double kInf = std::numeric_limits<double>::infinity();

bool Finite(double a, double b) { return std::isfinite(a) && std::isfinite(b); }

// [lo, hi] of the values, from 0 if asked; 0 to 1 when there are none.
LinearAxis Range(double lo, double hi, bool from_zero) {
  if (from_zero) lo = std::min(lo, 0.0), hi = std::max(hi, 0.0);
  if (lo > hi) lo = 0, hi = 1;
  return NiceAxis(lo, hi);
}

void DrawBand(std::string& out, const Plot& p, const LineSeries& s) {
  if (s.low.size() != s.x.size() || s.high.size() != s.x.size()) return;
  std::string upper, lower;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!Finite(s.x[i], s.low[i]) || !std::isfinite(s.high[i])) continue;
    upper += fmt::format("{},{} ", Num(p.X(s.x[i])), Num(p.Y(s.high[i])));
    lower.insert(0, fmt::format("{},{} ", Num(p.X(s.x[i])), Num(p.Y(s.low[i]))));
  }
  if (upper.empty()) return;
  out += fmt::format(R"(<polygon class="band" points="{}" fill="{}" opacity="0.2"/>)",
                     upper + lower, s.colour);
  out += '\n';
}

void DrawLine(std::string& out, const Plot& p, const LineSeries& s) {
  std::string points, dots;
  for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
    if (!Finite(s.x[i], s.y[i])) continue;
    const double x = p.X(s.x[i]), y = p.Y(s.y[i]);
    points += fmt::format("{},{} ", Num(x), Num(y));
    std::string tip = fmt::format("{}: x {:.4g}, y {:.4g}", s.name, s.x[i], s.y[i]);
    if (i < s.low.size() && i < s.high.size() && Finite(s.low[i], s.high[i])) {
      tip += fmt::format(" (band {:.4g} to {:.4g})", s.low[i], s.high[i]);
    }
    dots += fmt::format(
        R"(<circle class="point" cx="{}" cy="{}" r="2.5" fill="{}"><title>{}</title></circle>)",
        Num(x), Num(y), s.colour, Escape(tip));
  }
  if (points.empty()) return;
  points.pop_back();
  out += fmt::format(
      R"(<polyline class="line" points="{}" fill="none" stroke="{}" stroke-width="2"{}><title>{}</title></polyline>)",
      points, s.colour, s.dashed ? R"( stroke-dasharray="6 3")" : "", Escape(s.name));
  out += '\n' + dots + '\n';
}

// The x label, then the legend; returns the picture's height.
double Finish(std::string& out, const Plot& p, const std::string& x_label,
              const std::vector<LegendEntry>& legend) {
  using namespace chart_internal;  // NOLINT: the charts' shared layout
  DrawXAxis(out, p, x_label);
  const double legend_y = p.bottom + kXLabelGap + 10;
  DrawLegend(out, legend, p.left, legend_y, p.right - p.left);
  return legend_y + LegendHeight(legend, p.right - p.left) + kBottomPad;
}

std::string PointSvg(const Plot& p, const ScatterPoint& pt, const std::string& colour) {
  const double x = p.X(pt.x), y = p.Y(pt.y);
  const std::string tip =
      pt.tooltip.empty() ? fmt::format("{:.4g}, {:.4g}", pt.x, pt.y) : pt.tooltip;
  if (!pt.emphasised) {
    return fmt::format(
        R"(<circle class="point" cx="{}" cy="{}" r="3.5" fill="{}" fill-opacity="0.85"><title>{}</title></circle>)"
        "\n",
        Num(x), Num(y), colour, Escape(tip));
  }
  std::string s = fmt::format(
      R"(<circle class="point emphasised" cx="{}" cy="{}" r="6.5" fill="{}" stroke="#000000" )"
      R"(stroke-width="2"><title>{}</title></circle>)",
      Num(x), Num(y), colour, Escape(tip));
  if (!pt.label.empty()) {
    s += fmt::format(R"(<text class="point-label" x="{}" y="{}" font-weight="bold">{}</text>)",
                     Num(x + 9), Num(y - 8), Escape(pt.label));
  }
  return s + '\n';
}

}  // namespace

std::string RenderLineChart(const LineChart& chart) {
  Plot p = chart_internal::PlotArea(chart.frame);
  double x_lo = kInf, x_hi = -kInf, y_lo = kInf, y_hi = -kInf;
  for (const LineSeries& s : chart.series) {
    Extend(s.x, x_lo, x_hi);
    Extend(s.y, y_lo, y_hi);
    Extend(s.low, y_lo, y_hi);
    Extend(s.high, y_lo, y_hi);
  }
  p.x = Range(x_lo, x_hi, chart.x_from_zero);
  p.y = Range(y_lo, y_hi, chart.y_from_zero);
  std::string body;
  chart_internal::DrawYAxis(body, p, chart.frame.y_label);
  bool any_band = false;
  for (const LineSeries& s : chart.series) {
    DrawBand(body, p, s);
    any_band = any_band || !s.low.empty();
  }
  std::vector<LegendEntry> legend;
  for (const LineSeries& s : chart.series) {
    DrawLine(body, p, s);
    legend.push_back({s.name, s.colour, s.dashed ? Swatch::kDashedLine : Swatch::kLine});
  }
  if (any_band && !chart.band_legend.empty()) {
    legend.push_back({chart.band_legend, "#555555", Swatch::kBand});
  }
  const double height = Finish(body, p, chart.frame.x_label, legend);
  return chart_internal::OpenChart(chart.frame, height, "line") + body + "</svg>\n";
}

std::string RenderScatterChart(const ScatterChart& chart) {
  Plot p = chart_internal::PlotArea(chart.frame);
  double x_lo = kInf, x_hi = -kInf, y_lo = kInf, y_hi = -kInf;
  for (const ScatterPoint& pt : chart.points) {
    if (!Finite(pt.x, pt.y)) continue;
    Extend({pt.x}, x_lo, x_hi);
    Extend({pt.y}, y_lo, y_hi);
  }
  if (chart.y_reference) Extend({chart.y_reference->value}, y_lo, y_hi);
  p.x = Range(x_lo, x_hi, true);
  p.y = Range(y_lo, y_hi, true);
  std::string body;
  chart_internal::DrawYAxis(body, p, chart.frame.y_label);
  if (chart.y_reference) chart_internal::DrawReference(body, p, *chart.y_reference);
  std::string front;
  for (size_t i : chart.connect) {
    if (i < chart.points.size() && Finite(chart.points[i].x, chart.points[i].y)) {
      front += fmt::format("{},{} ", Num(p.X(chart.points[i].x)), Num(p.Y(chart.points[i].y)));
    }
  }
  if (!front.empty()) {
    front.pop_back();
    body += fmt::format(
        R"(<polyline class="front" points="{}" fill="none" stroke="#555555" stroke-width="1.2"/>)",
        front);
    body += '\n';
  }
  for (const ScatterPoint& pt : chart.points) {
    if (!Finite(pt.x, pt.y)) continue;
    body +=
        PointSvg(p, pt, pt.group < chart.groups.size() ? chart.groups[pt.group].colour : "#555555");
  }
  std::vector<LegendEntry> legend;
  for (size_t g = 0; g < chart.groups.size(); ++g) {
    if (std::any_of(chart.points.begin(), chart.points.end(),
                    [&](const ScatterPoint& pt) { return pt.group == g; })) {
      legend.push_back({chart.groups[g].name, chart.groups[g].colour, Swatch::kDot});
    }
  }
  if (!front.empty() && !chart.connect_legend.empty()) {
    legend.push_back({chart.connect_legend, "#555555", Swatch::kLine});
  }
  if (chart.y_reference) {
    legend.push_back({chart.y_reference->label, chart.y_reference->colour, Swatch::kDashedLine});
  }
  const double height = Finish(body, p, chart.frame.x_label, legend);
  return chart_internal::OpenChart(chart.frame, height, "scatter") + body + "</svg>\n";
}

}  // namespace pipecast::sim
