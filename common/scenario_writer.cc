#include "common/scenario_writer.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>

#include "common/plan_space.h"

namespace pipecast::ir {
namespace {

// A plain number in the base unit that reads back to the same double.
std::string Number(double v) { return fmt::format("{}", v); }

// One value for every stage, or the list when the stages differ.
void PerStage(YAML::Emitter& out, const char* key, const std::vector<int64_t>& values,
              const char* unit) {
  if (values.empty()) return;
  out << YAML::Key << key << YAML::Value;
  const auto text = [&](int64_t v) { return fmt::format("{}{}", v, unit); };
  if (std::all_of(values.begin(), values.end(), [&](int64_t v) { return v == values[0]; })) {
    out << text(values[0]);
    return;
  }
  out << YAML::Flow << YAML::BeginSeq;
  for (int64_t v : values) out << text(v);
  out << YAML::EndSeq;
}

// `devices:` / `cluster.devices:`: runs of equal devices as one entry with its count.
void WriteDevices(YAML::Emitter& out, const Scenario& s) {
  if (s.devices.empty()) return;
  out << YAML::Key << "devices" << YAML::Value << YAML::BeginSeq;
  for (size_t i = 0; i < s.devices.size();) {
    const DeviceHardware& h = s.devices[i];
    size_t count = 1;
    while (i + count < s.devices.size() && s.devices[i + count] == h) ++count;
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "count" << YAML::Value << count;
    if (s.model) {
      out << YAML::Key << "peak_flops" << YAML::Value << Number(h.peak_flops);
      out << YAML::Key << "efficiency" << YAML::Value << Number(h.efficiency);
    } else {
      out << YAML::Key << "speed" << YAML::Value << Number(h.speed);
    }
    out << YAML::Key << "memory" << YAML::Value << h.memory_bytes;
    out << YAML::Key << "memory_bandwidth" << YAML::Value << Number(h.memory_bandwidth);
    out << YAML::EndMap;
    i += count;
  }
  out << YAML::EndSeq;
}

void WriteCosts(YAML::Emitter& out, const Scenario& s) {
  const ExplicitCosts& c = *s.costs;
  out << YAML::Key << "costs" << YAML::Value << YAML::BeginMap;
  PerStage(out, "forward", c.forward_ns, "ns");
  if (c.backward_input_ns.empty()) {
    PerStage(out, "backward", c.backward_ns, "ns");
  } else {
    PerStage(out, "backward_input", c.backward_input_ns, "ns");
    PerStage(out, "backward_weight", c.backward_weight_ns, "ns");
  }
  PerStage(out, "optimizer_step", c.optimizer_step_ns, "ns");
  PerStage(out, "optimizer_rollback", c.optimizer_rollback_ns, "ns");
  PerStage(out, "all_reduce", c.all_reduce_ns, "ns");
  PerStage(out, "average", c.average_ns, "ns");
  PerStage(out, "activation_bytes", c.activation_bytes, "");
  PerStage(out, "activation_bytes_after_input_grad", c.activation_bytes_after_input_grad, "");
  PerStage(out, "message_bytes", c.message_bytes, "");
  PerStage(out, "weight_bytes", c.weight_bytes, "");
  PerStage(out, "gradient_bytes", c.gradient_bytes, "");
  PerStage(out, "optimizer_state_bytes", c.optimizer_state_bytes, "");
  out << YAML::EndMap;
  out << YAML::Key << "network" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "latency" << YAML::Value << fmt::format("{}ns", s.network_latency_ns);
  out << YAML::Key << "send_overhead" << YAML::Value
      << fmt::format("{}ns", s.network_send_overhead_ns);
  out << YAML::Key << "recv_overhead" << YAML::Value
      << fmt::format("{}ns", s.network_recv_overhead_ns);
  out << YAML::Key << "bandwidth" << YAML::Value << Number(s.network_bandwidth);
  if (s.collective_latency_ns) {
    out << YAML::Key << "collective_latency" << YAML::Value
        << fmt::format("{}ns", *s.collective_latency_ns);
  }
  if (s.collective_bandwidth) {
    out << YAML::Key << "collective_bandwidth" << YAML::Value << Number(*s.collective_bandwidth);
  }
  if (s.blocking_collectives) out << YAML::Key << "collectives" << YAML::Value << "blocking";
  out << YAML::EndMap;
  out << YAML::Key << "device" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "memory" << YAML::Value << s.device_memory_bytes;
  out << YAML::Key << "memory_bandwidth" << YAML::Value << Number(s.device_memory_bandwidth);
  out << YAML::EndMap;
  WriteDevices(out, s);
}

void WriteModel(YAML::Emitter& out, const Scenario& s) {
  const TransformerSpec& m = *s.model;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type" << YAML::Value << m.type;
  out << YAML::Key << "layers" << YAML::Value << m.layers;
  out << YAML::Key << "hidden" << YAML::Value << m.hidden;
  out << YAML::Key << "heads" << YAML::Value << m.heads;
  out << YAML::Key << "sequence" << YAML::Value << m.sequence;
  out << YAML::Key << "vocabulary" << YAML::Value << m.vocabulary;
  out << YAML::Key << "bytes_per_activation" << YAML::Value << Number(m.bytes_per_activation);
  out << YAML::Key << "weight_bytes_per_param" << YAML::Value << Number(m.weight_bytes_per_param);
  out << YAML::Key << "optimizer_bytes_per_param" << YAML::Value
      << Number(m.optimizer_bytes_per_param);
  out << YAML::Key << "grad_bytes_per_param" << YAML::Value << Number(m.grad_bytes_per_param);
  out << YAML::Key << "recompute" << YAML::Value << (m.recompute ? "true" : "false");
  out << YAML::Key << "attention" << YAML::Value
      << (m.attention == AttentionKind::kFlash ? "flash" : "standard");
  out << YAML::Key << "partition" << YAML::Value << PartitionRuleName(m.partition);
  out << YAML::EndMap;
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "device" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "peak_flops" << YAML::Value << Number(s.cluster->peak_flops);
  out << YAML::Key << "efficiency" << YAML::Value << Number(s.cluster->efficiency);
  out << YAML::Key << "memory" << YAML::Value << s.device_memory_bytes;
  out << YAML::Key << "memory_bandwidth" << YAML::Value << Number(s.device_memory_bandwidth);
  out << YAML::EndMap;
  WriteDevices(out, s);
  out << YAML::Key << "link" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "latency" << YAML::Value << fmt::format("{}ns", s.network_latency_ns);
  out << YAML::Key << "bandwidth" << YAML::Value << Number(s.network_bandwidth);
  out << YAML::EndMap;
  if (s.collective_latency_ns || s.collective_bandwidth) {
    out << YAML::Key << "collective_link" << YAML::Value << YAML::BeginMap;
    if (s.collective_latency_ns)
      out << YAML::Key << "latency" << YAML::Value << fmt::format("{}ns", *s.collective_latency_ns);
    if (s.collective_bandwidth)
      out << YAML::Key << "bandwidth" << YAML::Value << Number(*s.collective_bandwidth);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

void WriteMethods(YAML::Emitter& out, const Scenario& s) {
  if (s.methods.empty()) return;
  out << YAML::Key << "methods" << YAML::Value << YAML::BeginSeq;
  for (const MethodSpec& m : s.methods) {
    if (m.params.empty()) {
      out << m.name;
      continue;
    }
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << m.name;
    for (const auto& [k, v] : m.params) out << YAML::Key << k << YAML::Value << v;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

}  // namespace

std::string FormatScenarioYaml(const Scenario& s, const std::string& comment) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << s.name;
  if (!s.description.empty()) out << YAML::Key << "description" << YAML::Value << s.description;
  out << YAML::Key << "pipeline" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "stages" << YAML::Value << s.pipeline.stages;
  out << YAML::Key << "microbatches" << YAML::Value << s.pipeline.microbatches;
  out << YAML::Key << "minibatches" << YAML::Value << s.pipeline.minibatches;
  out << YAML::Key << "microbatch_size" << YAML::Value << s.pipeline.microbatch_size;
  if (s.pipeline.data_parallel != 1)
    out << YAML::Key << "data_parallel" << YAML::Value << s.pipeline.data_parallel;
  out << YAML::EndMap;
  if (s.costs) WriteCosts(out, s);
  if (s.model) WriteModel(out, s);
  WriteMethods(out, s);
  out << YAML::EndMap;
  return YamlComment(comment) + out.c_str() + "\n";
}

std::string YamlComment(const std::string& comment) {
  std::ostringstream text;
  std::istringstream lines(comment);
  for (std::string line; std::getline(lines, line);) text << "# " << line << "\n";
  return text.str();
}

}  // namespace pipecast::ir
