// Checkpoints of a training run: every stage's state read through its device (Device::State:
// weights, optimizer state, PipeMare's velocity), the run's position (segment, minibatches,
// each device's step count, wall time) and its evaluation history, written atomically as
// safetensors after each evaluation. Segments end drained (no stash, copy or activation is
// live), so this is the run's whole state and a resumed run is bit-identical to an
// uninterrupted one. A checkpoint names the run it belongs to (job, method, parameters, seed,
// epochs, data_parallel when > 1); another run's checkpoint is refused. With replicas, the
// stage's replica-0 copy is saved (every copy holds the same state) and loaded into every copy;
// AvgPipe's copies differ, so each of them is saved (with its reference weights W~) and loaded
// into itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "runtime/session.h"

namespace pipecast::runtime {

// What a checkpoint records besides the stages' state. `evaluations` is opaque JSON text.
struct RunPosition {
  int64_t segment = 0;      // segments done
  int64_t minibatches = 0;  // minibatches done
  double wall_s = 0;
  std::vector<int64_t> steps_before;  // per device
  std::string evaluations_json = "[]";
};

// The identity a checkpoint of this session carries.
std::string RunIdentity(const Session& session);

// REQUIRES: every device of the session is local (one process).
Status SaveCheckpoint(const std::string& path, Session& session, const RunPosition& position);
// Loads the stages' state into the session's devices and returns the position. Errors: a
// checkpoint of another run (naming it), a corrupt or incomplete file.
Result<RunPosition> LoadCheckpoint(const std::string& path, Session& session);

}  // namespace pipecast::runtime
