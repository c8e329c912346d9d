// Internal to the generators: the per-method builder functions and shared helpers.
// Each builder receives options whose parameters were already checked against Methods().
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/generators.h"
#include "common/ir.h"
#include "common/status.h"

namespace pipecast::ir::internal {

// Options with every parameter of the method present (defaults filled in), as text.
struct BuildContext {
  const GenerateOptions& options;
  std::map<std::string, std::string> params;  // complete
  const DeviceSink* sink = nullptr;           // takes each device's actions when set
  // Device d's actions are complete: to the sink, or into the program.
  void Emit(Program& p, int32_t d, std::vector<Action>&& actions) const {
    if (sink != nullptr) {
      (*sink)(d, std::move(actions));
    } else {
      p.devices[static_cast<size_t>(d)] = std::move(actions);
    }
  }
  const std::string& Param(const std::string& key) const { return params.at(key); }
  int32_t IntParam(const std::string& key) const;  // REQUIRES: validated integer
  bool BoolParam(const std::string& key) const;    // REQUIRES: validated bool
};

// Ok when devices x chunks virtual stages stay within kMaxCount.
Status CheckVirtualStages(int32_t devices, int64_t chunks);

// A program with metadata filled from the options, `stages_per_device` virtual stages per
// device placed round-robin, and empty device programs.
Program EmptyProgram(const BuildContext& ctx, int32_t stages_per_device);

Result<Program> BuildGpipe(const BuildContext& ctx);
Result<Program> BuildOneFOneB(const BuildContext& ctx);
Result<Program> BuildInterleaved(const BuildContext& ctx);
Result<Program> BuildZbH1(const BuildContext& ctx);
Result<Program> BuildZbH2(const BuildContext& ctx);
Result<Program> BuildPipeDream(const BuildContext& ctx);
Result<Program> BuildPipeDream2BW(const BuildContext& ctx);
Result<Program> BuildSpecTrain(const BuildContext& ctx);
Result<Program> BuildXPipe(const BuildContext& ctx);
Result<Program> BuildPipeMare(const BuildContext& ctx);
Result<Program> BuildPipeOptim(const BuildContext& ctx);
Result<Program> BuildPaci(const BuildContext& ctx);
Result<Program> BuildXGrad(const BuildContext& ctx);
Result<Program> BuildZbGreedy(const BuildContext& ctx);  // zb-1p, zb-2p
Result<Program> BuildZbV(const BuildContext& ctx);

// The relative pass costs the zero-bubble searches (zb-1p, zb-2p, zb-v) plan with: their
// cost_f, cost_b, cost_w and cost_comm parameters. The simulator times the result with the
// scenario's own costs.
struct PlanningCosts {
  int64_t f = 1000, b = 1000, w = 1000, comm = 1;
};
PlanningCosts PlanningCostsOf(const BuildContext& ctx);

// A flushed program from one iteration: iteration[d] is device d's compute actions for
// microbatches 0 .. M - 1; every minibatch n repeats it with microbatches offset by n * M and a
// Step after it. `placement[stage]` = device.
Program RepeatIteration(const BuildContext& ctx, std::vector<int32_t> placement,
                        const std::vector<std::vector<Action>>& iteration);
Result<Program> BuildChimera(const BuildContext& ctx);
Result<Program> BuildGems(const BuildContext& ctx);
Result<Program> BuildAvgPipe(const BuildContext& ctx);
Result<Program> BuildWPipe(const BuildContext& ctx);

}  // namespace pipecast::ir::internal
