// Tests for common/scenario.h: both scenario forms, broadcast and per-stage values, and the
// exact wording (with file:line:column and key) of every kind of error.
#include "common/scenario.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/generators.h"
#include "sim/cost_builder.h"

namespace pipecast::ir {
namespace {

// The message of a scenario that must fail to parse.
std::string Error(const std::string& yaml, StatusCode code = StatusCode::kInvalidArgument) {
  Result<Scenario> r = ParseScenario(yaml, "s.yaml");
  EXPECT_FALSE(r.ok()) << yaml;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  return r.status().message();
}

Scenario Parse(const std::string& yaml) {
  Result<Scenario> r = ParseScenario(yaml, "dir/s.yaml");
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : Scenario{};
}

const char* const kExplicit = R"(pipeline: {stages: 4, microbatches: 8}
costs:
  forward: 1ms
  backward: 2ms
)";

TEST(ParseScenario, ExplicitCostsBroadcastScalars) {
  const Scenario s = Parse(std::string(kExplicit) + R"(network: {latency: 5us, bandwidth: 25GB/s}
device: {memory: 80GiB, memory_bandwidth: 2TB/s}
methods: [gpipe, 1f1b]
)");
  EXPECT_EQ(s.name, "s");  // from the file name
  EXPECT_EQ(s.source, "dir/s.yaml");
  EXPECT_EQ(s.pipeline.stages, 4);
  EXPECT_EQ(s.pipeline.microbatches, 8);
  EXPECT_EQ(s.pipeline.minibatches, 1);
  EXPECT_EQ(s.pipeline.microbatch_size, 1);
  ASSERT_TRUE(s.costs.has_value());
  EXPECT_FALSE(s.model.has_value());
  EXPECT_EQ(s.costs->forward_ns, std::vector<int64_t>(4, 1'000'000));
  EXPECT_EQ(s.costs->backward_ns, std::vector<int64_t>(4, 2'000'000));
  EXPECT_TRUE(s.costs->backward_input_ns.empty());
  EXPECT_TRUE(s.costs->optimizer_step_ns.empty());
  EXPECT_TRUE(s.costs->activation_bytes.empty());
  EXPECT_EQ(s.network_latency_ns, 5000);
  EXPECT_DOUBLE_EQ(s.network_bandwidth, 25e9);
  EXPECT_EQ(s.device_memory_bytes, 80LL << 30);
  EXPECT_DOUBLE_EQ(s.device_memory_bandwidth, 2e12);
  ASSERT_EQ(s.methods.size(), 2u);
  EXPECT_EQ(s.methods[0].name, "gpipe");
  EXPECT_EQ(s.methods[1].name, "1f1b");
  EXPECT_EQ(s.methods[1].line, 7);
}

TEST(ParseScenario, PerStageListsAndSplitBackward) {
  const Scenario s = Parse(R"(name: lists
description: per-stage values
pipeline:
  stages: 3
  microbatches: 6
  minibatches: 2
  microbatch_size: 4
costs:
  forward: [1ms, 1.5ms, 2ms]
  backward_input: 1ms
  backward_weight: [500us, 0.5ms, 250us]
  optimizer_step: [1us, 2us, 3us]
  activation_bytes: [1GiB, 2GiB, 3GiB]
  activation_bytes_after_input_grad: 512MiB
  message_bytes: 16MiB
  weight_bytes: 1GB
  gradient_bytes: 2GB
  optimizer_state_bytes: [1, 2, 3]
methods:
  - name: pipeoptim
    horizon: code
    delta: exact
  - {name: paci, accumulation: 4}
  - xpipe
)");
  EXPECT_EQ(s.name, "lists");
  EXPECT_EQ(s.description, "per-stage values");
  EXPECT_EQ(s.pipeline.minibatches, 2);
  EXPECT_EQ(s.pipeline.microbatch_size, 4);
  const ExplicitCosts& c = *s.costs;
  EXPECT_EQ(c.forward_ns, (std::vector<int64_t>{1'000'000, 1'500'000, 2'000'000}));
  EXPECT_EQ(c.backward_input_ns, std::vector<int64_t>(3, 1'000'000));
  EXPECT_EQ(c.backward_weight_ns, (std::vector<int64_t>{500'000, 500'000, 250'000}));
  // Not given: the full backward is I + W.
  EXPECT_EQ(c.backward_ns, (std::vector<int64_t>{1'500'000, 1'500'000, 1'250'000}));
  EXPECT_EQ(c.optimizer_step_ns, (std::vector<int64_t>{1000, 2000, 3000}));
  EXPECT_EQ(c.activation_bytes, (std::vector<int64_t>{1LL << 30, 2LL << 30, 3LL << 30}));
  EXPECT_EQ(c.activation_bytes_after_input_grad, std::vector<int64_t>(3, 512LL << 20));
  EXPECT_EQ(c.message_bytes, std::vector<int64_t>(3, 16LL << 20));
  EXPECT_EQ(c.weight_bytes, std::vector<int64_t>(3, 1'000'000'000));
  EXPECT_EQ(c.gradient_bytes, std::vector<int64_t>(3, 2'000'000'000));
  EXPECT_EQ(c.optimizer_state_bytes, (std::vector<int64_t>{1, 2, 3}));
  ASSERT_EQ(s.methods.size(), 3u);
  EXPECT_EQ(s.methods[0].name, "pipeoptim");
  EXPECT_EQ(s.methods[0].params,
            (std::map<std::string, std::string>{{"delta", "exact"}, {"horizon", "code"}}));
  EXPECT_EQ(s.methods[0].line, 20);
  EXPECT_EQ(s.methods[0].column, 5);
  EXPECT_EQ(s.methods[1].params, (std::map<std::string, std::string>{{"accumulation", "4"}}));
  EXPECT_TRUE(s.methods[2].params.empty());
}

TEST(ParseScenario, ModelAndCluster) {
  const Scenario s = Parse(R"(pipeline: {stages: 8, microbatches: 16}
model:
  type: gpt
  layers: 24
  hidden: 1024
  heads: 16
  sequence: 1024
  vocabulary: 50257
  bytes_per_activation: 4
  optimizer_bytes_per_param: 8
  recompute: true
cluster:
  device: {peak_flops: 312TFLOPS, efficiency: 45%, memory: 80GiB, memory_bandwidth: 2TB/s}
  link: {latency: 5us, bandwidth: 200Gbit/s}
)");
  ASSERT_TRUE(s.model.has_value());
  ASSERT_TRUE(s.cluster.has_value());
  EXPECT_FALSE(s.costs.has_value());
  EXPECT_EQ(s.model->layers, 24);
  EXPECT_EQ(s.model->hidden, 1024);
  EXPECT_EQ(s.model->heads, 16);
  EXPECT_EQ(s.model->sequence, 1024);
  EXPECT_EQ(s.model->vocabulary, 50257);
  EXPECT_DOUBLE_EQ(s.model->bytes_per_activation, 4);
  EXPECT_DOUBLE_EQ(s.model->weight_bytes_per_param, 2);  // default
  EXPECT_DOUBLE_EQ(s.model->optimizer_bytes_per_param, 8);
  EXPECT_DOUBLE_EQ(s.model->grad_bytes_per_param, 2);
  EXPECT_TRUE(s.model->recompute);
  EXPECT_DOUBLE_EQ(s.cluster->peak_flops, 312e12);
  EXPECT_DOUBLE_EQ(s.cluster->efficiency, 0.45);
  EXPECT_EQ(s.device_memory_bytes, 80LL << 30);
  EXPECT_DOUBLE_EQ(s.device_memory_bandwidth, 2e12);
  EXPECT_EQ(s.network_latency_ns, 5000);
  EXPECT_DOUBLE_EQ(s.network_bandwidth, 25e9);
  EXPECT_TRUE(s.methods.empty());
}

TEST(ParseScenarioErrors, MalformedYaml) {
  const std::string m = Error("pipeline: [1, 2\ncosts: {", StatusCode::kParseError);
  EXPECT_EQ(m.rfind("s.yaml:", 0), 0u) << m;
  EXPECT_NE(m.find("invalid YAML: "), std::string::npos) << m;
  const std::string tab = Error("pipeline:\n\tstages: 4\n", StatusCode::kParseError);
  EXPECT_NE(tab.find("s.yaml:2:"), std::string::npos) << tab;
}

TEST(ParseScenarioErrors, UnknownKeysSuggestTheClosest) {
  EXPECT_EQ(Error("pipline: {stages: 4, microbatches: 8}\n"),
            "s.yaml:1:1: unknown key 'pipline'; did you mean 'pipeline'?");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\ncosts:\n  forwrd: 1ms\n"),
            "s.yaml:3:3: unknown key 'forwrd' in costs; did you mean 'forward'?");
  EXPECT_EQ(Error("pipeline: {stage: 4, microbatches: 8}\n"),
            "s.yaml:1:12: unknown key 'stage' in pipeline; did you mean 'stages'?");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatch: 8}\n"),
            "s.yaml:1:23: unknown key 'microbatch' in pipeline; did you mean 'microbatches'?");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\nzzz: 1\n"),
            "s.yaml:2:1: unknown key 'zzz' (known keys: name description pipeline costs "
            "network device devices model cluster methods bubble_work plan)");
  EXPECT_EQ(Error(std::string(kExplicit) + "cluster: {devise: {}}\n"),
            "s.yaml:5:1: cluster: is only used with model:; with explicit costs give device: "
            "and network:");
  EXPECT_EQ(Error(R"(pipeline: {stages: 8, microbatches: 16}
model: {layers: 24, hidden: 1024, heads: 16, sequence: 1024, vocab: 50257}
cluster: {device: {peak_flops: 1TFLOPS}}
)"),
            "s.yaml:2:62: unknown key 'vocab' in model (known keys: type layers hidden heads "
            "sequence vocabulary bytes_per_activation weight_bytes_per_param "
            "optimizer_bytes_per_param grad_bytes_per_param recompute attention partition)");
  EXPECT_EQ(Error(R"(pipeline: {stages: 8, microbatches: 16}
model: {layers: 24, hidden: 1024, heads: 16, sequence: 1024, vocabulary: 50257}
cluster: {device: {peak_flop: 1TFLOPS}}
)"),
            "s.yaml:3:20: unknown key 'peak_flop' in cluster.device; did you mean 'peak_flops'?");
}

TEST(ParseScenarioErrors, WrongUnitsAndNegativeValues) {
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\ncosts:\n  forward: 3 parsecs\n"
                  "  backward: 2ms\n"),
            "s.yaml:3:12: costs.forward: expected a duration such as 1.5ms or 200us, got "
            "'3 parsecs' (unknown unit 'parsecs')");
  EXPECT_EQ(Error("pipeline: {stages: 2, microbatches: 8}\ncosts:\n  forward: 1ms\n"
                  "  backward: [2ms, -2ms]\n"),
            "s.yaml:4:19: costs.backward[1]: expected a duration such as 1.5ms or 200us, got "
            "'-2ms' (negative)");
  EXPECT_EQ(Error(std::string(kExplicit) + "  weight_bytes: 12 apples\n"),
            "s.yaml:5:17: costs.weight_bytes: expected a size such as 64MiB or 1.5GB, got "
            "'12 apples' (unknown unit 'apples')");
  EXPECT_EQ(Error(std::string(kExplicit) + "network: {bandwidth: 25GB}\n"),
            "s.yaml:5:22: network.bandwidth: expected a bandwidth such as 25GB/s or "
            "100Gbit/s, got '25GB' (unknown unit 'GB')");
  EXPECT_EQ(Error(std::string(kExplicit) + "network: {latency: [1us]}\n"),
            "s.yaml:5:20: network.latency: expected a duration such as 1.5ms or 200us, got a "
            "list");
  EXPECT_EQ(Error(std::string(kExplicit) + "  message_bytes: {a: 1}\n"),
            "s.yaml:5:18: costs.message_bytes: expected a size such as 64MiB or 1.5GB (one for "
            "every stage) or a list of one per stage, got a map");
  EXPECT_EQ(Error(std::string(kExplicit) + "  optimizer_step:\n"),
            "s.yaml:5:3: costs.optimizer_step has no value");
}

TEST(ParseScenarioErrors, MissingCostsAndListLengths) {
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\ncosts:\n  backward: 2ms\n"),
            "s.yaml:3:3: costs.forward is required");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\ncosts:\n  forward: 2ms\n"),
            "s.yaml:3:3: costs.backward is required (or costs.backward_input and "
            "costs.backward_weight for a split backward)");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\ncosts:\n  forward: 2ms\n"
                  "  backward_input: 1ms\n"),
            "s.yaml:4:3: costs.backward_weight is required when costs.backward_input is given "
            "(a split backward needs both)");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\ncosts:\n  forward: [1ms, 1ms, 1ms]\n"
                  "  backward: 2ms\n"),
            "s.yaml:3:12: costs.forward has 3 values but pipeline.stages is 4");
  EXPECT_EQ(Error("pipeline: {stages: 2, microbatches: 8}\ncosts:\n  forward: 1ms\n"
                  "  backward: 2ms\n  activation_bytes: [1GB]\n"),
            "s.yaml:5:21: costs.activation_bytes has 1 value but pipeline.stages is 2");
  EXPECT_EQ(Error("pipeline: {stages: 2, microbatches: 8}\ncosts: 1ms\n"),
            "s.yaml:2:8: costs must be a map of keys, got '1ms'");
}

