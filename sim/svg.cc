#include "sim/svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/ir.h"
#include "common/units.h"
#include "sim/svg_style.h"

namespace pipecast::sim {
namespace {

using namespace internal;  // NOLINT: the writer's own layout and styles

// Writes one run's picture; each method draws one layer of it, top to bottom.
class SvgWriter {
 public:
  SvgWriter(const MethodRun& run, const SvgOptions& options)
      : run_(run), p_(run.program), r_(run.result), o_(options) {}

  std::string Render() {
    Layout();
    Header();
    Axis();
    Rows();
    Actions();
    Collectives();
    if (o_.show_transfers) Transfers();
    Legend();
    out_ += "</svg>\n";
    return std::move(out_);
  }

 private:
  // The time range [t0_, t1_] drawn and the scale, the chunks of every device, and what the legend
  // lists (the kinds and hints of the boxes drawn).
  void Layout();
  void Header();
  void Axis();
  void Rows();
  void Actions();
  // All-reduces and averages as a strip along the bottom of their device's row (they run on the
  // device's collective channel, beside its compute).
  void Collectives();
  void Transfers();
  // The placement entry (replica × stages + stage) of the copy of `stage` on device d.
  size_t Entry(int32_t d, int32_t stage) const {
    const int32_t r = p_.replicas > 1 ? std::max(p_.replica_on(stage, d), 0) : 0;
    return static_cast<size_t>(r) * static_cast<size_t>(p_.num_stages) + static_cast<size_t>(stage);
  }
  void Legend();
  void LegendEntry(double y, const std::string& attrs, std::string_view text, bool hatch);

  bool Drawn(const ActionTiming& t) const {
    return t.end > t.start && t.end > t0_ && t.start < t1_;
  }
  double X(TimeNs t) const { return kMarginLeft + static_cast<double>(t - t0_) * scale_; }
  double RowY(int32_t d) const { return kPlotTop + d * (row_h_ + kRowGap); }
  const ActionTiming* TimingOf(int32_t d, size_t i) const {
    if (static_cast<size_t>(d) >= r_.timing.size() || i >= r_.timing[d].size()) return nullptr;
    return &r_.timing[d][i];
  }

