// What every report chart shares: nice axes, display units, the frame, axes and legend
// (chart_internal.h). The charts themselves are in chart_bars.cc and chart_plots.cc.
#include "sim/chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sim/chart_internal.h"
#include "sim/svg_style.h"

namespace pipecast::sim {

using internal::Escape;
using internal::Num;

LinearAxis NiceAxis(double lo, double hi, int target_ticks) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo && lo == 0) {  // nothing but zeros: 0 to 1
    hi = 1;
  } else if (hi == lo) {  // one value: 5% either side of it
    const double half = std::abs(lo) * 0.05;
    lo -= half;
    hi += half;
  }
  const double raw = (hi - lo) / std::max(target_ticks, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  LinearAxis axis;
  axis.step = magnitude * 10;
  for (double m : {1.0, 2.0, 5.0}) {
    if (m * magnitude >= raw * (1 - 1e-9)) {
      axis.step = m * magnitude;
      break;
    }
  }
  axis.lo = std::floor(lo / axis.step + 1e-9) * axis.step;
  axis.hi = std::ceil(hi / axis.step - 1e-9) * axis.step;
  if (axis.hi <= axis.lo) axis.hi = axis.lo + axis.step;
  const auto intervals = static_cast<int>(std::lround((axis.hi - axis.lo) / axis.step));
  for (int i = 0; i <= intervals; ++i) {
    const double t = std::round((axis.lo + i * axis.step) / axis.step) * axis.step;
    axis.ticks.push_back(std::abs(t) < axis.step * 1e-9 ? 0.0 : t);
  }
  return axis;
}

std::string TickText(double value, double step) {
  const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  if (std::abs(value) < step * 1e-9) value = 0;
  return fmt::format("{:.{}f}", value, decimals);
}

DisplayUnit BytesUnit(double max_bytes) {
  static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double divisor = 1;
  size_t i = 0;
  while (i + 1 < std::size(kNames) && max_bytes >= divisor * 1024) divisor *= 1024, ++i;
  return {divisor, kNames[i]};
}

DisplayUnit SecondsUnit(double max_seconds) {
  if (max_seconds >= 1) return {1, "s"};
  if (max_seconds >= 1e-3) return {1e-3, "ms"};
  if (max_seconds >= 1e-6) return {1e-6, "µs"};
  return {1e-9, "ns"};
}

DisplayUnit CountUnit(double max_count) {
  if (max_count >= 1e9) return {1e9, "G"};
  if (max_count >= 1e6) return {1e6, "M"};
  if (max_count >= 1e3) return {1e3, "k"};
  return {1, ""};
}

std::string EscapeText(std::string_view text) { return Escape(text); }

namespace chart_internal {

Plot PlotArea(const ChartFrame& f) {
  Plot p;
  p.right = std::max<double>(f.width, 200) - kRight;
  p.bottom = kTop + std::max(f.plot_height, 60);
  return p;
}

std::string OpenChart(const ChartFrame& f, double height, const std::string& kind) {
  const double width = std::max<double>(f.width, 200);
  std::string out = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{}" width="{}" height="{}" )"
      R"(viewBox="0 0 {} {}" role="img" aria-label="{}" )"
      R"(font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">)"
      "\n",
      kind, Num(width), Num(height), Num(width), Num(height), Escape(f.title));
  out +=
      fmt::format(R"(<rect class="background" x="0" y="0" width="{}" height="{}" fill="#ffffff"/>)"
                  "\n",
                  Num(width), Num(height));
  out += fmt::format(
      R"(<text class="chart-title" x="{}" y="22" font-size="14" font-weight="bold">{}</text>)"
      "\n",
      Num(kLeft), Escape(f.title));
  return out;
}

void DrawYAxis(std::string& out, const Plot& p, const std::string& label) {
  out += R"(<g class="axis y-axis" fill="#333333">)";
  out += '\n';
  for (double t : p.y.ticks) {
    const double y = p.Y(t);
    out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#e4e4e4"/>)"
                       R"(<text x="{3}" y="{4}" text-anchor="end">{5}</text>)"
                       "\n",
                       Num(p.left), Num(y), Num(p.right), Num(p.left - 6), Num(y + 4),
                       TickText(t, p.y.step));
  }
  out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#333333"/>)", Num(p.left),
                     Num(p.top), Num(p.bottom));
  out += fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="#333333"/>)", Num(p.left),
                     Num(p.right), Num(p.bottom));
  out += fmt::format(
      R"svg(<text class="axis-label" transform="rotate(-90)" x="{}" y="16" text-anchor="middle">{}</text>)svg",
      Num(-(p.top + p.bottom) / 2), Escape(label));
  out += "\n</g>\n";
}