TEST(ParseScenarioErrors, Pipeline) {
  EXPECT_EQ(Error("costs: {forward: 1ms, backward: 1ms}\n"), "s.yaml:1:1: pipeline is required");
  EXPECT_EQ(Error("pipeline: {microbatches: 8}\ncosts: {forward: 1ms, backward: 1ms}\n"),
            "s.yaml:1:11: pipeline.stages is required");
  EXPECT_EQ(Error("pipeline: {stages: 4}\ncosts: {forward: 1ms, backward: 1ms}\n"),
            "s.yaml:1:11: pipeline.microbatches is required");
  EXPECT_EQ(Error("pipeline: {stages: 0, microbatches: 8}\n"),
            "s.yaml:1:20: pipeline.stages must be from 1 to 1000000, got 0");
  EXPECT_EQ(Error("pipeline: {stages: four, microbatches: 8}\n"),
            "s.yaml:1:20: pipeline.stages: expected a whole number, got 'four'");
  EXPECT_EQ(Error("pipeline: {stages: 2.5, microbatches: 8}\n"),
            "s.yaml:1:20: pipeline.stages: expected a whole number, got '2.5'");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 99999999999999999999}\n"),
            "s.yaml:1:37: pipeline.microbatches: expected a whole number, got "
            "'99999999999999999999'");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8, minibatches: -1}\n"),
            "s.yaml:1:53: pipeline.minibatches must be from 1 to 1000000, got -1");
}