  const MethodRun& run_;
  const ir::Program& p_;
  const SimResult& r_;
  const SvgOptions& o_;
  std::string out_;
  int32_t devices_ = 0;
  double width_ = 0, row_h_ = 0, scale_ = 1, axis_y_ = 0, legend_y_ = 0, height_ = 0;
  TimeNs t0_ = 0, t1_ = 1;
  std::vector<int32_t> chunk_;   // per virtual stage: its rank among its device's stages
  std::vector<int32_t> chunks_;  // per device: its virtual stages
  int32_t max_chunks_ = 1;
  bool collective_seen_ = false;  // an all-reduce or average is drawn (the legend lists it)
  // Some device holds copies of different replicas (Chimera, GEMS): its shades are copies, not
  // chunks (data-parallel copies of an interleaved pipeline keep chunks).
  bool copies_share_ = false;
  double legend_x_ = 0;
  std::vector<bool> kind_seen_ = std::vector<bool>(std::size(kKindStyles), false);
  bool hint_seen_[5] = {false, false, false, false, false};
};

void SvgWriter::Layout() {
  devices_ = static_cast<int32_t>(p_.devices.size());
  width_ = std::max(o_.width, 400);
  row_h_ = std::max(o_.row_height, 10);
  // The whole run: the makespan, stretched if any recorded action ends later.
  TimeNs span = r_.makespan;
  for (const auto& dev : r_.timing)
    for (const ActionTiming& t : dev) span = std::max(span, t.end);
  t0_ = 0;
  t1_ = span;
  if (o_.window.kind == SvgWindow::Kind::kTime) {
    t0_ = std::clamp<TimeNs>(o_.window.from, 0, span);
    t1_ = std::clamp<TimeNs>(o_.window.to, t0_, span);
  } else if (o_.window.kind == SvgWindow::Kind::kMinibatches) {
    // From the first start to the last end of the minibatches' compute actions.
    TimeNs first = -1, last = -1;
    const int64_t lo = o_.window.from * p_.microbatches, hi = (o_.window.to + 1) * p_.microbatches;
    for (int32_t d = 0; d < devices_; ++d) {
      for (size_t i = 0; i < p_.devices[d].size(); ++i) {
        const ir::Action& a = p_.devices[d][i];
        const ActionTiming* t = TimingOf(d, i);
        if (t == nullptr || !ir::IsCompute(a.kind) || a.microbatch < lo || a.microbatch >= hi) {
          continue;
        }
        first = first < 0 ? t->start : std::min(first, t->start);
        last = std::max(last, t->end);
      }
    }
    if (first >= 0) t0_ = first, t1_ = last;
  }
  if (t1_ <= t0_) t1_ = t0_ + 1;
  scale_ = (width_ - kMarginLeft - kMarginRight) / static_cast<double>(t1_ - t0_);
  axis_y_ = RowY(std::max(devices_, 1)) - kRowGap + 6;
  legend_y_ = axis_y_ + 40;

  chunk_.assign(p_.placement.size(), 0);
  chunks_.assign(static_cast<size_t>(std::max(devices_, 0)), 0);
  std::vector<int32_t> first_replica(static_cast<size_t>(std::max(devices_, 0)), -1);
  for (size_t s = 0; s < p_.placement.size(); ++s) {
    const int32_t d = p_.placement[s];
    if (d < 0 || d >= devices_) continue;
    chunk_[s] = chunks_[d]++;
    const auto replica = static_cast<int32_t>(s / static_cast<size_t>(std::max(p_.num_stages, 1)));
    if (first_replica[d] < 0) first_replica[d] = replica;
    copies_share_ = copies_share_ || first_replica[d] != replica;
    max_chunks_ = std::max(max_chunks_, chunks_[d]);
  }
  bool any_drawn = false;
  for (int32_t d = 0; d < devices_; ++d) {
    for (size_t i = 0; i < p_.devices[d].size(); ++i) {
      const ir::Action& a = p_.devices[d][i];
      const ActionTiming* t = TimingOf(d, i);
      if (t == nullptr || !Drawn(*t) || (!ir::IsCompute(a.kind) && a.kind != ir::ActionKind::kStep))
        continue;
      any_drawn = true;
      for (size_t k = 0; k < std::size(kKindStyles); ++k)
        if (kKindStyles[k].kind == a.kind) kind_seen_[k] = true;
      hint_seen_[static_cast<int>(HintOf(a))] = true;
    }
  }
  if (!any_drawn) {  // an untimed run: what the program holds
    for (const auto& dev : p_.devices) {
      for (const ir::Action& a : dev) {
        for (size_t k = 0; k < std::size(kKindStyles); ++k)
          if (kKindStyles[k].kind == a.kind) kind_seen_[k] = true;
        hint_seen_[static_cast<int>(HintOf(a))] = true;
      }
    }
  }
  const bool any_hint = hint_seen_[1] || hint_seen_[2] || hint_seen_[3] || hint_seen_[4];
  height_ = legend_y_ + 22 + (any_hint ? 22 : 0) + (max_chunks_ > 1 ? 22 : 0);
}

void SvgWriter::Header() {
  out_ += R"(<?xml version="1.0" encoding="UTF-8"?>)";
  out_ += '\n';
  out_ += fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" )"
      R"(font-family="DejaVu Sans, Helvetica, Arial, sans-serif">)",
      Num(width_), Num(height_));
  out_ += '\n';
  out_ +=
      R"(<defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" )"
      R"svg(patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#000000" )svg"
      R"(stroke-width="2" stroke-opacity="0.45"/></pattern></defs>)";
  out_ += '\n';
  out_ +=
      fmt::format(R"(<rect class="background" x="0" y="0" width="{}" height="{}" fill="#ffffff"/>)",
                  Num(width_), Num(height_));
  out_ += '\n';
  // Title and a one-line summary.
  const std::string title =
      o_.title.empty() ? MethodLabel(run_) + " \u2014 makespan " + FormatDuration(r_.makespan)
                       : o_.title;
  out_ += fmt::format(R"(<text x="{}" y="{}" font-size="15" font-weight="bold">{}</text>)",
                      Num(kMarginLeft), Num(kTitleY), Escape(title));
  out_ += '\n';
  std::string subtitle = fmt::format(
      "{} devices, {} stages, {} microbatches x {} minibatches; {:.1f}% idle", p_.num_devices,
      p_.num_stages, p_.microbatches, p_.minibatches, r_.bubble.idle_fraction * 100.0);
  if (o_.window.kind == SvgWindow::Kind::kMinibatches && o_.window.from == o_.window.to) {
    subtitle += fmt::format("; minibatch {}", o_.window.from);
  } else if (o_.window.kind == SvgWindow::Kind::kMinibatches) {
    subtitle += fmt::format("; minibatches {}-{}", o_.window.from, o_.window.to);
  }
  if (o_.window.kind != SvgWindow::Kind::kAll) {
    subtitle += fmt::format(" ({} to {})", FormatDuration(t0_), FormatDuration(t1_));
  }
  out_ += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="#555555">{}</text>)",
                      Num(kMarginLeft), Num(kSubtitleY), Escape(subtitle));
  out_ += '\n';
}

