// Fixtures of the `pipecast report` tests: the simulation of tests/cli/data/toy-report.yaml made
// in-process (so its timelines re-simulate to the same makespans), and the hand-made run and plan
// JSON of the same scenario next to it.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "cli/sim_runs.h"
#include "common/scenario.h"
#include "sim/report.h"

namespace pipecast::testing_report {

inline std::string DataPath(const std::string& name) {
  return std::string(PIPECAST_SOURCE_DIR) + "/tests/cli/data/" + name;
}

inline std::string ReadData(const std::string& name) {
  std::ifstream in(DataPath(name));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `pipecast sim tests/cli/data/toy-report.yaml --methods METHODS --format json`, in-process.
inline std::string ToySimJson(const std::vector<std::string>& methods = {}) {
  Result<ir::Scenario> scenario = ir::LoadScenarioFile("tests/cli/data/toy-report.yaml");
  EXPECT_TRUE(scenario.ok()) << scenario.status().message();
  auto choices = cli::ChooseMethods(*scenario, methods);
  EXPECT_TRUE(choices.ok()) << choices.status().message();
  std::vector<sim::MethodRun> runs;
  cli::RunSettings settings;
  settings.memory_budget = int64_t{1} << 30;
  for (const cli::Choice& c : *choices) {
    auto run = cli::RunOne(*scenario, c, settings);
    EXPECT_TRUE(run.ok()) << run.status().message();
    runs.push_back(std::move(*run));
  }
  return sim::FormatJson({scenario->name, scenario->source, scenario->device_memory_bytes}, runs);
}

}  // namespace pipecast::testing_report
