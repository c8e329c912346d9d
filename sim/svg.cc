#include "sim/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ir.h"

namespace pipecast::sim {
namespace {

// Layout, in px.
constexpr double kMarginLeft = 64;   // room for "dev 12"
constexpr double kMarginRight = 40;  // room for the last tick label
constexpr double kTitleY = 22;
constexpr double kSubtitleY = 40;
constexpr double kPlotTop = 54;
constexpr double kRowGap = 4;
constexpr double kMinBoxWidth = 0.5;  // very short actions stay visible
// Narrower boxes get no border: in dense schedules borders would hide the fill colours. Their
// weight hints then show only as hatching (predicted) and in the tooltip.
constexpr double kMinBorderedWidth = 4;
constexpr double kCharWidth = 6.2;  // estimated width of one label character at 10px
constexpr int kTargetTicks = 10;

struct KindStyle {
  ir::ActionKind kind;
  const char* label;  // legend text
  const char* fill;
  const char* text;  // label colour inside the box
};

// Okabe-Ito colours: distinct for the common colour-vision deficiencies.
constexpr KindStyle kKindStyles[] = {
    {ir::ActionKind::kForward, "F forward", "#56B4E9", "#000000"},
    {ir::ActionKind::kBackward, "B backward", "#009E73", "#ffffff"},
    {ir::ActionKind::kBackwardInput, "I input grad", "#E69F00", "#000000"},
    {ir::ActionKind::kWeightGrad, "W weight grad", "#CC79A7", "#000000"},
    {ir::ActionKind::kStep, "S optimizer step", "#555555", "#ffffff"},
};

const KindStyle& StyleOf(ir::ActionKind kind) {
  for (const KindStyle& s : kKindStyles)
    if (s.kind == kind) return s;
  return kKindStyles[0];
}

// How non-current weights are hinted; `attrs` are extra attributes of the action's rectangle.
enum class Hint { kNone, kStashed, kPredicted, kCorrected, kOther };

Hint HintOf(const ir::Action& a) {
  if (!ir::UsesWeights(a.kind)) return Hint::kNone;
  switch (a.weights.source) {
    case ir::WeightSource::kCurrent:
    case ir::WeightSource::kBufferNewer:
      return Hint::kNone;
    case ir::WeightSource::kStashed:
      return Hint::kStashed;
    case ir::WeightSource::kPredicted:
      return Hint::kPredicted;
    case ir::WeightSource::kCorrected:
      return Hint::kCorrected;
    case ir::WeightSource::kBufferOlder:
    case ir::WeightSource::kVersion:
      return Hint::kOther;
  }
  return Hint::kNone;
}

const char* BorderAttrs(Hint h) {
  switch (h) {
    case Hint::kNone:
    case Hint::kPredicted:
      return R"(stroke="#333333" stroke-width="0.5")";
    case Hint::kStashed:
      return R"(stroke="#000000" stroke-width="2")";
    case Hint::kCorrected:
      return R"(stroke="#000000" stroke-width="1.5" stroke-dasharray="4 2")";
    case Hint::kOther:
      return R"(stroke="#000000" stroke-width="1.5" stroke-dasharray="1.5 1.5")";
  }
  return "";
}

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A "nice" tick step (1, 2 or 5 x 10^k ns, at least 1 ns) giving about kTargetTicks ticks.
TimeNs TickStep(TimeNs span) {
  const double raw = static_cast<double>(span) / kTargetTicks;
  TimeNs magnitude = 1;
  while (static_cast<double>(magnitude) * 10 <= raw) magnitude *= 10;
  for (TimeNs m : {1, 2, 5, 10})
    if (static_cast<double>(magnitude * m) >= raw) return magnitude * m;
  return magnitude * 10;
}

// The axis unit: the largest of ns/µs/ms/s not above the tick step, so every tick label is a
// whole number in that unit.
struct AxisUnit {
  TimeNs divisor;
  const char* name;
};
AxisUnit UnitFor(TimeNs step) {
  if (step >= 1'000'000'000) return {1'000'000'000, "s"};
  if (step >= 1'000'000) return {1'000'000, "ms"};
  if (step >= 1'000) return {1'000, "µs"};
  return {1, "ns"};
}

std::string Num(double v) { return fmt::format("{:.2f}", v); }

std::string VersionText(const ir::Action& a, const ir::VersionPlan& v) {
  if (a.stage < 0 || a.stage >= v.num_stages || a.microbatch < 0 ||
      a.microbatch >= v.total_microbatches) {
    return "";
  }
  const size_t idx = static_cast<size_t>(a.stage) * v.total_microbatches + a.microbatch;
  if (idx >= v.records.size()) return "";
  const ir::VersionRecord& r = v.records[idx];
  if (a.kind == ir::ActionKind::kForward && r.f_version >= 0)
    return fmt::format(", weights v{}", r.f_version);
  if (ir::IsBackward(a.kind) && r.b_version >= 0) return fmt::format(", weights v{}", r.b_version);
  return "";
}

}  // namespace

std::string FormatSvg(const MethodRun& run, const SvgOptions& options) {
  const ir::Program& p = run.program;
  const SimResult& r = run.result;
  const int32_t num_devices = static_cast<int32_t>(p.devices.size());
  const double width = std::max(options.width, 400);
  const double row_h = std::max(options.row_height, 10);
  const double plot_w = width - kMarginLeft - kMarginRight;

  // The time range: the makespan, stretched if any recorded action ends later.
  TimeNs span = r.makespan;
  for (const auto& dev : r.timing)
    for (const ActionTiming& t : dev) span = std::max(span, t.end);
  if (span <= 0) span = 1;
  const double scale = plot_w / static_cast<double>(span);
  auto x_of = [&](TimeNs t) { return kMarginLeft + static_cast<double>(t) * scale; };
  auto row_y = [&](int32_t d) { return kPlotTop + d * (row_h + kRowGap); };

  const double plot_bottom = row_y(std::max(num_devices, 1)) - kRowGap;
  const double axis_y = plot_bottom + 6;
  const double legend_y = axis_y + 40;

  // Which kinds and hints occur, for the legend.
  std::vector<bool> kind_seen(std::size(kKindStyles), false);
  bool hint_seen[5] = {false, false, false, false, false};
  for (const auto& dev : p.devices) {
    for (const ir::Action& a : dev) {
      for (size_t k = 0; k < std::size(kKindStyles); ++k)
        if (kKindStyles[k].kind == a.kind) kind_seen[k] = true;
      hint_seen[static_cast<int>(HintOf(a))] = true;
    }
  }
  const bool any_hint = hint_seen[1] || hint_seen[2] || hint_seen[3] || hint_seen[4];
  const double height = legend_y + (any_hint ? 44 : 22);

  std::string out;
  out += R"(<?xml version="1.0" encoding="UTF-8"?>)";
  out += '\n';
  out += fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )"
      R"(font-family="DejaVu Sans, Helvetica, Arial, sans-serif">)",
      Num(width), Num(height));
  out += '\n';
  out +=
      R"(<defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" )"
      R"svg(patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#000000" )svg"
      R"(stroke-width="2" stroke-opacity="0.45"/></pattern></defs>)";
  out += '\n';
  out +=
      fmt::format(R"(<rect class="background" x="0" y="0" width="{}" height="{}" fill="#ffffff"/>)",
                  Num(width), Num(height));
  out += '\n';

  // Title and a one-line summary.
  const std::string title =
      options.title.empty() ? MethodLabel(run) + " \u2014 makespan " + FormatDuration(r.makespan)
                            : options.title;
  out += fmt::format(R"(<text x="{}" y="{}" font-size="15" font-weight="bold">{}</text>)",
                     Num(kMarginLeft), Num(kTitleY), Escape(title));
  out += '\n';
  const std::string subtitle = fmt::format(
      "{} devices, {} stages, {} microbatches x {} minibatches; {:.1f}% idle", p.num_devices,
      p.num_stages, p.microbatches, p.minibatches, r.bubble.idle_fraction * 100.0);
  out += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="#555555">{}</text>)",
                     Num(kMarginLeft), Num(kSubtitleY), Escape(subtitle));
  out += '\n';

  // Time grid and axis.
  const TimeNs step = TickStep(span);
  const AxisUnit unit = UnitFor(step);
  out += R"(<g class="axis" font-size="10" fill="#333333">)";
  out += '\n';
  for (TimeNs t = 0; t <= span; t += step) {
    const double x = x_of(t);
    out += fmt::format(
        R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#e4e4e4" stroke-width="1"/>)", Num(x),
        Num(kPlotTop - 2), Num(axis_y));
    out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#333333"/>)", Num(x),
                       Num(axis_y), Num(axis_y + 5));
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", Num(x),
                       Num(axis_y + 16), t / unit.divisor);
    out += '\n';
  }
  out += fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="#333333"/>)",
                     Num(kMarginLeft), Num(x_of(span)), Num(axis_y));
  out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">time ({})</text>)", Num(x_of(span)),
                     Num(axis_y + 30), unit.name);
  out += "\n</g>\n";

  // Device rows: label and a baseline; idle time stays blank.
  for (int32_t d = 0; d < num_devices; ++d) {
    const double y = row_y(d);
    out += fmt::format(
        R"(<text x="{}" y="{}" font-size="12" text-anchor="end" dominant-baseline="central">dev {}</text>)",
        Num(kMarginLeft - 8), Num(y + row_h / 2), d);
    out += fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="#bbbbbb"/>)",
                       Num(kMarginLeft), Num(x_of(span)), Num(y + row_h));
    out += '\n';
  }

  // Compute actions.
  out += R"(<g class="actions" font-size="10">)";
  out += '\n';
  for (int32_t d = 0; d < num_devices; ++d) {
    const std::vector<ir::Action>& prog = p.devices[d];
    for (size_t i = 0; i < prog.size(); ++i) {
      const ir::Action& a = prog[i];
      if (!ir::IsCompute(a.kind) && a.kind != ir::ActionKind::kStep) continue;
      if (static_cast<size_t>(d) >= r.timing.size() || i >= r.timing[d].size()) continue;
      const ActionTiming& t = r.timing[d][i];
      const KindStyle& style = StyleOf(a.kind);
      const Hint hint = HintOf(a);
      const double x = x_of(t.start);
      const double w = std::max(static_cast<double>(t.end - t.start) * scale, kMinBoxWidth);
      const double y = row_y(d) + 1;
      const double h = row_h - 2;
      const std::string tooltip =
          fmt::format("dev {}: {} ({}) {} .. {} ({}){}", d, ir::ActionToken(a, true),
                      ir::KindName(a.kind), FormatDuration(t.start), FormatDuration(t.end),
                      FormatDuration(t.end - t.start), VersionText(a, r.plan));
      out += fmt::format(
          R"(<rect class="action" x="{}" y="{}" width="{}" height="{}" fill="{}" {}><title>{}</title></rect>)",
          Num(x), Num(y), Num(w), Num(h), style.fill,
          w >= kMinBorderedWidth ? BorderAttrs(hint) : R"(stroke="none")", Escape(tooltip));
      if (hint == Hint::kPredicted) {
        out += fmt::format(
            R"svg(<rect class="hatch" x="{}" y="{}" width="{}" height="{}" fill="url(#hatch)"/>)svg",
            Num(x), Num(y), Num(w), Num(h));
      }
      const std::string label =
          a.kind == ir::ActionKind::kStep ? "S" : std::to_string(a.microbatch);
      if (w >= kCharWidth * static_cast<double>(label.size()) + 4) {
        out += fmt::format(
            R"(<text x="{}" y="{}" text-anchor="middle" dominant-baseline="central" fill="{}">{}</text>)",
            Num(x + w / 2), Num(y + h / 2), style.text, Escape(label));
      }
      out += '\n';
    }
  }
  out += "</g>\n";

  // Transfers as thin lines from the sender's row at the link start to the receiver's row at
  // the arrival.
  if (options.show_transfers) {
    out += R"(<g class="transfers" stroke="#444444" stroke-width="0.6" stroke-opacity="0.6">)";
    out += '\n';
    for (const Transfer& tr : r.transfers) {
      if (tr.src_device < 0 || tr.src_device >= num_devices || tr.dst_device < 0 ||
          tr.dst_device >= num_devices) {
        continue;
      }
      const bool down = tr.dst_device > tr.src_device;
      const double y1 = row_y(tr.src_device) + (down ? row_h : 0);
      const double y2 = row_y(tr.dst_device) + (down ? 0 : row_h);
      out += fmt::format(R"(<line class="transfer" x1="{}" y1="{}" x2="{}" y2="{}"/>)",
                         Num(x_of(tr.start)), Num(y1), Num(x_of(tr.arrival)), Num(y2));
      out += '\n';
    }
    out += "</g>\n";
  }

  // Legend: the kinds that occur (all of them for an empty program), then the weight hints.
  const bool any_kind = std::find(kind_seen.begin(), kind_seen.end(), true) != kind_seen.end();
  out += R"(<g class="legend" font-size="11">)";
  out += '\n';
  double lx = kMarginLeft;
  auto legend_entry = [&](double y, const std::string& attrs, const char* text, bool hatch) {
    out += fmt::format(R"(<rect class="legend" x="{}" y="{}" width="14" height="14" {}/>)", Num(lx),
                       Num(y - 11), attrs);
    if (hatch) {
      out += fmt::format(
          R"svg(<rect class="hatch" x="{}" y="{}" width="14" height="14" fill="url(#hatch)"/>)svg",
          Num(lx), Num(y - 11));
    }
    out += fmt::format(R"(<text x="{}" y="{}">{}</text>)", Num(lx + 19), Num(y), Escape(text));
    out += '\n';
    lx += 19 + kCharWidth * 1.1 * static_cast<double>(std::string_view(text).size()) + 18;
  };
  for (size_t k = 0; k < std::size(kKindStyles); ++k) {
    if (any_kind && !kind_seen[k]) continue;
    legend_entry(
        legend_y,
        fmt::format(R"(fill="{}" stroke="#333333" stroke-width="0.5")", kKindStyles[k].fill),
        kKindStyles[k].label, false);
  }
  legend_entry(legend_y, R"(fill="#ffffff" stroke="#bbbbbb" stroke-width="0.5")", "idle", false);
  if (any_hint) {
    lx = kMarginLeft;
    const double y2 = legend_y + 22;
    const std::string plain = R"(fill="#ffffff" )";
    if (hint_seen[static_cast<int>(Hint::kStashed)])
      legend_entry(y2, plain + BorderAttrs(Hint::kStashed), "stashed weights", false);
    if (hint_seen[static_cast<int>(Hint::kPredicted)])
      legend_entry(y2, plain + BorderAttrs(Hint::kPredicted), "predicted weights", true);
    if (hint_seen[static_cast<int>(Hint::kCorrected)])
      legend_entry(y2, plain + BorderAttrs(Hint::kCorrected), "corrected weights", false);
    if (hint_seen[static_cast<int>(Hint::kOther)])
      legend_entry(y2, plain + BorderAttrs(Hint::kOther), "older buffer / explicit version", false);
  }
  out += "</g>\n</svg>\n";
  return out;
}

}  // namespace pipecast::sim