TEST(ParseScenarioErrors, Forms) {
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\nmethods: [gpipe]\n"),
            "s.yaml:1:1: the scenario needs costs: (explicit per-stage costs) or model: and "
            "cluster: (costs derived from a transformer)");
  EXPECT_EQ(Error(std::string(kExplicit) + "model: {}\n"),
            "s.yaml:5:1: give either costs: (explicit per-stage costs) or model: with cluster: "
            "(costs derived from a transformer), not both");
  const std::string model =
      "pipeline: {stages: 4, microbatches: 8}\n"
      "model: {layers: 24, hidden: 1024, heads: 16, sequence: 1024, vocabulary: 50257}\n";
  EXPECT_EQ(Error(model),
            "s.yaml:2:1: cluster is required with model (cluster.device.peak_flops gives the "
            "compute speed)");
  EXPECT_EQ(Error(model + "cluster: {device: {peak_flops: 1TFLOPS}}\nnetwork: {latency: 1us}\n"),
            "s.yaml:4:1: network: is only used with explicit costs; with model: give "
            "cluster.link");
  EXPECT_EQ(Error(model + "cluster: {link: {latency: 1us}}\n"),
            "s.yaml:3:10: cluster.device is required (it gives peak_flops)");
  EXPECT_EQ(Error(model + "cluster: {device: {memory: 1GB}}\n"),
            "s.yaml:3:19: cluster.device.peak_flops is required");
  EXPECT_EQ(Error(model + "cluster: {device: {peak_flops: 0}}\n"),
            "s.yaml:3:32: cluster.device.peak_flops must be greater than 0");
  EXPECT_EQ(Error(model + "cluster: {device: {peak_flops: 1TFLOPS, efficiency: 1.5}}\n"),
            "s.yaml:3:53: cluster.device.efficiency must be in (0, 1], got 1.5");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\n"
                  "model: {layers: 24, hidden: 1000, heads: 16, sequence: 1024, "
                  "vocabulary: 50257}\ncluster: {device: {peak_flops: 1TFLOPS}}\n"),
            "s.yaml:2:42: model.hidden (1000) must be divisible by model.heads (16)");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\n"
                  "model: {type: bert, layers: 24, hidden: 1024, heads: 16, sequence: 1024, "
                  "vocabulary: 50257}\ncluster: {device: {peak_flops: 1TFLOPS}}\n"),
            "s.yaml:2:15: model.type 'bert' is not supported; the only type is gpt");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\n"
                  "model: {layers: 24, hidden: 1024, heads: 16, sequence: 1024}\n"
                  "cluster: {device: {peak_flops: 1TFLOPS}}\n"),
            "s.yaml:2:8: model.vocabulary is required");
  EXPECT_EQ(Error("pipeline: {stages: 4, microbatches: 8}\n"
                  "model: {layers: 24, hidden: 1024, heads: 16, sequence: 1024, "
                  "vocabulary: 50257, recompute: maybe}\n"
                  "cluster: {device: {peak_flops: 1TFLOPS}}\n"),
            "s.yaml:2:92: model.recompute: expected true or false, got 'maybe'");
}

