// Scenario -> CostModel: turns a parsed scenario (common/scenario.h) into the per-virtual-stage
// times and sizes the simulator uses. Formulas and their sources are in docs/cost-model.md.
//
// Explicit costs (`costs:`) are used as given. With v chunks per device (interleaved), virtual
// stage vs = c * D + k (chunk c of device k) gets 1/v of stage k's times and sizes, except
// message_bytes, which is the size of one activation and does not shrink.
//
// A transformer (`model:` + `cluster:`) is cut into layers: the embedding, `layers` blocks and
// the head (final LayerNorm + LM head). Each layer's FLOPs (the zero-bubble paper's per-block
// split into F, B = input gradient and W = weight gradient) become times at
// peak_flops * efficiency. The layers are cut into the virtual stages by model.partition:
// BalancedPartition (common/partition.h) on F + B + W by default, for any number of chunks;
// Megatron-LM's uniform split (`even`), or Megatron-Core's with the embedding and the head
// counted as one layer each (`megatron-core`), which need the layers to divide evenly.
//
// Devices that differ (ir::Scenario::devices): stage times stay those on the reference device
// (speed 1: `costs:` as given, or cluster.device's peak_flops x efficiency), and each device's
// DeviceSpec carries its speed (ir::DeviceSpeed), memory and memory bandwidth; the engine divides
// compute times by the speed. The balanced partition gives virtual stage vs (on device vs mod D)
// the time (F + B + W FLOPs) / speed of that device; `even` and `megatron-core` ignore speeds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/scenario.h"
#include "common/status.h"
#include "sim/cost_model.h"

namespace pipecast::sim {

// The cost model for `num_virtual_stages` virtual stages: pipeline.stages for every method except
// interleaved, pipeline.stages * chunks for interleaved. One DeviceSpec (used for every device),
// or one per device when the scenario describes each, and the link come from the scenario's
// hardware. Optimizer steps are left at -1 (derived by the
// engine from bytes over memory bandwidth) unless costs.optimizer_step is given.
// Errors (kInvalidArgument): num_virtual_stages not a positive multiple of pipeline.stages; more
// virtual stages than model layers; chunks that do not divide the model's blocks (the message
// lists the chunk counts that would); times too large for int64 nanoseconds.
Result<CostModel> BuildCostModel(const ir::Scenario& scenario, int32_t num_virtual_stages);
// The same for a program's placement (placement[virtual stage] = device; ZB-V's is not
// round-robin): explicit costs of stage k go to the virtual stages placed on device k. The
// transformer's layers are cut into the virtual stages in order whatever the placement.
Result<CostModel> BuildCostModel(const ir::Scenario& scenario,
                                 const std::vector<int32_t>& placement);

// One layer of the transformer for a microbatch of `microbatch_size` sequences: FLOPs, bytes and
// parameters, before conversion to time. Exposed for tests and for documentation tools.
struct LayerCost {
  std::string name;  // "embedding", "block 0", ..., "head"
  double forward_flops = 0;
  double backward_input_flops = 0;  // includes the recomputed forward when model.recompute
  double backward_weight_flops = 0;
  double activation_bytes = 0;                   // stored from F until B (or W)
  double activation_bytes_after_input_grad = 0;  // kept from I until W (split backward)
  double params = 0;
};
std::vector<LayerCost> TransformerLayers(const ir::TransformerSpec& model, int32_t microbatch_size);

// The first layer index (into TransformerLayers) of every virtual stage that BuildCostModel uses,
// by the scenario's model.partition rule. REQUIRES: scenario.model and scenario.cluster are set.
Result<std::vector<int32_t>> TransformerStageStarts(const ir::Scenario& scenario,
                                                    int32_t num_virtual_stages);

// Which layers every device holds, for reports: per device its virtual stages' layers joined by
// ",", each "E" (embedding), blocks "3" or "3-5", and "H" (head) joined by "+", e.g. "E+0-2" or
// "7,15,H". Empty for explicit costs (or when the partition cannot be made).
std::vector<std::string> DeviceLayers(const ir::Scenario& scenario, int32_t num_virtual_stages);
// The same for a program's placement (placement[virtual stage] = device).
std::vector<std::string> DeviceLayers(const ir::Scenario& scenario,
                                      const std::vector<int32_t>& placement);

}  // namespace pipecast::sim
