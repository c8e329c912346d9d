// Internal to the SVG writer (svg.cc): layout constants, colours and border styles per action
// kind and weight hint, the time axis's ticks, and text escaping.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/ir.h"
#include "common/version_plan.h"
#include "sim/cost_model.h"

namespace pipecast::sim::internal {

// Layout, in px.
constexpr double kMarginLeft = 64;   // room for "dev 12"
constexpr double kMarginRight = 40;  // room for the last tick label
constexpr double kTitleY = 22;
constexpr double kSubtitleY = 40;
constexpr double kPlotTop = 54;
constexpr double kRowGap = 4;
constexpr double kMinBoxWidth = 0.5;  // very short actions stay visible
// All-reduces and averages: a strip this high along the bottom of the device's row.
constexpr double kCollectiveHeight = 4;
constexpr const char* kCollectiveFill = "#d95f02";
// Narrower boxes get no border: in dense schedules borders would hide the fill colours. Their
// weight hints then show only as hatching (predicted) and in the tooltip.
constexpr double kMinBorderedWidth = 4;
constexpr double kCharWidth = 6.2;       // estimated width of one label character at 10px
constexpr double kSmallCharWidth = 4.6;  // ... at 7.5px, for boxes too narrow for 10px
constexpr double kLightestChunk = 0.6;   // the last chunk's colour is this much white
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

inline const KindStyle& StyleOf(ir::ActionKind kind) {
  for (const KindStyle& s : kKindStyles)
    if (s.kind == kind) return s;
  return kKindStyles[0];
}

// How non-current weights are hinted; `attrs` are extra attributes of the action's rectangle.
enum class Hint { kNone, kStashed, kPredicted, kCorrected, kOther };

inline Hint HintOf(const ir::Action& a) {
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

inline const char* BorderAttrs(Hint h) {
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

inline std::string Escape(std::string_view s) {
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
inline TimeNs TickStep(TimeNs span) {
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
inline AxisUnit UnitFor(TimeNs step) {
  if (step >= 1'000'000'000) return {1'000'000'000, "s"};
  if (step >= 1'000'000) return {1'000'000, "ms"};
  if (step >= 1'000) return {1'000, "µs"};
  return {1, "ns"};
}

inline std::string Num(double v) { return fmt::format("{:.2f}", v); }

inline std::string VersionText(const ir::Action& a, const ir::VersionPlan& v) {
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

// `hex` ("#RRGGBB") mixed with white: 0 keeps it, 1 is white.
inline std::string Lighter(const char* hex, double white) {
  auto channel = [&](int i) {
    const int v = std::stoi(std::string(hex + 1 + 2 * i, 2), nullptr, 16);
    return static_cast<int>(v + (255 - v) * white + 0.5);
  };
  return fmt::format("#{:02X}{:02X}{:02X}", channel(0), channel(1), channel(2));
}

// Black or white, whichever reads better on `hex`.
inline const char* TextOn(const std::string& hex) {
  auto channel = [&](int i) { return std::stoi(hex.substr(1 + 2 * i, 2), nullptr, 16) / 255.0; };
  const double luminance = 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
  return luminance > 0.45 ? "#000000" : "#ffffff";
}

}  // namespace pipecast::sim::internal