TEST(ParseScenarioErrors, Methods) {
  EXPECT_EQ(Error(std::string(kExplicit) + "methods:\n  - gpipe\n  - {horizon: code}\n"),
            "s.yaml:7:5: methods[1] has no name (write {name: pipeoptim, ...})");
  EXPECT_EQ(Error(std::string(kExplicit) + "methods:\n  - {name: paci, accumulation: [4, 8]}\n"),
            "s.yaml:6:32: methods[0].accumulation: expected a value such as 'code' or '4', got "
            "a list");
  EXPECT_EQ(Error(std::string(kExplicit) + "methods: gpipe\n"),
            "s.yaml:5:10: methods must be a list of method names or maps such as {name: "
            "pipeoptim, horizon: code}, got 'gpipe'");
  EXPECT_EQ(Error(std::string(kExplicit) + "methods: [[gpipe]]\n"),
            "s.yaml:5:11: methods[0]: expected a method name or a map such as {name: pipeoptim, "
            "horizon: code}, got a list");
  EXPECT_EQ(Error(std::string(kExplicit) + "methods: ['']\n"),
            "s.yaml:5:11: methods[0] has an empty name");
  EXPECT_EQ(Error(std::string(kExplicit) + "methods: [{name: a, x: 1, x: 2}]\n"),
            "s.yaml:5:27: duplicate key 'methods[0].x'");
  EXPECT_EQ(Error(std::string(kExplicit) + "methods: [{name: paci, accumulation: }]\n"),
            "s.yaml:5:24: methods[0].accumulation has no value");
}

