// What `pipecast report` shows, joined across its inputs: each method once, with its simulation
// (from a sim JSON) and its runs (one per seed, from run JSONs), matched by method name and
// parameters; and the statistics over seeds the charts and tables need.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/report_inputs.h"

namespace pipecast::cli::report {

// One method across the inputs.
struct MethodView {
  std::string label;  // the simulation's label ("paci(a=4)"), else the run's ("pipeoptim[sgd]")
  const SimMethod* sim = nullptr;
  std::vector<const RunResult*> runs;  // one per seed, in input order
  size_t colour = 0;                   // index into sim::kSeriesColours (cycled), per method
};

struct ReportModel {
  const Inputs* inputs = nullptr;
  std::string scenario;               // the scenario's (or job's) name
  std::vector<MethodView> methods;    // simulated ones in input order, then runs not simulated
  int64_t device_memory_bytes = 0;    // from the sims; 0 = unknown or unlimited
  int64_t samples_per_minibatch = 0;  // of the runs' job (0 without runs)
  const PlanInput* plan = nullptr;
  // The devices of a sim have capacities of their own that differ (stages[].memory_capacity_bytes):
  // no one capacity describes them, and device_memory_bytes is neither drawn nor quoted.
  bool capacities_differ = false;
};

ReportModel BuildModel(const Inputs& inputs);

// Mean, sample standard deviation, minimum and maximum of some values (0 sd for one value).
struct Spread {
  double mean = 0, sd = 0, min = 0, max = 0;
  size_t n = 0;
};
Spread SpreadOf(const std::vector<double>& values);

// Over a method's seeds.
Spread FinalAccuracy(const MethodView& m);
Spread FinalTestLoss(const MethodView& m);
// Samples per second of training, measured: the samples of all minibatches over the training
// time of the last evaluation.
Spread MeasuredSamplesPerS(const MethodView& m, int64_t samples_per_minibatch);

// Simulated time of one minibatch in steady state (samples per minibatch over the steady
// throughput); nullopt without a simulation.
std::optional<double> SimulatedMinibatchS(const MethodView& m);

// "86.3%" or "86.3% ± 0.2" (percent of a 0..1 fraction).
std::string PercentWithSpread(const Spread& s, int digits = 1);

}  // namespace pipecast::cli::report
