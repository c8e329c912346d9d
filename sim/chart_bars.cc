// Bar charts (chart.h): categories along x, one bar per series side by side or stacked, a y axis
// from 0 (or the most negative value), an optional reference line and a legend.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sim/chart.h"
#include "sim/chart_internal.h"
#include "sim/svg_style.h"

namespace pipecast::sim {
namespace {

using chart_internal::kCharWidth;
using chart_internal::LegendEntry;
using chart_internal::Plot;
using chart_internal::Swatch;
using internal::Escape;
using internal::Num;

constexpr double kGroupShare = 0.8;   // of a category's band; the rest is space between groups
constexpr double kRotatedSin = 0.57;  // sin 35°: rotated category labels

double Value(const BarSeries& s, size_t c) {
  return c < s.values.size() && std::isfinite(s.values[c]) ? s.values[c] : NAN;
}

// The y range: 0 to the largest value (or stack), the reference line and any negative value.
LinearAxis YRange(const BarChart& chart) {
  double lo = 0, hi = 0;
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    double stack = 0;
    for (const BarSeries& s : chart.series) {
      const double v = Value(s, c);
      if (!std::isfinite(v)) continue;
      if (chart.stacked) stack += std::max(v, 0.0);
      lo = std::min(lo, v);
      hi = std::max(hi, chart.stacked ? stack : v);
    }
  }
  if (std::isfinite(chart.y_at_least)) hi = std::max(hi, chart.y_at_least);
  if (chart.reference && std::isfinite(chart.reference->value)) {
    hi = std::max(hi, chart.reference->value);
  }
  return NiceAxis(lo, hi);
}

size_t LongestLabel(const std::vector<std::string>& labels) {
  size_t n = 0;
  for (const std::string& l : labels) n = std::max(n, l.size());
  return n;
}

std::string BarRect(double x, double y0, double y1, double w, const std::string& colour,
                    const std::string& tooltip) {
  return fmt::format(
      R"(<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="#333333" )"
      R"(stroke-width="0.5"><title>{}</title></rect>)"
      "\n",
      Num(x), Num(std::min(y0, y1)), Num(w), Num(std::abs(y1 - y0)), colour, Escape(tooltip));
}

std::string Tooltip(const BarChart& chart, const BarSeries& s, size_t c, double v) {
  if (c < s.tooltips.size() && !s.tooltips[c].empty()) return s.tooltips[c];
  return fmt::format("{}, {}: {:.4g}", chart.categories[c], s.name, v);
}

void DrawBars(std::string& out, const BarChart& chart, const Plot& p) {
  const double band = (p.right - p.left) / static_cast<double>(chart.categories.size());
  const double group = band * kGroupShare;
  const double bar = chart.stacked || chart.series.empty()
                         ? group
                         : group / static_cast<double>(chart.series.size());
  out += "<g class=\"bars\">\n";
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    const double x0 = p.left + static_cast<double>(c) * band + band * (1 - kGroupShare) / 2;
    double base = 0;
    for (size_t k = 0; k < chart.series.size(); ++k) {
      const BarSeries& s = chart.series[k];
      const double v = Value(s, c);
      if (!std::isfinite(v)) continue;
      const std::string tip = Tooltip(chart, s, c, v);
      if (chart.stacked) {
        if (v <= 0) continue;
        out += BarRect(x0, p.Y(base), p.Y(base + v), bar, s.colour, tip);
        base += v;
      } else {
        out += BarRect(x0 + static_cast<double>(k) * bar, p.Y(0), p.Y(v), bar, s.colour, tip);
      }
    }
  }
  out += "</g>\n";
}

// Category names under their bands, rotated when the longest does not fit its band. Returns the
// height they take under the plot.
double DrawCategories(std::string& out, const BarChart& chart, const Plot& p) {
  const double band = (p.right - p.left) / static_cast<double>(chart.categories.size());
  const double longest = kCharWidth * static_cast<double>(LongestLabel(chart.categories));
  const bool rotate = longest > band - 4;
  out += "<g class=\"axis x-axis\" fill=\"#333333\">\n";
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    const double x = p.left + (static_cast<double>(c) + 0.5) * band;
    const double y = p.bottom + 14;
    if (rotate) {
      out += fmt::format(
          R"svg(<text x="{0}" y="{1}" text-anchor="end" transform="rotate(-35 {0} {1})">{2}</text>)svg",
          Num(x + 4), Num(y), Escape(chart.categories[c]));
    } else {
      out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", Num(x), Num(y),
                         Escape(chart.categories[c]));
    }
    out += '\n';
  }
  out += "</g>\n";
  return rotate ? longest * kRotatedSin + 18 : 18;
}

}  // namespace

std::string RenderBarChart(const BarChart& chart) {
  using namespace chart_internal;  // NOLINT: the charts' shared layout
  Plot p = PlotArea(chart.frame);
  p.y = YRange(chart);
  std::string body;
  DrawYAxis(body, p, chart.frame.y_label);
  double under = 18;
  if (!chart.categories.empty()) {
    DrawBars(body, chart, p);
    under = DrawCategories(body, chart, p);
  }
  if (chart.reference) DrawReference(body, p, *chart.reference);
  const double x_label_y = p.bottom + under + 16;
  body += fmt::format(
      R"(<text class="axis-label" x="{}" y="{}" text-anchor="middle" fill="#333333">{}</text>)"
      "\n",
      Num((p.left + p.right) / 2), Num(x_label_y), Escape(chart.frame.x_label));
  std::vector<LegendEntry> legend;
  for (const BarSeries& s : chart.series) legend.push_back({s.name, s.colour, Swatch::kBox});
  if (chart.reference) {
    legend.push_back({chart.reference->label, chart.reference->colour, Swatch::kDashedLine});
  }
  const double legend_y = x_label_y + 10;
  DrawLegend(body, legend, p.left, legend_y, p.right - p.left);
  const double height = legend_y + LegendHeight(legend, p.right - p.left) + kBottomPad;
  return OpenChart(chart.frame, height, "bar") + body + "</svg>\n";
}

}  // namespace pipecast::sim
