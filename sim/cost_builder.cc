#include "sim/cost_builder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/ir.h"
#include "common/partition.h"

namespace pipecast::sim {
namespace {

// 2^63 as a double: the first value that does not fit in int64.
constexpr double kInt64Limit = 9223372036854775808.0;

// x / v rounded to the nearest integer (halves up), without overflow. REQUIRES x >= 0, v >= 1.
int64_t DivideRounded(int64_t x, int64_t v) {
  const int64_t q = x / v;
  const int64_t r = x % v;
  return q + (2 * r >= v ? 1 : 0);
}

// Per-stage value k of a vector that is either empty (`fallback`) or one value per stage.
int64_t At(const std::vector<int64_t>& values, size_t k, int64_t fallback) {
  return values.empty() ? fallback : values[k];
}

// Explicit costs are per device: virtual stage vs takes its share of the costs of the device
// `placement[vs]` holds it on.
Result<CostModel> BuildExplicit(const ir::Scenario& scenario,
                                const std::vector<int32_t>& placement) {
  const auto num_virtual_stages = static_cast<int32_t>(placement.size());
  const ir::ExplicitCosts& c = *scenario.costs;
  const int32_t d = scenario.pipeline.stages;
  // ParseScenario guarantees these; a Scenario built by hand may not.
  const std::pair<std::string_view, const std::vector<int64_t>*> kLists[] = {
      {"forward", &c.forward_ns},
      {"backward", &c.backward_ns},
      {"backward_input", &c.backward_input_ns},
      {"backward_weight", &c.backward_weight_ns},
      {"optimizer_step", &c.optimizer_step_ns},
      {"optimizer_rollback", &c.optimizer_rollback_ns},
      {"all_reduce", &c.all_reduce_ns},
      {"average", &c.average_ns},
      {"activation_bytes", &c.activation_bytes},
      {"activation_bytes_after_input_grad", &c.activation_bytes_after_input_grad},
      {"message_bytes", &c.message_bytes},
      {"weight_bytes", &c.weight_bytes},
      {"gradient_bytes", &c.gradient_bytes},
      {"optimizer_state_bytes", &c.optimizer_state_bytes},
  };
  for (const auto& [key, values] : kLists) {
    const bool required = key == "forward" || key == "backward";
    if ((required || !values->empty()) && values->size() != static_cast<size_t>(d)) {
      return InvalidArgument(
          fmt::format("costs.{} has {} values but pipeline.stages is {}", key, values->size(), d));
    }
  }
  if (c.backward_input_ns.empty() != c.backward_weight_ns.empty()) {
    return InvalidArgument("costs.backward_input and costs.backward_weight must be given together");
  }
  const int64_t v = num_virtual_stages / d;
  CostModel model;
  model.stages.resize(static_cast<size_t>(num_virtual_stages));
  for (int32_t vs = 0; vs < num_virtual_stages; ++vs) {
    const auto k = static_cast<size_t>(placement[static_cast<size_t>(vs)]);
    StageCost& s = model.stages[static_cast<size_t>(vs)];
    // A chunk of a stage does 1/v of its work and holds 1/v of its state.
    const auto share = [&](const std::vector<int64_t>& values, int64_t fallback) {
      const int64_t x = At(values, k, fallback);
      return x < 0 ? x : DivideRounded(x, v);
    };
    s.forward = share(c.forward_ns, 0);
    s.backward = share(c.backward_ns, 0);
    if (c.backward_input_ns.empty()) {
      // Not split: an I is the whole backward and W is free (as UniformCostModel does).
      s.backward_input = s.backward;
      s.backward_weight = 0;
    } else {
      s.backward_input = share(c.backward_input_ns, 0);
      s.backward_weight = share(c.backward_weight_ns, 0);
    }
    s.optimizer_step = share(c.optimizer_step_ns, -1);
    s.optimizer_rollback = share(c.optimizer_rollback_ns, -1);
    s.all_reduce = At(c.all_reduce_ns, k, -1);  // a whole round, not divided by chunks
    s.average = At(c.average_ns, k, -1);
    s.activation_bytes = share(c.activation_bytes, 0);
    s.activation_bytes_after_input_grad = c.activation_bytes_after_input_grad.empty()
                                              ? s.activation_bytes
                                              : share(c.activation_bytes_after_input_grad, 0);
    s.message_bytes = At(c.message_bytes, k, 0);  // one activation: not divided by chunks
    s.weight_bytes = share(c.weight_bytes, 0);
    s.gradient_bytes = share(c.gradient_bytes, -1);
    s.optimizer_state_bytes = share(c.optimizer_state_bytes, 0);
  }
  return model;
}

std::string ValidChunkCounts(int32_t layers, int32_t stages) {
  std::string list;
  for (int32_t v = 1; v <= layers; ++v) {
    if (v == 1 || static_cast<int64_t>(layers) % (static_cast<int64_t>(stages) * v) == 0) {
      list += list.empty() ? fmt::format("{}", v) : fmt::format(", {}", v);
    }
  }
  return list;
}

Result<int64_t> ToNs(double flops, double flops_per_second, std::string_view what, int32_t vs) {
  const double ns = std::round(flops / flops_per_second * 1e9);
  if (!(ns < kInt64Limit)) {
    return InvalidArgument(fmt::format(
        "the {} time of virtual stage {} ({:.3g} FLOPs) is too large", what, vs, flops));
  }
  return static_cast<int64_t>(ns);
}

Result<int64_t> ToBytes(double bytes, std::string_view what, int32_t vs) {
  const double rounded = std::round(bytes);
  if (!(rounded < kInt64Limit)) {
    return InvalidArgument(
        fmt::format("the {} of virtual stage {} ({:.3g} bytes) is too large", what, vs, bytes));
  }
  return static_cast<int64_t>(rounded);
}

Result<CostModel> BuildTransformer(const ir::Scenario& scenario, int32_t num_virtual_stages) {
  const ir::TransformerSpec& spec = *scenario.model;
  Result<std::vector<int32_t>> starts = TransformerStageStarts(scenario, num_virtual_stages);
  if (!starts.ok()) return starts.status();
  const std::vector<LayerCost> layers = TransformerLayers(spec, scenario.pipeline.microbatch_size);
  const double speed = scenario.cluster->peak_flops * scenario.cluster->efficiency;
  const double message = static_cast<double>(spec.sequence) * scenario.pipeline.microbatch_size *
                         spec.hidden * spec.bytes_per_activation;

  CostModel model;
  model.stages.resize(static_cast<size_t>(num_virtual_stages));
  for (int32_t vs = 0; vs < num_virtual_stages; ++vs) {
    const auto first = static_cast<size_t>((*starts)[static_cast<size_t>(vs)]);
    const size_t end = vs + 1 < num_virtual_stages
                           ? static_cast<size_t>((*starts)[static_cast<size_t>(vs) + 1])
                           : layers.size();
    LayerCost sum;
    for (size_t i = first; i < end; ++i) {
      sum.forward_flops += layers[i].forward_flops;
      sum.backward_input_flops += layers[i].backward_input_flops;
      sum.backward_weight_flops += layers[i].backward_weight_flops;
      sum.activation_bytes += layers[i].activation_bytes;
      sum.activation_bytes_after_input_grad += layers[i].activation_bytes_after_input_grad;
      sum.params += layers[i].params;
    }
    StageCost& s = model.stages[static_cast<size_t>(vs)];
    const auto time = [&](double flops, std::string_view what, TimeNs* out) -> Status {
      Result<int64_t> ns = ToNs(flops, speed, what, vs);
      if (!ns.ok()) return ns.status();
      *out = *ns;
      return Status::Ok();
    };
    const auto bytes = [&](double b, std::string_view what, int64_t* out) -> Status {
      Result<int64_t> n = ToBytes(b, what, vs);
      if (!n.ok()) return n.status();
      *out = *n;
      return Status::Ok();
    };
    PIPECAST_RETURN_IF_ERROR(time(sum.forward_flops, "forward", &s.forward));
    PIPECAST_RETURN_IF_ERROR(time(sum.backward_input_flops, "backward input", &s.backward_input));
    PIPECAST_RETURN_IF_ERROR(
        time(sum.backward_weight_flops, "backward weight", &s.backward_weight));
    // The full backward does the same FLOPs as I and W together.
    PIPECAST_RETURN_IF_ERROR(
        time(sum.backward_input_flops + sum.backward_weight_flops, "backward", &s.backward));
    s.optimizer_step = -1;  // derived by the engine from bytes over memory bandwidth
    PIPECAST_RETURN_IF_ERROR(bytes(sum.activation_bytes, "activation size", &s.activation_bytes));
    PIPECAST_RETURN_IF_ERROR(bytes(sum.activation_bytes_after_input_grad, "activation size after I",
                                   &s.activation_bytes_after_input_grad));
    PIPECAST_RETURN_IF_ERROR(bytes(message, "message size", &s.message_bytes));
    PIPECAST_RETURN_IF_ERROR(
        bytes(sum.params * spec.weight_bytes_per_param, "weight size", &s.weight_bytes));
    PIPECAST_RETURN_IF_ERROR(
        bytes(sum.params * spec.grad_bytes_per_param, "gradient size", &s.gradient_bytes));
    PIPECAST_RETURN_IF_ERROR(bytes(sum.params * spec.optimizer_bytes_per_param,
                                   "optimizer state size", &s.optimizer_state_bytes));
  }
  return model;
}

// Megatron-LM's uniform split: every virtual stage layers / (D v) blocks, the embedding with the
// first and the head with the last.
Result<std::vector<int32_t>> EvenStarts(const ir::TransformerSpec& spec, int32_t d,
                                        int32_t chunks) {
  const int32_t stages = d * chunks;
  if (spec.layers % stages != 0) {
    return InvalidArgument(fmt::format(
        "model.layers ({}) is not divisible by {} virtual stages ({} stages x {} chunks); "
        "chunk counts that divide the layers with {} stages: {}",
        spec.layers, stages, d, chunks, d, ValidChunkCounts(spec.layers, d)));
  }
  const int32_t per_stage = spec.layers / stages;
  std::vector<int32_t> starts(static_cast<size_t>(stages));
  for (int32_t vs = 1; vs < stages; ++vs) starts[static_cast<size_t>(vs)] = 1 + vs * per_stage;
  return starts;
}

// Megatron-Core's account_for_embedding_in_pipeline_split and account_for_loss_in_pipeline_split:
// the embedding and the head count as one layer each, layers + 2 slots split evenly.
Result<std::vector<int32_t>> MegatronCoreStarts(const ir::TransformerSpec& spec, int32_t d,
                                                int32_t chunks) {
  const int32_t stages = d * chunks;
  const int32_t slots = spec.layers + 2;
  if (slots % stages != 0) {
    std::string fits;
    for (int32_t v = 1; v <= slots; ++v) {
      if (slots % (static_cast<int64_t>(d) * v) == 0)
        fits += fits.empty() ? std::to_string(v) : ", " + std::to_string(v);
    }
    return InvalidArgument(fmt::format(
        "model.partition megatron-core needs model.layers + 2 ({}: the blocks, the embedding and "
        "the head) divisible by {} virtual stages ({} stages x {} chunks); chunk counts that "
        "divide with {} stages: {}; or use model.partition: balanced",
        slots, stages, d, chunks, d, fits.empty() ? "none" : fits));
  }
  std::vector<int32_t> starts(static_cast<size_t>(stages));
  for (int32_t vs = 0; vs < stages; ++vs) starts[static_cast<size_t>(vs)] = vs * (slots / stages);
  return starts;
}

}  // namespace

std::vector<LayerCost> TransformerLayers(const ir::TransformerSpec& model,
                                         int32_t microbatch_size) {
  const double b = microbatch_size;
  const double s = model.sequence;
  const double h = model.hidden;
  const double a = model.heads;
  const double vocab = model.vocabulary;
  const double bpa = model.bytes_per_activation;
  // The ZB paper's activation constants are in bytes for 2-byte activations.
  const double activation_scale = bpa / 2;

  std::vector<LayerCost> layers;
  layers.reserve(static_cast<size_t>(model.layers) + 2);

  // Embedding: a table lookup (no FLOPs to speak of); its output is block 0's input, counted
  // there. Token and position tables.
  LayerCost embedding;
  embedding.name = "embedding";
  embedding.params = vocab * h + s * h;
  layers.push_back(embedding);

  // Transformer block, per microbatch (Qi et al., ZB paper, Table 1 / section 2):
  //   F = b s h (24h + 4s), B = b s h (24h + 8s), W = b s h * 24h FLOPs;
  //   activations M_B = s b (34h + 5 a s) bytes, kept after I for W: M_W = 32 s b h bytes.
  LayerCost block;
  block.forward_flops = b * s * h * (24 * h + 4 * s);
  block.backward_input_flops = b * s * h * (24 * h + 8 * s);
  block.backward_weight_flops = b * s * h * (24 * h);
  // FlashAttention-style kernels keep no a x s x s scores or softmax: the 5 a s term goes.
  const double scores = model.attention == ir::AttentionKind::kFlash ? 0.0 : 5 * a * s;
  block.activation_bytes = s * b * (34 * h + scores) * activation_scale;
  block.activation_bytes_after_input_grad = 32 * s * b * h * activation_scale;
  if (model.recompute) {
    // Only the block's input is kept; the backward first recomputes the forward.
    block.activation_bytes = s * b * h * bpa;
    block.backward_input_flops += block.forward_flops;
  }
  // Attention QKV + output projection (4h^2 + 4h), MLP (8h^2 + 5h), two LayerNorms (4h).
  block.params = 12 * h * h + 13 * h;
  for (int32_t i = 0; i < model.layers; ++i) {
    block.name = fmt::format("block {}", i);
    layers.push_back(block);
  }

  // Head: final LayerNorm and the LM head matmul (h x V). F, B and W are each one matmul of
  // 2 b s h V FLOPs. Kept for backward: the LayerNorm input and output (2 s b h activations)
  // and the logits in fp32 for the loss (4 s b V bytes); W needs the LM head's input.
  LayerCost head;
  head.name = "head";
  head.forward_flops = 2 * b * s * h * vocab;
  head.backward_input_flops = 2 * b * s * h * vocab;
  head.backward_weight_flops = 2 * b * s * h * vocab;
  head.activation_bytes = 2 * s * b * h * bpa + 4 * s * b * vocab;
  head.activation_bytes_after_input_grad = s * b * h * bpa;
  // The LM head matrix is tied to the token embedding in GPT-2, but in a pipeline the last stage
  // holds its own copy (Megatron-LM all-reduces the two copies' gradients), so it counts here.
  head.params = vocab * h + 2 * h;
  layers.push_back(head);
  return layers;
}

Result<std::vector<int32_t>> TransformerStageStarts(const ir::Scenario& scenario,
                                                    int32_t num_virtual_stages) {
  PIPECAST_CHECK(scenario.model.has_value() && scenario.cluster.has_value());
  const ir::TransformerSpec& spec = *scenario.model;
  const int32_t d = scenario.pipeline.stages;
  if (num_virtual_stages < 1 || num_virtual_stages % d != 0) {
    return InvalidArgument(fmt::format(
        "{} virtual stages were asked for, which is not a multiple of pipeline.stages ({})",
        num_virtual_stages, d));
  }
  const int32_t chunks = num_virtual_stages / d;
  const int64_t num_layers = static_cast<int64_t>(spec.layers) + 2;
  switch (spec.partition) {
    case ir::PartitionRule::kEven:
      return EvenStarts(spec, d, chunks);
    case ir::PartitionRule::kMegatronCore:
      return MegatronCoreStarts(spec, d, chunks);
    case ir::PartitionRule::kBalanced:
      break;
  }
  if (num_virtual_stages > num_layers) {
    return InvalidArgument(fmt::format(
        "model has {} layers ({} blocks, the embedding and the head) but {} virtual stages were "
        "asked for",
        num_layers, spec.layers, num_virtual_stages));
  }
  const std::vector<LayerCost> layers = TransformerLayers(spec, scenario.pipeline.microbatch_size);
  std::vector<double> work;
  work.reserve(layers.size());
  for (const LayerCost& l : layers) {
    work.push_back(l.forward_flops + l.backward_input_flops + l.backward_weight_flops);
  }
  // Virtual stage vs runs on device vs mod D (the generators' round-robin placement).
  std::vector<double> speeds(static_cast<size_t>(num_virtual_stages));
  for (int32_t vs = 0; vs < num_virtual_stages; ++vs) {
    speeds[static_cast<size_t>(vs)] = ir::DeviceSpeed(scenario, vs % d);
  }
  return ir::BalancedPartition(work, speeds);
}

std::vector<std::string> DeviceLayers(const ir::Scenario& scenario, int32_t num_virtual_stages) {
  if (scenario.pipeline.stages < 1 || num_virtual_stages < 1) return {};
  return DeviceLayers(scenario,
                      ir::RoundRobinPlacement(num_virtual_stages, scenario.pipeline.stages));
}

std::vector<std::string> DeviceLayers(const ir::Scenario& scenario,
                                      const std::vector<int32_t>& placement) {
  const auto num_virtual_stages = static_cast<int32_t>(placement.size());
  if (!scenario.model.has_value() || !scenario.cluster.has_value()) return {};
  Result<std::vector<int32_t>> starts = TransformerStageStarts(scenario, num_virtual_stages);
  if (!starts.ok()) return {};
  const int32_t d = scenario.pipeline.stages;
  const int32_t blocks = scenario.model->layers;
  std::vector<std::string> out(static_cast<size_t>(d));
  for (int32_t vs = 0; vs < num_virtual_stages; ++vs) {
    // Layers [first, end): the embedding (0), blocks (1..blocks), the head (blocks + 1).
    const int32_t first = (*starts)[static_cast<size_t>(vs)];
    const int32_t end =
        vs + 1 < num_virtual_stages ? (*starts)[static_cast<size_t>(vs) + 1] : blocks + 2;
    std::vector<std::string> parts;
    if (first == 0) parts.push_back("E");
    const int32_t b0 = std::max(first, 1), b1 = std::min(end, blocks + 1);  // blocks [b0, b1)
    if (b1 - b0 == 1) parts.push_back(std::to_string(b0 - 1));
    if (b1 - b0 > 1) parts.push_back(fmt::format("{}-{}", b0 - 1, b1 - 2));
    if (end == blocks + 2) parts.push_back("H");
    const int32_t device = placement[static_cast<size_t>(vs)];
    if (device < 0 || device >= d) return {};
    std::string& s = out[static_cast<size_t>(device)];
    if (!s.empty()) s += ",";
    for (size_t i = 0; i < parts.size(); ++i) s += (i > 0 ? "+" : "") + parts[i];
  }
  return out;
}

Result<CostModel> BuildCostModel(const ir::Scenario& scenario, int32_t num_virtual_stages) {
  if (scenario.pipeline.stages < 1 || num_virtual_stages < 1) {
    return BuildCostModel(scenario, std::vector<int32_t>(std::max(num_virtual_stages, 0), 0));
  }
  return BuildCostModel(scenario,
                        ir::RoundRobinPlacement(num_virtual_stages, scenario.pipeline.stages));
}

Result<CostModel> BuildCostModel(const ir::Scenario& scenario,
                                 const std::vector<int32_t>& placement) {
  const int32_t d = scenario.pipeline.stages;
  const auto num_virtual_stages = static_cast<int32_t>(placement.size());
  if (d < 1 || num_virtual_stages < 1 || num_virtual_stages % d != 0) {
    return InvalidArgument(fmt::format(
        "{} virtual stages were asked for, which is not a positive multiple of pipeline.stages "
        "({})",
        num_virtual_stages, d));
  }
  for (int32_t device : placement) {
    if (device < 0 || device >= d) {
      return InvalidArgument(fmt::format(
          "a virtual stage is placed on device {}, but pipeline.stages is {}", device, d));
    }
  }
  // ParseScenario guarantees this; a Scenario built by hand (or cut down) may not.
  if (!scenario.devices.empty() && scenario.devices.size() != static_cast<size_t>(d) &&
      scenario.devices.size() != static_cast<size_t>(d) * scenario.pipeline.data_parallel) {
    return InvalidArgument(fmt::format(
        "the scenario describes {} devices but pipeline.stages is {}", scenario.devices.size(), d));
  }
  Result<CostModel> model = InvalidArgument("the scenario has neither costs nor model and cluster");
  if (scenario.costs.has_value()) {
    model = BuildExplicit(scenario, placement);
  } else if (scenario.model.has_value() && scenario.cluster.has_value()) {
    model = BuildTransformer(scenario, num_virtual_stages);
  }
  if (!model.ok()) return model;
  if (scenario.devices.empty()) {
    model->devices.assign(
        1, DeviceSpec{scenario.device_memory_bytes, scenario.device_memory_bandwidth, 1.0});
  } else {
    // One copy's devices (repeated for every data-parallel copy), or every copy's.
    for (int32_t k = 0; k < static_cast<int32_t>(scenario.devices.size()); ++k) {
      model->devices.push_back(DeviceSpec{ir::DeviceMemoryBytes(scenario, k),
                                          ir::DeviceMemoryBandwidth(scenario, k),
                                          ir::DeviceSpeed(scenario, k)});
    }
  }
  model->link = LinkSpec{scenario.network_latency_ns, scenario.network_bandwidth,
                         scenario.network_send_overhead_ns, scenario.network_recv_overhead_ns};
  model->blocking_collectives = scenario.blocking_collectives;
  if (scenario.collective_latency_ns || scenario.collective_bandwidth) {
    model->collective_link =
        LinkSpec{scenario.collective_latency_ns.value_or(scenario.network_latency_ns),
                 scenario.collective_bandwidth.value_or(scenario.network_bandwidth), 0, 0};
  }
  return model;
}

}  // namespace pipecast::sim
