// End-to-end tests of the `pipecast` binary: what a user sees, and the exit status.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/cli_test_util.h"

namespace {

using pipecast::testing::Output;
using pipecast::testing::Pipecast;
using pipecast::testing::Slurp;
using pipecast::testing::TempDir;

TEST(Cli, DefaultScenarioComparesEveryMethod) {
  const Output o = Pipecast("sim");
  ASSERT_EQ(o.status, 0) << o.text;
  for (const char* m : {"gpipe", "1f1b", "interleaved", "zb-h1", "zb-h2", "pipedream",
                        "pipedream-2bw", "spectrain", "xpipe", "pipemare", "pipeoptim", "paci"})
    EXPECT_NE(o.text.find(m), std::string::npos) << m;
}

TEST(Cli, JsonHasTheDocumentedFields) {
  const Output o = Pipecast("sim scenarios/toy-uniform.yaml --methods 1f1b,pipedream --format json");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto j = nlohmann::json::parse(o.text);
  ASSERT_EQ(j["results"].size(), 2u);
  const auto& r = j["results"][0];
  EXPECT_EQ(r["method"], "1f1b");
  for (const char* key : {"params", "makespan_s", "throughput_samples_per_s",
                          "steady_throughput_samples_per_s", "bubble", "stages"})
    EXPECT_TRUE(r.contains(key)) << key;
  for (const char* key : {"idle_fraction", "overhead_vs_ideal", "zb_rate"})
    EXPECT_TRUE(r["bubble"].contains(key)) << key;
  for (const char* key : {"stage", "busy_s", "span_s", "peak_memory_bytes",
                          "peak_activations_microbatches", "live_weight_versions_max",
                          "version_gap_max", "version_gap_mean", "gradient_delay_max",
                          "prediction_horizon", "over_memory"})
    EXPECT_TRUE(r["stages"][0].contains(key)) << key;
  // PipeDream on 4 stages stashes 4, 3, 2, 1 versions.
  const auto& pd = j["results"][1]["stages"];
  for (int k = 0; k < 4; ++k) EXPECT_EQ(pd[k]["live_weight_versions_max"], 4 - k);
}

TEST(Cli, TracesAndPicturesAreWritten) {
  const std::string dir = TempDir("out");
  const Output o = Pipecast("sim scenarios/toy-uniform.yaml --methods zb-h1,paci:accumulation=4 "
                       "--trace-dir " + dir + "/t --svg-dir " + dir + "/s -q");
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_TRUE(std::filesystem::exists(dir + "/t/zb-h1.trace.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/s/paci-accumulation-4.svg"));
  const auto trace = nlohmann::json::parse(Slurp(dir + "/t/zb-h1.trace.json"));
  EXPECT_GT(trace["traceEvents"].size(), 100u);
}

TEST(Cli, ScheduleRoundTripsThroughValidateAndSim) {
  const std::string dir = TempDir("sched");
  for (const char* format : {"text", "json", "torch-csv"}) {
    const std::string ext = std::string(format) == "json" ? ".json"
                            : std::string(format) == "torch-csv" ? ".csv" : ".txt";
    const std::string file = dir + "/zb" + ext;
    Output o = Pipecast("schedule --method zb-h1 --stages 4 --microbatches 8 --format " +
                   std::string(format) + " -o " + file);
    ASSERT_EQ(o.status, 0) << o.text;
    o = Pipecast("validate " + file);
    EXPECT_EQ(o.status, 0) << o.text;
    EXPECT_NE(o.text.find("valid"), std::string::npos);
  }
  // A hand-written schedule simulates like the generated method.
  const Output gen = Pipecast("sim scenarios/toy-zero-bubble.yaml --methods zb-h1 --format csv");
  const Output file = Pipecast("sim scenarios/toy-zero-bubble.yaml --methods " + dir +
                          "/zb.txt --format csv");
  ASSERT_EQ(gen.status, 0) << gen.text;
  ASSERT_EQ(file.status, 0) << file.text;
  // The first data row (stage 0) is identical after the scenario and method-label columns.
  auto metrics = [](const std::string& csv) {
    const auto header_end = csv.find('\n');
    std::string row = csv.substr(header_end + 1, csv.find('\n', header_end + 1) - header_end);
    for (int i = 0; i < 3; ++i) row = row.substr(row.find(',') + 1);
    return row;
  };
  EXPECT_EQ(metrics(gen.text), metrics(file.text));
  EXPECT_NE(metrics(gen.text).find("0.027"), std::string::npos);  // makespan 27 x 1 ms
}

TEST(Cli, InvalidScheduleListsEveryProblem) {
  const std::string dir = TempDir("bad");
  std::ofstream(dir + "/bad.txt") << "# pipecast schedule v1\nmethod custom\ndevices 2\n"
                                     "microbatches 2\ndevice 0: F0 F1 B0 B1 S\n"
                                     "device 1: F0 B0 B1 S\n";
  const Output o = Pipecast("validate " + dir + "/bad.txt");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("device 1"), std::string::npos) << o.text;
}

