// Data parallelism over pipelines: R copies of a program, each on its own devices and its own
// microbatches, with every stage's gradients all-reduced over the copies before each Step.
#pragma once

#include <cstdint>

#include "common/ir.h"
#include "common/status.h"

namespace pipecast::ir {

// `base` run by `r` data-parallel copies. Copy c (0-based) occupies devices
// [c·D, (c+1)·D) with base's placement shifted by c·D, and runs microbatches c·M .. c·M + M - 1
// of every minibatch, where M is base's microbatches per minibatch: the result has r·M
// microbatches per minibatch (the global batch grows with r; microbatch j of copy c in
// minibatch n is global microbatch n·r·M + c·M + j). A base program that already has replicas
// (Chimera) keeps its own all-reduces, which now span all r·replicas copies; one without gets,
// before each Step on a device, an all-reduce of every stage on it in ascending stage order
// (round k before the device's (k+1)-th Step), so synchronous methods reduce once per
// minibatch and asynchronous ones on their own update cadence. Device programs are base's with
// microbatch indices remapped (sends and receives too: every copy is base shifted).
// Errors (kInvalidArgument): r < 1, or sizes beyond common/limits.h.
Result<Program> ReplicateForDataParallel(const Program& base, int32_t r);

// How the copies of ReplicateCopies stay together.
struct ReplicaSync {
  enum class Kind : uint8_t {
    kAllReduce,  // an all-reduce of every stage's gradients before each Step (data parallelism)
    kAverage,    // an elastic averaging of every stage's weights after every period-th Step
  };
  Kind kind = Kind::kAllReduce;
  int32_t period = 1;  // kAverage: Steps between averagings
  // kAverage: Steps each device took before this program, so that a run cut into programs
  // averages on one cadence: the first average follows the Step that makes phase + k a multiple
  // of period.
  int32_t phase = 0;
};

// ReplicateForDataParallel with the copies kept together by `sync`; kAverage puts, after every
// period-th Step of a device, an average (AV) of every stage on it in ascending stage order.
Result<Program> ReplicateCopies(const Program& base, int32_t r, const ReplicaSync& sync);

}  // namespace pipecast::ir
