// Internal to the validator (validate.cc): where each (stage, microbatch)'s actions sit, and the
// dependency-cycle search (validate_cycles.cc).
#pragma once

#include <cstdint>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "common/ir.h"

namespace pipecast::ir::internal {

// Where an action sits: device and index in its program; device -1 = absent.
struct Loc {
  int32_t device = -1;
  int32_t index = -1;
  bool present() const { return device >= 0; }
  friend bool operator==(const Loc&, const Loc&) = default;
};

// The compute actions of one (stage, microbatch).
struct Cell {
  Loc forward, backward, weight_grad;
};

// The communication actions of one (stage, microbatch), by the stage that carries them.
struct CommCell {
  Loc send_activation, recv_activation, send_gradient, recv_gradient;
};

// The actions of a program by (stage, microbatch): cells[stage * total + microbatch]; `comm`
// is empty for a program without sends and receives.
struct CellIndex {
  int32_t num_stages = 0;
  int32_t total = 0;
  std::vector<Cell> cells;
  std::vector<CommCell> comm;
  // (kind, stage, round) -> the collective (all-reduce or average) of each replica (index r),
  // for programs with replicas.
  std::map<std::tuple<ActionKind, int32_t, int32_t>, std::vector<Loc>> all_reduce;
  const Cell& At(int32_t stage, int32_t mb) const {
    return cells[static_cast<size_t>(stage) * total + mb];
  }
  const CommCell& CommAt(int32_t stage, int32_t mb) const {
    return comm[static_cast<size_t>(stage) * total + mb];
  }
};

// One dependency cycle of the program, in dependency order (each action needs the one before
// it, the first needs the last), or empty when every action can run. The dependencies are those
// of docs/schedule-formats.md rule 11: program order on each device, F(s-1, j) -> F(s, j),
// B/I(s+1, j) -> B/I(s, j), F(last, j) -> B/I(last, j), I(s, j) -> W(s, j), with
// communication, producer -> send -> receive -> consumer, and an all-reduce runs once every
// replica of its stage has reached its all-reduce of the same round (a rendezvous).
//
// A dry run finds it in linear time and memory: every device advances through its program while
// the dependencies of its next action have run; when none can advance, each stuck device waits
// for an action of a device that is stuck before it, and following those waits from the lowest
// stuck device closes a cycle. REQUIRES: a program without structural errors or missing actions.
std::vector<Loc> FindCycle(const Program& p, const CellIndex& index);

}  // namespace pipecast::ir::internal