TEST(Cli, ErrorsAreOneClearMessageAndExitOne) {
  Output o = Pipecast("sim --methods pipedrem");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("did you mean 'pipedream'"), std::string::npos) << o.text;
  o = Pipecast("sim no-such-file.yaml");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("no-such-file.yaml"), std::string::npos) << o.text;
  o = Pipecast("schedule --method pipedream-2bw --stages 8 --microbatches 4");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("microbatches >= stages"), std::string::npos) << o.text;
  o = Pipecast("sim --methods paci:accumulation");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("not key=value"), std::string::npos) << o.text;
}

TEST(Cli, UsageErrorsExitTwoAndHelpHasExamples) {
  EXPECT_EQ(Pipecast("sim --format xml").status, 2);
  EXPECT_EQ(Pipecast("frobnicate").status, 2);
  const Output help = Pipecast("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.text.find("Examples:"), std::string::npos);
}

TEST(Cli, SimIsFastOnTheDefaultScenario) {
  // Not a benchmark (docs/performance.md has those); a guard that every method simulates.
  const Output o = Pipecast("sim --format csv");
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_GT(std::count(o.text.begin(), o.text.end(), '\n'), 12 * 8);
}

constexpr const char* kSmallJob = R"(name: small
model: {type: mlp, hidden_sizes: [16, 16]}
data: {dataset: synthetic, train_examples: 512, test_examples: 128}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
pipeline: {stages: 3, microbatches: 4, microbatch_size: 8}
epochs: 1
evaluations: 2
methods: [1f1b, pipedream, {name: paci, accumulation: 2}]
)";

TEST(CliRun, TrainsEveryMethodAndWritesReports) {
  const std::string dir = TempDir("run");
  std::ofstream(dir + "/small.job.yaml") << kSmallJob;
  Output o = Pipecast("run " + dir + "/small.job.yaml -q --format json -o " + dir + "/r.json " +
                      "--trace " + dir + "/t.json --profile-out " + dir + "/profile.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto j = nlohmann::json::parse(Slurp(dir + "/r.json"));
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["results"][1]["method"], "pipedream");
  EXPECT_EQ(j["results"][1]["evaluations"].size(), 2u);
  EXPECT_EQ(j["results"][1]["stages"][0]["gradient_delay_max"], 2);
  EXPECT_GT(nlohmann::json::parse(Slurp(dir + "/t.json"))["traceEvents"].size(), 10u);
  // The measured costs are a scenario the simulator accepts.
  o = Pipecast("sim " + dir + "/profile.yaml --format csv");
  EXPECT_EQ(o.status, 0) << o.text;
  o = Pipecast("run " + dir + "/small.job.yaml -q --methods 1f1b --compare-sim");
  EXPECT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("simulated/mb"), std::string::npos) << o.text;
}

