// What simulating a program of a given size costs in memory, estimated before anything is
// generated, so `pipecast sim` refuses a run that would not fit (common/limits.h's budget) with a
// message instead of dying of bad_alloc halfway.
//
// The estimate follows the data structures: the program (one ir::Action per compute action and
// step), the engine's two 8-byte arrays per stage-microbatch pair (plus the stash records of
// programs that stash), and, when a trace or an SVG is written, the lowered program, the
// timeline, the version plan and the output text. It is an upper bound within a few percent for
// the engine and a conservative one for the outputs (docs/performance.md compares it with
// measured peaks).
#pragma once

#include <cstdint>

#include "common/generators.h"

namespace pipecast::sim {

struct RunOutputs {
  bool trace = false;       // a Perfetto trace
  bool svg = false;         // an SVG timeline
  bool svg_window = false;  // of part of the run only (its text is then small)
};

// Bytes a run of `size` needs at its peak. Counts are within kMaxCount, so this fits int64.
int64_t EstimateSimulationBytes(const ir::ProgramSize& size, const RunOutputs& outputs);

}  // namespace pipecast::sim
