// `pipecast plan` as a user meets it: the default space within a second, the JSON document the
// report reads, a chosen configuration written as a scenario that `pipecast sim` simulates to
// the same numbers, the sweep, and one clear message with exit status 1 for each bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_test_util.h"

namespace {

using pipecast::testing::FailsWith;
using pipecast::testing::Output;
using pipecast::testing::Pipecast;
using pipecast::testing::Slurp;
using pipecast::testing::TempDir;
using pipecast::testing::WriteFile;

TEST(PlanCli, DefaultSpaceJsonHasEveryField) {
  const Output o = Pipecast("plan --format json");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto j = nlohmann::json::parse(o.text);  // piped: no progress line mixed in
  EXPECT_EQ(j["schema"], "pipecast.plan");
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["scenario"]["name"], "default");
  EXPECT_EQ(j["objective"], "time_per_sample");
  EXPECT_TRUE(j["target_loss"].is_null());
  EXPECT_EQ(j["constraints"]["memory_cap_bytes"], int64_t{80} << 30);  // the device memory
  EXPECT_TRUE(j["constraints"]["max_gradient_delay"].is_null());
  EXPECT_GE(j["evaluated"].get<int>(), 2000);  // several thousand configurations
  EXPECT_LT(j["elapsed_s"].get<double>(), 1.0);
  EXPECT_EQ(j["configs"].size(), j["evaluated"].get<size_t>());
  EXPECT_FALSE(j["configs_truncated"].get<bool>());
  const auto& best = j["best"];
  for (const char* key : {"rank",
                          "method",
                          "label",
                          "params",
                          "stages",
                          "microbatches",
                          "microbatch_size",
                          "data_parallel",
                          "recompute",
                          "partition",
                          "time_per_sample_s",
                          "samples_per_s",
                          "time_per_step_s",
                          "peak_memory_bytes",
                          "bubble_fraction",
                          "max_gradient_delay",
                          "max_version_gap",
                          "feasible",
                          "infeasible_reason",
                          "time_to_loss_s"}) {
    EXPECT_TRUE(best.contains(key)) << key;
  }
  EXPECT_EQ(best["rank"], 1);
  EXPECT_EQ(best["data_parallel"], 1);
  EXPECT_EQ(best, j["configs"][0]);
  EXPECT_EQ(best["microbatches"].get<int>() * best["microbatch_size"].get<int>(), 32);
  for (const auto& c : j["pareto"]) EXPECT_TRUE(c["feasible"].get<bool>());
  for (const auto& c : j["configs"]) {
    EXPECT_GE(c["time_per_sample_s"].get<double>(), best["time_per_sample_s"].get<double>());
  }
}