TEST(CliRun, BadJobsAreOneClearMessage) {
  const std::string dir = TempDir("badrun");
  auto run = [&](const std::string& text) {
    std::ofstream(dir + "/j.yaml") << text;
    return Pipecast("run " + dir + "/j.yaml -q");
  };
  std::string job = kSmallJob;
  Output o = run(job.replace(job.find("optimizer:"), 10, "optimiser:"));
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("j.yaml:4:1: unknown key 'optimiser' (did you mean 'optimizer'?)"),
            std::string::npos)
      << o.text;
  job = kSmallJob;
  o = run(job.replace(job.find("name: sgd"), 9, "name: sgdd"));
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("sgdd"), std::string::npos) << o.text;
  job = kSmallJob;
  o = run(job.replace(job.find("stages: 3"), 9, "stages: 9"));
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("5 layers but 9 stages"), std::string::npos) << o.text;
  o = run("model: [");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("invalid YAML"), std::string::npos) << o.text;
  o = Pipecast("run " + dir + "/none.yaml");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("no such job file"), std::string::npos) << o.text;
  o = Pipecast("run " + dir + "/j.yaml --resume");
  EXPECT_EQ(o.status, 2);
}

TEST(CliRun, CorruptCheckpointIsRefusedAndLeftAlone) {
  const std::string dir = TempDir("ckpt");
  std::ofstream(dir + "/small.job.yaml") << kSmallJob;
  std::filesystem::create_directories(dir + "/ck");
  std::ofstream(dir + "/ck/1f1b.safetensors") << "not a checkpoint";
  const Output o = Pipecast("run " + dir + "/small.job.yaml -q --methods 1f1b --checkpoint-dir " +
                            dir + "/ck --resume");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("not a valid safetensors checkpoint"), std::string::npos) << o.text;
  EXPECT_EQ(Slurp(dir + "/ck/1f1b.safetensors"), "not a checkpoint");
}

// --seeds K: one result per seed and a summary with mean and standard deviation; predicting
// methods carry the job's optimizer in their label and their prediction accuracy per stage.
TEST(CliRun, SeedsGiveSpreadAndPredictionsAreReported) {
  const std::string dir = TempDir("seeds");
  std::ofstream(dir + "/small.job.yaml") << kSmallJob;
  const Output o = Pipecast("run " + dir + "/small.job.yaml -q --seeds 2 --methods 1f1b,pipeoptim "
                            "--format json -o " + dir + "/r.json");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto j = nlohmann::json::parse(Slurp(dir + "/r.json"));
  EXPECT_EQ(j["schema_version"], 2);
  ASSERT_EQ(j["results"].size(), 4u);
  EXPECT_EQ(j["results"][0]["seed"], 1);
  EXPECT_EQ(j["results"][1]["seed"], 2);
  // Different seeds, different runs.
  EXPECT_NE(j["results"][0]["final_accuracy"], j["results"][1]["final_accuracy"]);
  ASSERT_EQ(j["summary"].size(), 2u);
  const auto& s = j["summary"][1];
  EXPECT_EQ(s["label"], "pipeoptim[sgd]");
  EXPECT_EQ(s["seeds"], 2);
  const double a = j["results"][2]["final_accuracy"], b = j["results"][3]["final_accuracy"];
  EXPECT_NEAR(s["final_accuracy_mean"].get<double>(), (a + b) / 2, 1e-12);
  EXPECT_NEAR(s["final_accuracy_std"].get<double>(), std::abs(a - b) / std::sqrt(2.0), 1e-12);
  // Stage 0 of PipeOptim predicts (s = 2 at D = 3); the last stage does not (s = 0).
  const auto& stages = j["results"][2]["stages"];
  EXPECT_GT(stages[0]["predictions_measured"].get<int>(), 0);
  EXPECT_GT(stages[0]["prediction_error_mean"].get<double>(), 0.0);
  EXPECT_FALSE(stages[2].contains("prediction_error_mean"));
  EXPECT_EQ(j["results"][2]["delta_rule"], "paper");
  const Output table = Pipecast("run " + dir + "/small.job.yaml -q --seeds 2 --methods pipeoptim");
  ASSERT_EQ(table.status, 0) << table.text;
  EXPECT_NE(table.text.find("pipeoptim[sgd]"), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("2 seeds (mean±sd)"), std::string::npos) << table.text;
  EXPECT_NE(table.text.find("±"), std::string::npos) << table.text;
}