void SvgWriter::Axis() {
  const TimeNs step = TickStep(t1_ - t0_);
  const AxisUnit unit = UnitFor(step);
  out_ += R"(<g class="axis" font-size="10" fill="#333333">)";
  out_ += '\n';
  for (TimeNs t = (t0_ + step - 1) / step * step; t <= t1_; t += step) {
    const double x = X(t);
    out_ += fmt::format(
        R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#e4e4e4" stroke-width="1"/>)", Num(x),
        Num(kPlotTop - 2), Num(axis_y_));
    out_ += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#333333"/>)", Num(x),
                        Num(axis_y_), Num(axis_y_ + 5));
    out_ += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", Num(x),
                        Num(axis_y_ + 16), t / unit.divisor);
    out_ += '\n';
  }
  out_ += fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="#333333"/>)",
                      Num(kMarginLeft), Num(X(t1_)), Num(axis_y_));
  out_ += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">time ({})</text>)", Num(X(t1_)),
                      Num(axis_y_ + 30), unit.name);
  out_ += "\n</g>\n";
}

// Device rows: label and a baseline; idle time stays blank.
void SvgWriter::Rows() {
  for (int32_t d = 0; d < devices_; ++d) {
    const double y = RowY(d);
    out_ += fmt::format(
        R"(<text x="{}" y="{}" font-size="12" text-anchor="end" dominant-baseline="central">dev {}</text>)",
        Num(kMarginLeft - 8), Num(y + row_h_ / 2), d);
    out_ += fmt::format(R"(<line x1="{0}" y1="{2}" x2="{1}" y2="{2}" stroke="#bbbbbb"/>)",
                        Num(kMarginLeft), Num(X(t1_)), Num(y + row_h_));
    out_ += '\n';
  }
}

