// Reports of `pipecast run`: the comparison table, JSON and CSV of every evaluation, the
// measured timeline as a Perfetto trace (the simulator's format), the measured per-stage costs
// as a scenario `pipecast sim` accepts, and the simulated-against-measured comparison.
#pragma once

#include <string>
#include <vector>

#include "common/job.h"
#include "runtime/trainer.h"
#include "sim/cost_model.h"

namespace pipecast::cli {

std::string Label(const runtime::MethodTraining& t);
std::string RunTable(const ir::Job& job, const std::vector<runtime::MethodTraining>& results);
std::string RunJson(const ir::Job& job, const std::vector<runtime::MethodTraining>& results);
std::string RunCsv(const ir::Job& job, const std::vector<runtime::MethodTraining>& results);

// Mean measured duration of each action kind per virtual stage in the last segment, as a cost
// model; the link's send and receive overheads are the measured device time of handing a message
// over and picking it up.
sim::CostModel MeasuredCosts(const runtime::MethodTraining& t);
std::string MeasuredTrace(const runtime::MethodTraining& t);
std::string ProfileScenario(const ir::Job& job, const runtime::MethodTraining& t);
// Per method: measured and simulated time per minibatch of the last segment, the error in
// percent, and the mean error of the actions' start times relative to the segment's length.
std::string CompareWithSimulation(const std::vector<runtime::MethodTraining>& results);

}  // namespace pipecast::cli
