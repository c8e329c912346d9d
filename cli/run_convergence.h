// The convergence profile of a `pipecast run` (common/convergence.h): per method and seed, the
// test loss and accuracy at every evaluation against optimizer steps and samples, and the job
// they come from. `pipecast plan` reads it to predict time to a target loss.
#pragma once

#include <vector>

#include "cli/run_report.h"
#include "common/convergence.h"
#include "common/job.h"

namespace pipecast::cli {

ir::ConvergenceProfile ConvergenceProfileOf(const ir::Job& job,
                                            const std::vector<MethodRuns>& results);

}  // namespace pipecast::cli