TEST(ParseScenarioErrors, DocumentShape) {
  EXPECT_EQ(Error(""),
            "s.yaml: the scenario is empty; expected pipeline: with costs: or model: "
            "and cluster:");
  EXPECT_EQ(Error("# only a comment\n"),
            "s.yaml: the scenario is empty; expected pipeline: with costs: or model: and "
            "cluster:");
  EXPECT_EQ(Error("- a\n- b\n"),
            "s.yaml:1:1: a scenario must be a map of keys (pipeline:, costs: or model:, "
            "methods:, ...), got a list");
  EXPECT_EQ(Error(std::string(kExplicit) + "---\n" + kExplicit),
            "s.yaml:5:1: a scenario is one YAML document, but the file has more");
  // yaml-cpp 0.7 loops forever on these in LoadAll (jbeder/yaml-cpp#1040); found by fuzzing.
  EXPECT_EQ(Error(",", StatusCode::kParseError), "s.yaml:1:1: invalid YAML: unexpected ','");
  EXPECT_EQ(Error(std::string("# T\0P\n,\xff\n", 9), StatusCode::kParseError),
            "s.yaml:2:1: invalid YAML: unexpected ','");
  EXPECT_EQ(Error(std::string(kExplicit) + "costs: {}\n"), "s.yaml:5:1: duplicate key 'costs'");
  // yaml-cpp bounds nesting (it would overflow the stack) and calls the error "bad file".
  const std::string deep = Error(std::string(10000, '['), StatusCode::kParseError);
  EXPECT_EQ(deep.rfind("s.yaml:1:", 0), 0u) << deep;
  EXPECT_NE(deep.find(": invalid YAML: nested more than 499 levels deep"), std::string::npos);
  EXPECT_EQ(Error(std::string(kExplicit) + "[a]: 1\n"),
            "s.yaml:5:1: keys must be plain names, got a list");
  EXPECT_EQ(Error(std::string(kExplicit) + "name: [a]\n"),
            "s.yaml:5:7: name: expected a name, got a list");
}