void DrawXAxis(std::string& out, const Plot& p, const std::string& label) {
  out += R"(<g class="axis x-axis" fill="#333333">)";
  out += '\n';
  for (double t : p.x.ticks) {
    const double x = p.X(t);
    out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#333333"/>)"
                       R"(<text x="{0}" y="{3}" text-anchor="middle">{4}</text>)"
                       "\n",
                       Num(x), Num(p.bottom), Num(p.bottom + 5), Num(p.bottom + kTickLabelGap),
                       TickText(t, p.x.step));
  }
  out += fmt::format(R"(<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>)",
                     Num((p.left + p.right) / 2), Num(p.bottom + kXLabelGap), Escape(label));
  out += "\n</g>\n";
}

void DrawReference(std::string& out, const Plot& p, const ReferenceLine& r) {
  if (!std::isfinite(r.value) || r.value < p.y.lo || r.value > p.y.hi) return;
  out += fmt::format(
      R"(<line class="reference" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" )"
      R"(stroke-dasharray="6 4"><title>{}</title></line>)"
      "\n",
      Num(p.left), Num(p.Y(r.value)), Num(p.right), Num(p.Y(r.value)), r.colour, Escape(r.label));
}

namespace {

size_t Characters(const std::string& s) {  // UTF-8 code points
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

double EntryWidth(const LegendEntry& e) {
  return 19 + kCharWidth * static_cast<double>(Characters(e.text)) + 16;
}

// Where each entry goes: its x offset and row.
std::vector<std::pair<double, int>> LegendLayout(const std::vector<LegendEntry>& entries,
                                                 double width) {
  std::vector<std::pair<double, int>> at;
  double x = 0;
  int row = 0;
  for (const LegendEntry& e : entries) {
    if (x > 0 && x + EntryWidth(e) > width) x = 0, ++row;
    at.emplace_back(x, row);
    x += EntryWidth(e);
  }
  return at;
}

std::string SwatchSvg(const LegendEntry& e, double x, double y) {
  switch (e.swatch) {
    case Swatch::kBox:
      return fmt::format(
          R"(<rect x="{}" y="{}" width="14" height="12" fill="{}" stroke="#333333" stroke-width="0.5"/>)",
          Num(x), Num(y + 2), e.colour);
    case Swatch::kLine:
    case Swatch::kDashedLine:
      return fmt::format(
          R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2.5"{}/>)", Num(x),
          Num(y + 8), Num(x + 14), Num(y + 8), e.colour,
          e.swatch == Swatch::kDashedLine ? R"( stroke-dasharray="5 3")" : "");
    case Swatch::kDot:
      return fmt::format(R"(<circle cx="{}" cy="{}" r="4.5" fill="{}"/>)", Num(x + 7), Num(y + 8),
                         e.colour);
    case Swatch::kBand:
      return fmt::format(R"(<rect x="{}" y="{}" width="14" height="12" fill="{}" opacity="0.2"/>)",
                         Num(x), Num(y + 2), e.colour);
  }
  return "";
}

}  // namespace

double LegendHeight(const std::vector<LegendEntry>& entries, double width) {
  if (entries.empty()) return 0;
  return (LegendLayout(entries, width).back().second + 1) * kLegendRow;
}

void DrawLegend(std::string& out, const std::vector<LegendEntry>& entries, double x, double y,
                double width) {
  if (entries.empty()) return;
  out += R"(<g class="legend">)";
  out += '\n';
  const auto at = LegendLayout(entries, width);
  for (size_t i = 0; i < entries.size(); ++i) {
    const double ex = x + at[i].first, ey = y + at[i].second * kLegendRow;
    out += SwatchSvg(entries[i], ex, ey);
    out += fmt::format(R"(<text x="{}" y="{}">{}</text>)", Num(ex + 19), Num(ey + 12),
                       Escape(entries[i].text));
    out += '\n';
  }
  out += "</g>\n";
}

void Extend(const std::vector<double>& v, double& lo, double& hi) {
  for (double x : v) {
    if (!std::isfinite(x)) continue;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
}

}  // namespace chart_internal
}  // namespace pipecast::sim
