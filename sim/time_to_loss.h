// Time to a target loss: a configuration's simulated time per optimizer step on the target
// cluster times the optimizer steps its method took to reach the loss in a measured run (a
// convergence profile, common/convergence.h), and the split of the difference between two
// configurations into throughput and convergence (docs/plan.md).
//
// Steps transfer from the profile's job to the target only between like steps: the method and its
// parameters must match (with their defaults filled in), and a step must take the same share of
// the global batch in both (PACI's accumulation of 4 microbatches of 8 is half of a batch of 64;
// of 16 it is a quarter). Synchronous methods without an entry of their own take a synchronous
// entry's steps: they all compute the same updates, sequential training's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/convergence.h"
#include "common/plan_space.h"
#include "sim/planner.h"

namespace pipecast::sim {

// Mean over seeds of the steps each took to bring the test loss to `target`, interpolating
// linearly between the two evaluations around the crossing (at the first evaluation when it is
// already below). nullopt when a seed never got there; `note` then says how close it came.
std::optional<double> StepsToLoss(const ir::ConvergenceMethod& method, double target,
                                  std::string* note);

// Refuses a profile that cannot speak for the scenario: one of another model type, or of another
// data set than plan.dataset asks for. Messages name the profile, the key and the fix.
Status CheckProfile(const ir::ConvergenceProfile& profile, const ir::Scenario& scenario,
                    const ir::PlanSpace& space);

// The prediction for one simulated configuration (seconds unset, with the reason in `note`, when
// the profile has no entry for it).
TimeToLoss PredictTimeToLoss(const ir::ConvergenceProfile& profile, const ir::PlanConfig& config,
                             const PlanMetrics& metrics, int64_t global_batch, double target);

// The baseline of the comparison: the best-ranked synchronous configuration with a prediction
// (entries are in rank order), and every prediction's speedup, throughput and convergence
// factors against it. nullopt when no synchronous configuration has a prediction.
std::optional<size_t> CompareWithBaseline(std::vector<PlanEntry>* entries);

}  // namespace pipecast::sim