TEST(ParseScenario, AliasesAndQuotedValues) {
  const Scenario s = Parse(R"(pipeline: {stages: 2, microbatches: 4}
costs:
  forward: &f "1ms"
  backward: *f
)");
  EXPECT_EQ(s.costs->backward_ns, std::vector<int64_t>(2, 1'000'000));
}

// Which backward a method would time is not for pipecast to guess: both forms at once are an
// error at the split key.
TEST(ParseScenarioErrors, FullAndSplitBackwardConflict) {
  EXPECT_EQ(Error("pipeline: {stages: 2, microbatches: 4}\ncosts:\n  forward: 1ms\n"
                  "  backward: 2ms\n  backward_input: 1ms\n  backward_weight: 1ms\n"),
            "s.yaml:5:3: costs.backward conflicts with costs.backward_input and "
            "costs.backward_weight: give the full backward or its split (the full backward is "
            "then their sum), not both");
}

// A million microbatches per run at most, checked where the file says it.
TEST(ParseScenarioErrors, TotalMicrobatches) {
  EXPECT_EQ(Error("pipeline: {stages: 2, microbatches: 1000, minibatches: 1001}\n"
                  "costs: {forward: 1ms, backward: 1ms}\n"),
            "s.yaml:1:56: pipeline.microbatches x pipeline.minibatches is 1001000, more than "
            "the 1000000 microbatches pipecast simulates in one run");
}

