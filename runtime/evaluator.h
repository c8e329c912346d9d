// Evaluation through the devices: the test set, chunk by chunk, forward only with each stage's
// current weights; activations cross devices through a transport (evaluation keys) and the last
// stage's device adds up the loss and the correct predictions. Every process runs its own
// devices' stages in order, so the same loop serves threads in one process and one rank per
// device under MPI. With replicas, replica 0's copies evaluate (every copy holds the same
// weights).
#pragma once

#include <functional>
#include <span>

#include "common/status.h"
#include "runtime/session.h"
#include "runtime/transport.h"

namespace pipecast::runtime {

struct TestScore {
  double loss = 0;      // mean over rows (tokens for language models)
  double accuracy = 0;  // share of rows predicted right
};

// `share(root, values)` gives every process the values of process `root` (null: one process).
// REQUIRES: the devices were prepared with DeviceSetup::eval_rows == session.eval_rows().
Result<TestScore> Evaluate(Session& session, Transport& transport, Clock::duration deadline,
                           const std::function<Status(int, std::span<double>)>& share);

// The transport space an evaluation of the session needs.
MessageSpace EvalSpace(const Session& session);

}  // namespace pipecast::runtime
