// Scenario files: what to simulate. A scenario is a YAML file (docs/scenarios.md) giving the
// pipeline shape, the costs, the hardware and the methods to compare. Costs come in one of two
// forms:
//   (a) explicit per-stage costs: `costs:` plus optional `network:` and `device:`;
//   (b) a GPT-style transformer and a cluster: `model:` and `cluster:`, from which
//       sim::BuildCostModel (sim/cost_builder.h) derives per-stage costs with FLOP formulas.
//
// The structs below are plain data: everything in them has been checked for syntax, units,
// ranges and consistency (list lengths, required keys), so consumers do not re-check. Method
// names and parameters are only parsed here; ir::Generate (generators.h) validates them.
//
// Every error is one message of the form "file:line:column: what is wrong", naming the key
// (e.g. "costs.forward") and, for unknown keys, suggesting the closest known one. yaml-cpp is used
// only in scenario.cc; its exceptions never escape.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/suggest.h"  // ClosestMatch, used with scenario keys

namespace pipecast::ir {

// One entry of `methods:`: a name and its parameters, e.g. {name: pipeoptim, horizon: code}.
struct MethodSpec {
  std::string name;
  std::map<std::string, std::string> params;  // every key but `name`, values as written
  int32_t line = 0;    // 1-based position of the entry in the file, for later messages
  int32_t column = 0;  // (0 when unknown)
};

struct PipelineSpec {
  int32_t stages = 1;           // pipeline stages = devices
  int32_t microbatches = 1;     // per minibatch (per optimizer step of synchronous methods)
  int32_t minibatches = 1;      // minibatches simulated
  int32_t microbatch_size = 1;  // samples (sequences) per microbatch
  // Copies of the pipeline for data parallelism (common/replicate.h): the run uses
  // data_parallel x stages devices and data_parallel x microbatches microbatches per minibatch.
  int32_t data_parallel = 1;
};

// Form (a): per-stage costs, the times on a device of speed 1 (see DeviceHardware). Every vector is
// either empty (not given) or has exactly pipeline.stages values; a scalar in the file is broadcast
// to every stage. Times are integer nanoseconds, sizes integer bytes, all >= 0.
struct ExplicitCosts {
  std::vector<int64_t> forward_ns;  // always given
  // Full backward. Always filled: when the file gives only the split, it is input + weight.
  std::vector<int64_t> backward_ns;
  // Split backward (zero-bubble I and W); both empty or both given.
  std::vector<int64_t> backward_input_ns;
  std::vector<int64_t> backward_weight_ns;
  std::vector<int64_t> optimizer_step_ns;  // empty: the simulator derives it from bytes
  // What a post-validated step (zb-1p, zb-2p) adds to keep its rollback possible; empty: the
  // simulator derives it from bytes (docs/cost-model.md).
  std::vector<int64_t> optimizer_rollback_ns;
  // One all-reduce / elastic average round of the stage's copies (e.g. measured by `pipecast run
  // --profile-out`); empty: the ring time over the collective link from the bytes.
  std::vector<int64_t> all_reduce_ns;
  std::vector<int64_t> average_ns;
  std::vector<int64_t> activation_bytes;
  std::vector<int64_t> activation_bytes_after_input_grad;  // empty: same as activation_bytes
  std::vector<int64_t> message_bytes;
  std::vector<int64_t> weight_bytes;
  std::vector<int64_t> gradient_bytes;  // empty: same as weight_bytes
  std::vector<int64_t> optimizer_state_bytes;
};

// How a transformer's layers are cut into virtual stages (docs/cost-model.md).
enum class PartitionRule {
  // Contiguous stages balanced on each layer's F + B + W FLOPs, the embedding and the head
  // counted at their own cost (BalancedPartition), for any number of chunks.
  kBalanced,
  // Megatron-LM's uniform split: layers / virtual stages blocks each; the embedding joins the
  // first, the head the last. Needs the blocks to divide evenly.
  kEven,
  // Megatron-Core's account_for_embedding_in_pipeline_split and
  // account_for_loss_in_pipeline_split: the embedding and the head take one layer slot each,
  // (layers + 2) / virtual stages slots per stage. Needs layers + 2 to divide evenly.
  kMegatronCore,
};

// What a block's attention keeps for its backward (docs/cost-model.md).
enum class AttentionKind {
  kStandard,  // the a x s x s score and softmax tensors too (5 a s bytes per token)
  kFlash,     // FlashAttention-style kernels recompute them: no 5 a s term
};

// Form (b): a GPT-style decoder-only transformer (embedding, `layers` blocks, final LayerNorm and
// LM head). Formulas are in docs/cost-model.md.
struct TransformerSpec {
  std::string type = "gpt";  // the only architecture so far
  int32_t layers = 0;        // transformer blocks
  int32_t hidden = 0;        // h
  int32_t heads = 0;         // a; divides hidden
  int32_t sequence = 0;      // s, tokens per sample
  int32_t vocabulary = 0;    // V
  // Bytes per stored activation element; the ZB paper's memory constants assume 2 (fp16/bf16)
  // and are scaled by bytes_per_activation / 2.
  double bytes_per_activation = 2;
  double weight_bytes_per_param = 2;      // bf16 weights
  double optimizer_bytes_per_param = 12;  // fp32 master copy + Adam's two fp32 moments
  double grad_bytes_per_param = 2;        // bf16 gradients
  bool recompute = false;                 // activation recomputation: keep only each block's input
  AttentionKind attention = AttentionKind::kStandard;
  PartitionRule partition = PartitionRule::kBalanced;
};

// Compute throughput of one device, for form (b).
struct ClusterSpec {
  double peak_flops = 0;    // FLOP/s
  double efficiency = 0.5;  // achieved fraction of peak, in (0, 1]
};

// Work to hide in the pipeline's bubbles (PipeFisher, Osawa et al., MLSys'23: K-FAC's curvature,
// inversion and preconditioning, or any other work), `bubble_work:` in a scenario. Each item
// takes `duration_ns[device]` of device time, once per optimizer step of the device, or once per
// backward pass the device runs in that step (`per: backward`, e.g. a curvature estimate per
// microbatch). Simulation only (sim/bubble_fill.h): the executor does not run it.
struct BubbleWorkItem {
  std::string name;
  std::vector<int64_t> duration_ns;  // per device (pipeline.stages values)
  bool per_backward = false;
};

// One device's own hardware, for clusters whose devices differ (`devices:` with explicit costs,
// `cluster.devices:` with a model; docs/scenarios.md). Every field is filled in: a key an entry
// leaves out takes the value of `device:` (`cluster.device`), and `speed` defaults to 1.
struct DeviceHardware {
  // Explicit costs: the device's compute speed relative to the device `costs:` describes (2 =
  // twice as fast: every compute action takes half the time). 1 in the model form.
  double speed = 1;
  double peak_flops = 0;        // model form: FLOP/s, > 0 (0 with explicit costs)
  double efficiency = 0;        // model form: achieved fraction of peak, in (0, 1]
  int64_t memory_bytes = 0;     // capacity; 0 = unlimited
  double memory_bandwidth = 0;  // bytes/s; 0 = memory copies are free
  friend bool operator==(const DeviceHardware&, const DeviceHardware&) = default;
};

struct Scenario {
  std::string name;         // `name:`, or the file name without directory and extension
  std::string description;  // `description:`, may be empty
  std::string source;       // the file it came from (or "<built-in default.yaml>")
  PipelineSpec pipeline;
  std::optional<ExplicitCosts> costs;    // form (a)
  std::optional<TransformerSpec> model;  // form (b), together with cluster
  std::optional<ClusterSpec> cluster;
  // Hardware, from `network:`/`device:` in form (a) or `cluster.link`/`cluster.device` in (b).
  int64_t network_latency_ns = 0;
  // LogP's per-message device time of the sender and of the receiver (`network.send_overhead`,
  // `network.recv_overhead`), e.g. measured by `pipecast run --profile-out`.
  int64_t network_send_overhead_ns = 0;
  int64_t network_recv_overhead_ns = 0;
  double network_bandwidth = 0;        // bytes/s; 0 = infinite
  // The link all-reduces and averages run over (`network.collective_latency`,
  // `network.collective_bandwidth`, or `cluster.collective_link`), e.g. the inter-node network
  // of data-parallel copies; absent: the one above.
  std::optional<int64_t> collective_latency_ns;
  // `network.collectives: blocking`: all-reduces block their device where they stand (as
  // pipecast's executor runs them) instead of overlapping compute (`overlapped`, the default).
  bool blocking_collectives = false;
  std::optional<double> collective_bandwidth;
  int64_t device_memory_bytes = 0;     // 0 = unlimited
  double device_memory_bandwidth = 0;  // bytes/s; 0 = memory copies are free
  std::vector<MethodSpec> methods;     // in file order; may be empty (the caller chooses)
  std::vector<BubbleWorkItem> bubble_work;  // in file order; empty: none
  // Per-device hardware: empty when every device is the one of device_memory_bytes and
  // device_memory_bandwidth (`device:`, `cluster.device`); else exactly one entry per device,
  // device d at index d (groups with `count:` expanded), and those fields are the defaults the
  // entries were filled from.
  std::vector<DeviceHardware> devices;
};

// Device d's compute speed relative to the reference device: 1 without per-device hardware;
// `speed` with explicit costs; peak_flops x efficiency over cluster.device's with a model.
// A compute action of device d takes (its time on the reference device) / speed.
// REQUIRES: 0 <= d < pipeline.stages.
double DeviceSpeed(const Scenario& scenario, int32_t d);
// Device d's memory capacity (0 = unlimited) and memory bandwidth (0 = free).
int64_t DeviceMemoryBytes(const Scenario& scenario, int32_t d);
double DeviceMemoryBandwidth(const Scenario& scenario, int32_t d);

// Parses a scenario. `filename` is used in messages and for the default name. Errors:
// kParseError for malformed YAML, kInvalidArgument for everything else.
Result<Scenario> ParseScenario(std::string_view yaml_text, std::string_view filename);

// Reads and parses a file: kNotFound (naming the path) if it does not exist, kIoError if it
// cannot be read.
Result<Scenario> LoadScenarioFile(const std::string& path);

// The built-in copy of scenarios/default.yaml, embedded at build time.
std::string_view DefaultScenarioYaml();
Result<Scenario> DefaultScenario();

}  // namespace pipecast::ir