TEST(PlanCli, EmittedScenarioSimulatesToTheSameNumbers) {
  const std::string dir = TempDir("plan_emit");
  const Output o = Pipecast("plan --format json -o " + dir + "/plan.json --emit-scenario 3 " + dir +
                            "/third.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto plan = nlohmann::json::parse(Slurp(dir + "/plan.json"));
  const auto& third = plan["configs"][2];
  const Output sim = Pipecast("sim " + dir + "/third.yaml --format json");
  ASSERT_EQ(sim.status, 0) << sim.text;
  const auto run = nlohmann::json::parse(sim.text)["results"][0];
  EXPECT_EQ(run["method"], third["method"]);
  // Copies of the pipeline (AvgPipe's pipelines, data parallelism) multiply both.
  const int copies = run["devices"].get<int>() / third["stages"].get<int>();
  EXPECT_EQ(run["devices"].get<int>(), copies * third["stages"].get<int>());
  EXPECT_EQ(run["microbatches"].get<int>(), copies * third["microbatches"].get<int>());
  EXPECT_EQ(run["microbatch_size"], third["microbatch_size"]);
  EXPECT_EQ(run["steady_throughput_samples_per_s"], third["samples_per_s"]);
  int64_t peak = 0;
  for (const auto& st : run["stages"])
    peak = std::max(peak, st["peak_memory_bytes"].get<int64_t>());
  EXPECT_EQ(peak, third["peak_memory_bytes"]);
  EXPECT_TRUE(FailsWith("plan --emit-scenario 0 " + dir + "/x.yaml",
                        "--emit-scenario 0: the rank must be"));
}

TEST(PlanCli, TableAndCsvAndSweep) {
  const Output table = Pipecast("plan --top 3");
  ASSERT_EQ(table.status, 0) << table.text;
  EXPECT_NE(table.text.find("Pareto front (time vs peak memory vs gradient delay)"),
            std::string::npos);
  EXPECT_NE(table.text.find("data-parallel copies R in {1} (D x R <= 8 devices)"),
            std::string::npos)
      << table.text;
  EXPECT_EQ(table.text.find("configurations simulated"), std::string::npos);  // quiet when piped
  const Output csv = Pipecast("plan --format csv --methods 1f1b --stages 8");
  ASSERT_EQ(csv.status, 0) << csv.text;
  EXPECT_EQ(csv.text.rfind("rank,method,label,params,stages,", 0), 0u) << csv.text;
  // 1f1b x 6 microbatch sizes x recompute off/on x balanced and even (megatron-core needs
  // 26 slots to divide by 8): 24 rows and the header.
  EXPECT_EQ(std::count(csv.text.begin(), csv.text.end(), '\n'), 25) << csv.text;
  const Output sweep = Pipecast("plan --sweep stages");
  ASSERT_EQ(sweep.status, 0) << sweep.text;
  EXPECT_NE(sweep.text.find("D=16"), std::string::npos) << sweep.text;
  EXPECT_NE(sweep.text.find("gradient delay / version gap"), std::string::npos);
}

// Steps to `target` of one method of a profile, computed here from the file: per seed the
// linear interpolation between the evaluations around the crossing, then the mean.
double StepsTo(const nlohmann::json& profile, const std::string& label, double target) {
  for (const auto& m : profile["methods"]) {
    if (m["label"] != label) continue;
    double sum = 0;
    for (const auto& seed : m["seeds"]) {
      const auto& p = seed["points"];
      size_t i = 0;
      while (p[i]["test_loss"].get<double>() > target) ++i;
      const double s1 = p[i]["steps"], l1 = p[i]["test_loss"];
      const double s0 = p[i - 1]["steps"], l0 = p[i - 1]["test_loss"];
      sum += s0 + (l0 - target) / (l0 - l1) * (s1 - s0);
    }
    return sum / static_cast<double>(m["seeds"].size());
  }
  return 0;
}

TEST(PlanCli, TimeToLossFromTheShippedProfile) {
  const Output o = Pipecast(
      "plan scenarios/paci-gpt2-medium.yaml --methods 1f1b,paci:accumulation=4 --format json");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto plan = nlohmann::json::parse(o.text);
  const auto profile =
      nlohmann::json::parse(Slurp("scenarios/gpt-fortunes-adamw.convergence.json"));
  const double target = plan["target_loss"];
  EXPECT_EQ(plan["objective"], "time_to_loss");
  ASSERT_EQ(plan["configs"].size(), 2u);
  const nlohmann::json* paci = nullptr;
  const nlohmann::json* flush = nullptr;
  for (const auto& c : plan["configs"]) (c["method"] == "paci" ? paci : flush) = &c;
  const double paci_steps = StepsTo(profile, "paci(accumulation=4)", target);
  const double flush_steps = StepsTo(profile, "1f1b", target);
  EXPECT_NEAR((*paci)["time_to_loss"]["steps_to_loss"].get<double>(), paci_steps, 1e-9);
  EXPECT_NEAR((*paci)["time_to_loss_s"].get<double>(),
              paci_steps * (*paci)["time_per_step_s"].get<double>(), 1e-9);
  EXPECT_NEAR((*flush)["time_to_loss_s"].get<double>(),
              flush_steps * (*flush)["time_per_step_s"].get<double>(), 1e-9);
  const auto& t = (*paci)["time_to_loss"];
  EXPECT_NEAR(t["speedup_vs_baseline"].get<double>(),
              (*flush)["time_to_loss_s"].get<double>() / (*paci)["time_to_loss_s"].get<double>(),
              1e-12);
  EXPECT_NEAR(t["speedup_vs_baseline"].get<double>(),
              t["throughput_factor"].get<double>() * t["convergence_factor"].get<double>(), 1e-12);
  EXPECT_EQ(plan["time_to_loss"]["baseline_rank"], (*flush)["rank"]);
}

TEST(PlanCli, BadInputOneMessageEach) {
  EXPECT_TRUE(FailsWith("plan --memory-cap 1GiB",
                        "the memory cap binds: --memory-cap allows 1.00 GiB per device, and the "
                        "configuration needing the least is"));
  EXPECT_TRUE(FailsWith("plan --stages 64", "the search space is empty"));
  EXPECT_TRUE(FailsWith("plan --microbatch-sizes 3", "does not divide the global batch of 32"));
  EXPECT_TRUE(FailsWith("plan --objective time_to_loss", "time_to_loss needs a target loss"));
  EXPECT_TRUE(FailsWith("plan scenarios/toy-uniform.yaml --stages 2",
                        "explicit per-stage costs (costs:) describe one pipeline"));
  const std::string dir = TempDir("plan_bad");
  const std::string old =
      WriteFile(dir, "old.json", R"({"schema": "pipecast.convergence", "schema_version": 0})");
  EXPECT_TRUE(FailsWith("plan --objective time_to_loss --target-loss 2 --convergence " + old,
                        "schema_version is 0, but this pipecast reads version 1"));
  const std::string run =
      WriteFile(dir, "run.json", R"({"schema": "pipecast-run", "schema_version": 2})");
  EXPECT_TRUE(FailsWith("plan --convergence " + run,
                        "is a pipecast-run report, not a convergence profile"));
  const std::string mlp = WriteFile(dir, "mlp.json", R"({"schema": "pipecast.convergence",
  "schema_version": 1, "job": {"name": "m", "source": "m.job.yaml", "model_type": "mlp",
  "model": "mlp: hidden sizes [256]", "dataset": "fashion-mnist", "optimizer": "sgd",
  "stages": 4, "microbatches": 4, "microbatch_size": 32},
  "methods": [{"label": "1f1b", "method": "1f1b", "params": {}, "asynchronous": false,
    "steps_per_minibatch": 1.0, "seeds": [{"seed": 1, "points": [{"steps": 1.0,
    "samples": 128, "minibatches": 1, "epoch": 0.1, "train_loss": 1.0, "test_loss": 1.0,
    "test_accuracy": 0.5}]}]}]})");
  EXPECT_TRUE(FailsWith("plan --objective time_to_loss --target-loss 2 --convergence " + mlp,
                        "was measured on a mlp model (mlp: hidden sizes [256], job m.job.yaml), "
                        "but the scenario's model is a gpt"));
  const std::string scenario = WriteFile(dir, "s.yaml", R"(pipeline: {stages: 4, microbatches: 8}
model: {layers: 8, hidden: 256, heads: 4, sequence: 128, vocabulary: 1000}
cluster: {device: {peak_flops: 100TFLOPS}}
plan:
  stage: [2, 4]
)");
  EXPECT_TRUE(FailsWith("plan " + scenario,
                        "s.yaml:5:3: unknown key 'stage' in plan; did you mean 'stages'?"));
}

