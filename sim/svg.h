// SVG timeline of one simulated run: a picture a person can look at (docs/outputs.md, "SVG").
//
// One row per device ("dev k"), time to the right on an axis with ticks in human units, one box
// per compute action coloured by kind (F, B, I, W, optimizer step), the microbatch number inside
// boxes wide enough for it, idle time blank, and a legend. Actions that compute with weights other
// than the current ones are marked: a heavy border for stashed weights, hatching for predicted
// weights, a dashed border for PipeMare-corrected weights and a dotted border for an older buffer
// or an explicit version. Each box carries a <title> tooltip (token, times, version). A window
// (a time or minibatch range) draws part of a large run, so it does not become a barcode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "sim/report.h"

namespace pipecast::sim {

// Which part of the run to draw: all of it, a time range, or a range of minibatches.
struct SvgWindow {
  enum class Kind { kAll, kTime, kMinibatches };
  Kind kind = Kind::kAll;
  int64_t from = 0;  // ns for kTime; the first minibatch (0-based) for kMinibatches
  int64_t to = 0;    // ns; the last minibatch, inclusive
};

// "2ms:5ms" (times, a unit required) or "3:4" (minibatches 3 to 4, 0-based, inclusive).
// Errors (kInvalidArgument) say which form to write.
Result<SvgWindow> ParseSvgWindow(std::string_view text);

struct SvgOptions {
  int width = 1200;             // total picture width in px; the time range fills what labels leave
  int row_height = 26;          // px per device row
  bool show_transfers = false;  // draw each transfer as a thin line from send to arrival
  std::string title;            // replaces the default title "<method label> — makespan <time>"
  SvgWindow window;             // the time range drawn (default: the whole run)
};

// A standalone SVG document (XML declaration, xmlns), UTF-8, text escaped. Needs
// run.result.timing; without it the rows are empty. Deterministic output. Actions that take no
// time are not drawn; on a device holding several virtual stages (interleaved chunks, replicas)
// each stage's boxes get their own shade of the kind's colour, lighter for later chunks.
std::string FormatSvg(const MethodRun& run, const SvgOptions& options = {});

}  // namespace pipecast::sim
