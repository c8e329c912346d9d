// Tests for common/scenario_writer.h: every shipped scenario, written and read back, is the same
// scenario, value for value (nothing rounded), and writing is stable.
#include "common/scenario_writer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/input_file.h"
#include "common/job.h"
#include "common/job_writer.h"

namespace pipecast::ir {
namespace {

void ExpectSame(const Scenario& a, const Scenario& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.pipeline.stages, b.pipeline.stages);
  EXPECT_EQ(a.pipeline.microbatches, b.pipeline.microbatches);
  EXPECT_EQ(a.pipeline.minibatches, b.pipeline.minibatches);
  EXPECT_EQ(a.pipeline.microbatch_size, b.pipeline.microbatch_size);
  ASSERT_EQ(a.costs.has_value(), b.costs.has_value());
  if (a.costs) {
    const ExplicitCosts &x = *a.costs, &y = *b.costs;
    EXPECT_EQ(x.forward_ns, y.forward_ns);
    EXPECT_EQ(x.backward_ns, y.backward_ns);
    EXPECT_EQ(x.backward_input_ns, y.backward_input_ns);
    EXPECT_EQ(x.backward_weight_ns, y.backward_weight_ns);
    EXPECT_EQ(x.optimizer_step_ns, y.optimizer_step_ns);
    EXPECT_EQ(x.activation_bytes, y.activation_bytes);
    EXPECT_EQ(x.activation_bytes_after_input_grad, y.activation_bytes_after_input_grad);
    EXPECT_EQ(x.message_bytes, y.message_bytes);
    EXPECT_EQ(x.weight_bytes, y.weight_bytes);
    EXPECT_EQ(x.gradient_bytes, y.gradient_bytes);
    EXPECT_EQ(x.optimizer_state_bytes, y.optimizer_state_bytes);
  }
  ASSERT_EQ(a.model.has_value(), b.model.has_value());
  if (a.model) {
    const TransformerSpec &x = *a.model, &y = *b.model;
    EXPECT_EQ(std::tie(x.type, x.layers, x.hidden, x.heads, x.sequence, x.vocabulary),
              std::tie(y.type, y.layers, y.hidden, y.heads, y.sequence, y.vocabulary));
    EXPECT_EQ(x.bytes_per_activation, y.bytes_per_activation);
    EXPECT_EQ(x.weight_bytes_per_param, y.weight_bytes_per_param);
    EXPECT_EQ(x.optimizer_bytes_per_param, y.optimizer_bytes_per_param);
    EXPECT_EQ(x.grad_bytes_per_param, y.grad_bytes_per_param);
    EXPECT_EQ(x.recompute, y.recompute);
    EXPECT_EQ(x.attention, y.attention);
    EXPECT_EQ(x.partition, y.partition);
    EXPECT_EQ(a.cluster->peak_flops, b.cluster->peak_flops);  // exactly: plain numbers
    EXPECT_EQ(a.cluster->efficiency, b.cluster->efficiency);
  }
  EXPECT_EQ(a.network_latency_ns, b.network_latency_ns);
  EXPECT_EQ(a.network_send_overhead_ns, b.network_send_overhead_ns);
  EXPECT_EQ(a.network_recv_overhead_ns, b.network_recv_overhead_ns);
  EXPECT_EQ(a.network_bandwidth, b.network_bandwidth);
  EXPECT_EQ(a.device_memory_bytes, b.device_memory_bytes);
  EXPECT_EQ(a.device_memory_bandwidth, b.device_memory_bandwidth);
  EXPECT_EQ(a.devices, b.devices);
  ASSERT_EQ(a.methods.size(), b.methods.size());
  for (size_t i = 0; i < a.methods.size(); ++i) {
    EXPECT_EQ(a.methods[i].name, b.methods[i].name);
    EXPECT_EQ(a.methods[i].params, b.methods[i].params);
  }
}

TEST(ScenarioWriter, EveryShippedScenarioRoundTrips) {
  int checked = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(PIPECAST_SOURCE_DIR) + "/scenarios")) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".yaml" || path.ends_with(".job.yaml")) continue;
    SCOPED_TRACE(path);
    Result<Scenario> original = LoadScenarioFile(path);
    ASSERT_TRUE(original.ok()) << original.status().message();
    const std::string text = FormatScenarioYaml(*original, "written back\nby the test");
    EXPECT_TRUE(text.starts_with("# written back\n# by the test\nname: ")) << text;
    Result<Scenario> back = ParseScenario(text, "back.yaml");
    ASSERT_TRUE(back.ok()) << back.status().message() << "\n" << text;
    ExpectSame(*original, *back);
    EXPECT_EQ(FormatScenarioYaml(*back, ""), FormatScenarioYaml(*original, ""));
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(ScenarioWriter, PerStageListsAndSplitBackward) {
  Result<Scenario> s = ParseScenario(R"(name: "odd: name"
pipeline: {stages: 2, microbatches: 4}
costs:
  forward: [1ms, 1.5ms]
  backward_input: 1ms
  backward_weight: [0.5ms, 0.25ms]
  weight_bytes: 1GiB
network: {latency: 1us, bandwidth: 12.5GB/s, send_overhead: 3ns}
device: {memory_bandwidth: 1.5TB/s}
methods: [{name: paci, accumulation: 2}, zb-h1]
)",
                                     "x.yaml");
  ASSERT_TRUE(s.ok()) << s.status().message();
  const std::string text = FormatScenarioYaml(*s, "");
  EXPECT_NE(text.find("forward: [1000000ns, 1500000ns]"), std::string::npos) << text;
  EXPECT_EQ(text.find("backward:"), std::string::npos) << text;  // the split only
  Result<Scenario> back = ParseScenario(text, "back.yaml");
  ASSERT_TRUE(back.ok()) << back.status().message() << "\n" << text;
  ExpectSame(*s, *back);
}

// The job of a plan configuration: its pipeline and method replaced, everything else kept.
TEST(JobWriter, ReplacesThePipelineAndTheMethods) {
  const std::string path = std::string(PIPECAST_SOURCE_DIR) + "/scenarios/fashion-mlp.job.yaml";
  Result<std::string> text = ReadInputFile(path, "job file");
  ASSERT_TRUE(text.ok());
  const PlanConfig c{"paci", {{"accumulation", "2"}}, 2, 4, 16, false, {}};
  Result<std::string> out = ConfiguredJobYaml(*text, path, c, "a comment");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_TRUE(out->starts_with("# a comment\n")) << *out;
  Result<Job> original = ParseJob(*text, path);
  Result<Job> job = ParseJob(*out, path);
  ASSERT_TRUE(job.ok()) << job.status().message();
  EXPECT_EQ(job->pipeline.stages, 2);
  EXPECT_EQ(job->pipeline.microbatches, 4);
  EXPECT_EQ(job->pipeline.microbatch_size, 16);
  ASSERT_EQ(job->methods.size(), 1u);
  EXPECT_EQ(job->methods[0].name, "paci");
  EXPECT_EQ(job->methods[0].params, c.params);
  EXPECT_EQ(job->model.hidden_sizes, original->model.hidden_sizes);
  EXPECT_EQ(job->optimizer.lr, original->optimizer.lr);
  EXPECT_EQ(job->epochs, original->epochs);
  EXPECT_EQ(job->seed, original->seed);
  EXPECT_FALSE(ConfiguredJobYaml("model: {type: mlp}\n", "bad.yaml", c, "").ok());
}

}  // namespace
}  // namespace pipecast::ir
