// A compact encoding of a Program: the same IR, 8 bytes per action instead of sizeof(Action),
// for the simulator's fast path on large programs (a 1F1B run of 64 stages x 65536 microbatches
// holds 8.4 M actions). Generators write it directly, one device at a time, so a large program
// is never held in its full form; Expand() gives back the Program exactly, and the tests hold the
// two equal for every method.
//
// Layout of an action (low bits first): kind (4 bits), weight source (3), stage + 1 (20),
// microbatch + 1 (20), weight value (17). Every count is below kMaxCount (common/limits.h), so
// stages and microbatches always fit; a weight value above 131071 (an explicit version of a
// vertically synced PipeDream run of more microbatches) does not, and such a program is simply
// not encodable (the caller keeps the Program).
#pragma once

#include <cstdint>
#include <vector>

#include "common/generators.h"
#include "common/ir.h"
#include "common/status.h"

namespace pipecast::ir {

struct CompactProgram {
  Program header;  // everything but the actions (its devices are empty)
  std::vector<std::vector<uint64_t>> devices;

  static constexpr int32_t kValueBits = 17;
  static bool Fits(const Action& a) {
    return a.stage >= -1 && a.stage < (1 << 20) - 1 && a.microbatch >= -1 &&
           a.microbatch < (1 << 20) - 1 && a.weights.value >= 0 &&
           a.weights.value < (1 << kValueBits);
  }
  // REQUIRES: Fits(a).
  static uint64_t Pack(const Action& a) {
    return static_cast<uint64_t>(a.kind) | static_cast<uint64_t>(a.weights.source) << 4 |
           static_cast<uint64_t>(a.stage + 1) << 7 | static_cast<uint64_t>(a.microbatch + 1) << 27 |
           static_cast<uint64_t>(a.weights.value) << 47;
  }
  static Action Unpack(uint64_t x) {
    Action a;
    a.kind = static_cast<ActionKind>(x & 0xF);
    a.weights.source = static_cast<WeightSource>(x >> 4 & 0x7);
    a.stage = static_cast<int32_t>(x >> 7 & 0xFFFFF) - 1;
    a.microbatch = static_cast<int32_t>(x >> 27 & 0xFFFFF) - 1;
    a.weights.value = static_cast<int32_t>(x >> 47);
    return a;
  }

  // The Program this encodes.
  Program Expand() const;
};

// What Generate produces, encoded device by device (the full Program is never built). Errors:
// Generate's, and kInvalidArgument when an action does not fit the encoding (then Generate).
Result<CompactProgram> GenerateCompact(const GenerateOptions& options);

}  // namespace pipecast::ir