void SvgWriter::Actions() {
  out_ += R"(<g class="actions" font-size="10">)";
  out_ += '\n';
  for (int32_t d = 0; d < devices_; ++d) {
    const std::vector<ir::Action>& prog = p_.devices[d];
    for (size_t i = 0; i < prog.size(); ++i) {
      const ir::Action& a = prog[i];
      if (!ir::IsCompute(a.kind) && a.kind != ir::ActionKind::kStep) continue;
      const ActionTiming* t = TimingOf(d, i);
      if (t == nullptr || !Drawn(*t)) continue;  // zero-length or outside the window
      const KindStyle& style = StyleOf(a.kind);
      const Hint hint = HintOf(a);
      // One shade per virtual stage of a device that holds several (chunks, replicas).
      std::string fill = style.fill;
      const char* text = style.text;
      const size_t entry = a.stage >= 0 ? Entry(d, a.stage) : chunk_.size();
      const int32_t chunks = entry < chunk_.size() ? chunks_[static_cast<size_t>(d)] : 1;
      if (chunks > 1) {
        fill = Lighter(style.fill, kLightestChunk * chunk_[entry] / (chunks - 1));
        text = TextOn(fill);
      }
      const TimeNs from = std::max(t->start, t0_), to = std::min(t->end, t1_);
      const double x = X(from);
      const double w = std::max(static_cast<double>(to - from) * scale_, kMinBoxWidth);
      const double y = RowY(d) + 1;
      const double h = row_h_ - 2;
      const std::string tooltip =
          fmt::format("dev {}: {} ({}) {} .. {} ({}){}", d, ir::ActionToken(a, true),
                      ir::KindName(a.kind), FormatDuration(t->start), FormatDuration(t->end),
                      FormatDuration(t->end - t->start), VersionText(a, r_.plan));
      out_ += fmt::format(
          R"(<rect class="action" x="{}" y="{}" width="{}" height="{}" fill="{}" {}><title>{}</title></rect>)",
          Num(x), Num(y), Num(w), Num(h), fill,
          w >= kMinBorderedWidth ? BorderAttrs(hint) : R"(stroke="none")", Escape(tooltip));
      if (hint == Hint::kPredicted) {
        out_ += fmt::format(
            R"svg(<rect class="hatch" x="{}" y="{}" width="{}" height="{}" fill="url(#hatch)"/>)svg",
            Num(x), Num(y), Num(w), Num(h));
      }
      const std::string label =
          a.kind == ir::ActionKind::kStep ? "S" : std::to_string(a.microbatch);
      const auto chars = static_cast<double>(label.size());
      if (w >= kCharWidth * chars + 4) {
        out_ += fmt::format(
            R"(<text x="{}" y="{}" text-anchor="middle" dominant-baseline="central" fill="{}">{}</text>)",
            Num(x + w / 2), Num(y + h / 2), text, Escape(label));
      } else if (w >= kSmallCharWidth * chars + 2) {
        out_ += fmt::format(
            R"(<text x="{}" y="{}" text-anchor="middle" dominant-baseline="central" font-size="7.5" fill="{}">{}</text>)",
            Num(x + w / 2), Num(y + h / 2), text, Escape(label));
      }
      out_ += '\n';
    }
  }
  out_ += "</g>\n";
}

void SvgWriter::Collectives() {
  out_ += R"(<g class="collectives">)";
  out_ += '\n';
  for (int32_t d = 0; d < devices_; ++d) {
    const std::vector<ir::Action>& prog = p_.devices[d];
    for (size_t i = 0; i < prog.size(); ++i) {
      const ir::Action& a = prog[i];
      if (!ir::IsCollective(a.kind)) continue;
      const ActionTiming* t = TimingOf(d, i);
      if (t == nullptr || !Drawn(*t)) continue;
      collective_seen_ = true;
      const TimeNs from = std::max(t->start, t0_), to = std::min(t->end, t1_);
      const double w = std::max(static_cast<double>(to - from) * scale_, kMinBoxWidth);
      const std::string tooltip = fmt::format(
          "dev {}: {} of stage {}, round {}: {} .. {} ({})", d, ir::KindName(a.kind), a.stage,
          a.microbatch, FormatDuration(t->start), FormatDuration(t->end),
          FormatDuration(t->end - t->start));
      out_ += fmt::format(
          R"(<rect class="collective" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>)",
          Num(X(from)), Num(RowY(d) + row_h_ - kCollectiveHeight), Num(w),
          Num(kCollectiveHeight), kCollectiveFill, Escape(tooltip));
      out_ += '\n';
    }
  }
  out_ += "</g>\n";
}

// Transfers as thin lines from the sender's row at the link start to the receiver's row at the
// arrival, cut to the window.
void SvgWriter::Transfers() {
  out_ += R"(<g class="transfers" stroke="#444444" stroke-width="0.6" stroke-opacity="0.6">)";
  out_ += '\n';
  for (const Transfer& tr : r_.transfers) {
    if (tr.src_device < 0 || tr.src_device >= devices_ || tr.dst_device < 0 ||
        tr.dst_device >= devices_ || tr.arrival < t0_ || tr.start > t1_) {
      continue;
    }
    const bool down = tr.dst_device > tr.src_device;
    double y1 = RowY(tr.src_device) + (down ? row_h_ : 0);
    double y2 = RowY(tr.dst_device) + (down ? 0 : row_h_);
    const double span = static_cast<double>(std::max<TimeNs>(tr.arrival - tr.start, 1));
    const TimeNs a = std::max(tr.start, t0_), b = std::min(tr.arrival, t1_);
    const double ya = y1 + (y2 - y1) * static_cast<double>(a - tr.start) / span;
    const double yb = y1 + (y2 - y1) * static_cast<double>(b - tr.start) / span;
    y1 = ya;
    y2 = yb;
    out_ += fmt::format(R"(<line class="transfer" x1="{}" y1="{}" x2="{}" y2="{}"/>)", Num(X(a)),
                        Num(y1), Num(X(b)), Num(y2));
    out_ += '\n';
  }
  out_ += "</g>\n";
}

void SvgWriter::LegendEntry(double y, const std::string& attrs, std::string_view text, bool hatch) {
  out_ += fmt::format(R"(<rect class="legend" x="{}" y="{}" width="14" height="14" {}/>)",
                      Num(legend_x_), Num(y - 11), attrs);
  if (hatch) {
    out_ += fmt::format(
        R"svg(<rect class="hatch" x="{}" y="{}" width="14" height="14" fill="url(#hatch)"/>)svg",
        Num(legend_x_), Num(y - 11));
  }
  out_ +=
      fmt::format(R"(<text x="{}" y="{}">{}</text>)", Num(legend_x_ + 19), Num(y), Escape(text));
  out_ += '\n';
  legend_x_ += 19 + kCharWidth * 1.1 * static_cast<double>(text.size()) + 18;
}

// The kinds drawn (all of them when nothing is), idle, then the weight hints and the chunk
// shades that occur.
void SvgWriter::Legend() {
  const bool any_kind = std::find(kind_seen_.begin(), kind_seen_.end(), true) != kind_seen_.end();
  out_ += R"(<g class="legend" font-size="11">)";
  out_ += '\n';
  legend_x_ = kMarginLeft;
  for (size_t k = 0; k < std::size(kKindStyles); ++k) {
    if (any_kind && !kind_seen_[k]) continue;
    LegendEntry(
        legend_y_,
        fmt::format(R"(fill="{}" stroke="#333333" stroke-width="0.5")", kKindStyles[k].fill),
        kKindStyles[k].label, false);
  }
  LegendEntry(legend_y_, R"(fill="#ffffff" stroke="#bbbbbb" stroke-width="0.5")", "idle", false);
  if (collective_seen_) {
    LegendEntry(legend_y_, fmt::format(R"(fill="{}" stroke="none")", kCollectiveFill),
                "all-reduce / average (collective channel)", false);
  }
  double y = legend_y_;
  if (hint_seen_[1] || hint_seen_[2] || hint_seen_[3] || hint_seen_[4]) {
    legend_x_ = kMarginLeft;
    y += 22;
    const std::string plain = R"(fill="#ffffff" )";
    if (hint_seen_[static_cast<int>(Hint::kStashed)])
      LegendEntry(y, plain + BorderAttrs(Hint::kStashed), "stashed weights", false);
    if (hint_seen_[static_cast<int>(Hint::kPredicted)])
      LegendEntry(y, plain + BorderAttrs(Hint::kPredicted), "predicted weights", true);
    if (hint_seen_[static_cast<int>(Hint::kCorrected)])
      LegendEntry(y, plain + BorderAttrs(Hint::kCorrected), "corrected weights", false);
    if (hint_seen_[static_cast<int>(Hint::kOther)])
      LegendEntry(y, plain + BorderAttrs(Hint::kOther), "older buffer / explicit version", false);
  }
  if (max_chunks_ > 1) {  // the shades of a device's virtual stages, in F's colour
    legend_x_ = kMarginLeft;
    y += 22;
    for (int32_t c = 0; c < max_chunks_; ++c) {
      const std::string fill =
          Lighter(StyleOf(ir::ActionKind::kForward).fill, kLightestChunk * c / (max_chunks_ - 1));
      LegendEntry(y, fmt::format(R"(fill="{}" stroke="#333333" stroke-width="0.5")", fill),
                  (copies_share_ ? "copy " : "chunk ") + std::to_string(c), false);
    }
    const char* what = copies_share_ ? "stage copies in replica order" : "virtual stages in order";
    out_ += fmt::format(R"(<text x="{}" y="{}" fill="#555555">(a device's {}, every kind )"
                        R"(shaded alike)</text>)",
                        Num(legend_x_), Num(y), what);
    out_ += '\n';
  }
  out_ += "</g>\n";
}

}  // namespace

Result<SvgWindow> ParseSvgWindow(std::string_view text) {
  const std::string kUsage =
      "--svg-window: expected FROM:TO, times with a unit (2ms:5ms) or minibatch numbers (3:4, "
      "0-based, inclusive), got '" +
      std::string(text) + "'";
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return InvalidArgument(kUsage);
  const std::string_view a = text.substr(0, colon), b = text.substr(colon + 1);
  auto whole = [](std::string_view s, int64_t* out) {
    if (s.empty() || s.size() > 9) return false;
    int64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
  };
  SvgWindow w;
  if (whole(a, &w.from) && whole(b, &w.to)) {
    if (w.to < w.from) return InvalidArgument(kUsage + " (TO is before FROM)");
    w.kind = SvgWindow::Kind::kMinibatches;
    return w;
  }
  auto has_unit = [](std::string_view s) {
    return !s.empty() && ((s.back() >= 'a' && s.back() <= 'z') || s.back() == '\xb5');
  };
  Result<int64_t> from = ir::ParseDuration(a), to = ir::ParseDuration(b);
  if (!has_unit(a) || !has_unit(b) || !from.ok() || !to.ok() || *to <= *from) {
    return InvalidArgument(kUsage);
  }
  w.kind = SvgWindow::Kind::kTime;
  w.from = *from;
  w.to = *to;
  return w;
}

std::string FormatSvg(const MethodRun& run, const SvgOptions& options) {
  return SvgWriter(run, options).Render();
}

}  // namespace pipecast::sim