// A 1F1B profile carries the LogP overheads and the split backward, and predicts other methods.
TEST(CliRun, ProfilePredictsOtherMethodsOutOfSample) {
  const std::string dir = TempDir("predict");
  std::ofstream(dir + "/small.job.yaml") << kSmallJob;
  Output o = Pipecast("run " + dir + "/small.job.yaml -q --methods 1f1b --profile-out " + dir +
                      "/p.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  const std::string profile = Slurp(dir + "/p.yaml");
  for (const char* key : {"backward_input:", "backward_weight:", "send_overhead:",
                          "recv_overhead:", "memory_bandwidth:", "weight_bytes:"})
    EXPECT_NE(profile.find(key), std::string::npos) << key << "\n" << profile;
  o = Pipecast("run " + dir + "/small.job.yaml -q --methods zb-h1,pipedream --predict-with " + dir +
               "/p.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("out of sample"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("predicted/mb"), std::string::npos) << o.text;
  EXPECT_NE(o.text.find("zb-h1"), std::string::npos) << o.text;
  // A scenario of another pipeline depth is refused with the reason.
  std::ofstream(dir + "/other.yaml") << "pipeline: {stages: 2, microbatches: 4}\n"
                                         "costs: {forward: 1ms, backward: 2ms}\n";
  o = Pipecast("run " + dir + "/small.job.yaml -q --methods 1f1b --predict-with " + dir +
               "/other.yaml");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("describes 2 stages but"), std::string::npos) << o.text;
}

// The predicted time per minibatch of `label`'s line in `pipecast run --predict-with` output.
double PredictedMs(const std::string& text, const std::string& label) {
  const size_t table = text.find("predicted/mb");
  EXPECT_NE(table, std::string::npos) << text;
  std::istringstream lines(text.substr(table == std::string::npos ? 0 : table));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string name, measured, predicted;
    if (words >> name >> measured >> predicted && name == label) return std::stod(predicted);
  }
  ADD_FAILURE() << "no line for " << label << " in\n" << text;
  return 0;
}

// Devices of different speeds do not break `pipecast run`: the executor trains as always, and a
// profile given device speeds predicts with them. Halving every device's speed doubles the
// compute time of each action; communication and copies are not scaled, so the prediction grows
// by at most 2x.
TEST(CliRun, PredictsWithDevicesOfDifferentSpeeds) {
  const std::string dir = TempDir("hetero");
  std::ofstream(dir + "/small.job.yaml") << kSmallJob;
  const std::string run = "run " + dir + "/small.job.yaml -q --methods 1f1b ";
  Output o = Pipecast(run + "--profile-out " + dir + "/p.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  std::ofstream(dir + "/slow.yaml") << Slurp(dir + "/p.yaml")
                                    << "devices: [{count: 3, speed: 0.5}]\n";
  o = Pipecast(run + "--predict-with " + dir + "/p.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  const double plain = PredictedMs(o.text, "1f1b");
  o = Pipecast(run + "--predict-with " + dir + "/slow.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  const double slow = PredictedMs(o.text, "1f1b");
  EXPECT_GT(slow, plain) << o.text;
  EXPECT_LE(slow, 2 * plain + 0.002) << o.text;  // the table prints to 1 us
}

TEST(CliRun, CudaWithoutTheDeviceIsOneLineAndExitOne) {
  const std::string dir = TempDir("cuda");
  std::ofstream(dir + "/small.job.yaml") << kSmallJob;
  const Output o = Pipecast("run " + dir + "/small.job.yaml -q --methods 1f1b --device cuda");
  EXPECT_EQ(o.status, 1) << o.text;
  EXPECT_NE(o.text.find("CUDA"), std::string::npos) << o.text;
  EXPECT_EQ(std::count(o.text.begin(), o.text.end(), '\n'), 1) << o.text;
}

}  // namespace
