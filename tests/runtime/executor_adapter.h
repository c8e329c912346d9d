// The one place the method tests reach the executor: trains a MethodCase with the runtime's
// current API and returns the final weights. The runtime API is being reworked; when it changes,
// only executor_adapter.cc has to follow, and every test that goes through it keeps its meaning.
#pragma once

#include <vector>

#include "common/status.h"
#include "runtime/method_case.h"

namespace pipecast::runtime::testing {

// The final weights of every virtual stage, in stage order, after the executor has run the
// method's program for the whole case. Errors: whatever generating, setting up or running the
// program reports (an unknown method or parameter, an unsupported dW rule, a NaN, ...).
Result<std::vector<std::vector<float>>> RunExecutor(const MethodCase& c);

}  // namespace pipecast::runtime::testing
