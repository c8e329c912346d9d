// The size limits of pipecast, defined once and used by the scenario, schedule and job parsers,
// the generators, `pipecast schedule`, the validator and the simulator.
//
// Three kinds of limit, from hard to soft:
//   - counts (kMaxCount, kMaxMicrobatchSize): devices, virtual stages, microbatches per
//     minibatch, minibatches, total microbatches, integer method parameters and samples per
//     microbatch. They keep every index and every product of two of them inside int32/int64
//     arithmetic;
//   - schedule files (kMaxCells, kMaxInputBytes): a program that is read from, written to or
//     validated as a file has at most kMaxCells stage-microbatch pairs, and no input file is read
//     past kMaxInputBytes;
//   - memory (kDefaultMemoryBudget): `pipecast sim` estimates what a run needs before it
//     generates anything (sim/memory_estimate.h) and refuses a run above the budget, naming the
//     size and the flag that raises it (--max-memory).
#pragma once

#include <cstdint>

namespace pipecast::ir {

// Largest device, stage, microbatch, minibatch or parameter count; also the largest number of
// microbatches of all minibatches together.
inline constexpr int32_t kMaxCount = 1'000'000;

// Largest number of samples per microbatch (samples = total microbatches x this fits int64).
inline constexpr int32_t kMaxMicrobatchSize = 2'147'483'647;

// Largest number of stage-microbatch pairs (virtual stages x total microbatches) of a program
// read from or written to a schedule file, or validated.
inline constexpr int64_t kMaxCells = 10'000'000;

// Largest input file (scenario, schedule, job) read, in bytes. A larger file, or an endless one
// such as /dev/zero, is refused with a message once this many bytes were read.
inline constexpr int64_t kMaxInputBytes = int64_t{64} << 20;

// Memory `pipecast sim` may plan to use for one method, unless --max-memory says otherwise.
inline constexpr int64_t kDefaultMemoryBudget = int64_t{4} << 30;

}  // namespace pipecast::ir