TEST(LoadScenarioFile, MissingFileNamesThePath) {
  Result<Scenario> r = LoadScenarioFile("/nonexistent/dir/x.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "scenario file '/nonexistent/dir/x.yaml' not found");
  Result<Scenario> dir = LoadScenarioFile(PIPECAST_SOURCE_DIR "/scenarios");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kIoError);
}

TEST(LoadScenarioFile, ErrorsNameTheFile) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / "pipecast_scenario_test_bad.yaml";
  std::ofstream(path) << "pipeline: {stages: 4, microbatches: 8}\ncosts: {forwad: 1ms}\n";
  Result<Scenario> r = LoadScenarioFile(path.string());
  std::filesystem::remove(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            path.string() + ":2:9: unknown key 'forwad' in costs; did you mean 'forward'?");
}

TEST(DefaultScenario, IsTheShippedFile) {
  std::ifstream in(PIPECAST_SOURCE_DIR "/scenarios/default.yaml");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(DefaultScenarioYaml(), text.str());
  Result<Scenario> s = DefaultScenario();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->name, "default");
  EXPECT_EQ(s->source, "<built-in default.yaml>");
  EXPECT_EQ(s->pipeline.stages, 8);
  ASSERT_TRUE(s->model.has_value());
  EXPECT_EQ(s->model->layers, 24);
  // Every method pipecast knows appears in the default scenario.
  std::vector<std::string> names;
  for (const MethodSpec& m : s->methods) names.push_back(m.name);
  std::vector<std::string> known;
  for (const MethodInfo& m : Methods()) known.push_back(m.name);
  EXPECT_EQ(names, known);
}

// Virtual stages a method needs: pipeline.stages, times `chunks` for interleaved (default 2),
// times 2 for zb-v.
int32_t VirtualStages(const Scenario& s, const MethodSpec& m) {
  if (m.name == "zb-v") return 2 * s.pipeline.stages;
  if (m.name != "interleaved") return s.pipeline.stages;
  const auto it = m.params.find("chunks");
  return s.pipeline.stages * (it == m.params.end() ? 2 : std::stoi(it->second));
}

TEST(ShippedScenarios, EveryFileParsesAndBuildsForEveryMethod) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PIPECAST_SOURCE_DIR "/scenarios")) {
    if (entry.path().extension() != ".yaml") continue;
    if (entry.path().string().ends_with(".job.yaml")) continue;  // training jobs (job_test)
    ++files;
    SCOPED_TRACE(entry.path().string());
    Result<Scenario> s = LoadScenarioFile(entry.path().string());
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->name, entry.path().stem().string());
    EXPECT_FALSE(s->description.empty());
    EXPECT_FALSE(s->methods.empty());
    for (const MethodSpec& m : s->methods) {
      Result<sim::CostModel> cost = sim::BuildCostModel(*s, VirtualStages(*s, m));
      ASSERT_TRUE(cost.ok()) << m.name << ": " << cost.status().message();
      EXPECT_EQ(cost->stages.size(), static_cast<size_t>(VirtualStages(*s, m)));
      for (const sim::StageCost& c : cost->stages) {
        EXPECT_GT(c.forward, 0) << m.name;
        EXPECT_GT(c.backward, 0) << m.name;
      }
    }
  }
  EXPECT_GE(files, 5);
}

TEST(EditDistance, Levenshtein) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
  EXPECT_EQ(EditDistance("forwrd", "forward"), 1u);
  EXPECT_EQ(EditDistance("microbatch", "microbatches"), 2u);
  EXPECT_EQ(ClosestMatch("forwrd", {"forward", "backward"}), "forward");
  EXPECT_EQ(ClosestMatch("xyz", {"forward", "backward"}), "");
  EXPECT_EQ(ClosestMatch("ab", {"cd"}), "");  // a 2-letter word allows one edit only
  EXPECT_EQ(ClosestMatch("", {"a"}), "");
}

}  // namespace
}  // namespace pipecast::ir