// A cluster of a CPU-like device and three GPUs: each device is held to its own capacity, the
// best configuration uses all four devices (D = 1 and 2 run on the CPU first), a depth beyond
// the devices listed is refused naming the key, and --sweep stops at the devices listed.
TEST(PlanCli, HeterogeneousDevices) {
  const Output o = Pipecast("plan scenarios/heterogeneous.yaml --format json");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto j = nlohmann::json::parse(o.text);
  EXPECT_TRUE(j["constraints"]["memory_cap_bytes"].is_null());
  EXPECT_TRUE(j["constraints"]["per_device_capacity"].get<bool>());
  EXPECT_EQ(j["best"]["stages"], 4);
  EXPECT_EQ(j["space"]["stages"], nlohmann::json({1, 2, 4}));
  const Output text = Pipecast("plan scenarios/heterogeneous.yaml");
  EXPECT_NE(text.text.find("memory cap each device's own capacity"), std::string::npos)
      << text.text;
  EXPECT_TRUE(FailsWith("plan scenarios/heterogeneous.yaml --stages 2,8",
                        "plan.stages: D = 8 needs 8 devices, but cluster.devices describes 4"));
  const Output sweep = Pipecast("plan scenarios/heterogeneous.yaml --sweep stages --format json");
  ASSERT_EQ(sweep.status, 0) << sweep.text;
  EXPECT_EQ(nlohmann::json::parse(sweep.text)["space"]["stages"], nlohmann::json({1, 2, 4}));
}

}  // namespace
