// Reports of `pipecast run`: the comparison table (mean ± standard deviation over seeds), JSON
// and CSV of every evaluation of every seed, the measured timeline as a Perfetto trace (the
// simulator's format), the measured per-stage costs as a scenario `pipecast sim` accepts, and
// measured against simulated time, in sample (the run's own costs) or out of sample (the costs
// of a scenario measured earlier).
#pragma once

#include <string>
#include <vector>

#include "common/job.h"
#include "common/scenario.h"
#include "runtime/trainer.h"
#include "sim/cost_model.h"

namespace pipecast::cli {

// One method's runs, one per seed (at least one).
using MethodRuns = std::vector<runtime::MethodTraining>;

// The method and its parameters, and for methods that predict weights the job's optimizer,
// whose update rule gives ΔW: "pipeoptim[adamw]", "pipeoptim(delta=exact)[adamw]".
std::string Label(const runtime::MethodTraining& t);
std::string RunTable(const ir::Job& job, const std::vector<MethodRuns>& results);
std::string RunJson(const ir::Job& job, const std::vector<MethodRuns>& results);
std::string RunCsv(const ir::Job& job, const std::vector<MethodRuns>& results);

// Mean measured duration of each action kind per virtual stage in the last segment, as a cost
// model; B is split into its input and weight passes as measured inside it, so split-backward
// schedules can be predicted from a flush run, and the plan's weight operations around an
// action are not part of it (the simulator charges them over the memory bandwidth, measured as
// a pass over the largest stage's weights from cold caches). The link's latency and its send
// and receive overheads are measured as LogP's (docs/metrics.md).
sim::CostModel MeasuredCosts(const runtime::MethodTraining& t);
// Replaces every stage's times and optimizer-state bytes by the whole model's totals shared in
// proportion to `stage_params` (and sets its weight and gradient bytes to 4 per parameter): how
// a profile of fewer, larger stages prices a program whose stages cut the model differently.
// Does nothing unless there is one parameter count per stage of `c` and their sum is positive.
void ApportionByParams(const std::vector<int64_t>& stage_params, sim::CostModel& c);
std::string MeasuredTrace(const runtime::MethodTraining& t);
std::string ProfileScenario(const ir::Job& job, const runtime::MethodTraining& t);
// Per method: measured and simulated time per minibatch of the last segment and the error in
// percent. `costs` is null for the in-sample replay (each method with its own measured costs);
// else every method is simulated with these (out of sample), built for each method's stages.
std::string CompareWithSimulation(const std::vector<MethodRuns>& results,
                                  const ir::Scenario* predict_with);

}  // namespace pipecast::cli
