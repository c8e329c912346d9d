// `pipecast sim` and `pipecast validate` as a user meets them: bad input gives one clear message
// and exit status 1 within seconds; schedule files mean what they say.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli_test_util.h"

namespace {

using pipecast::testing::Output;
using pipecast::testing::Pipecast;
using pipecast::testing::Slurp;
using pipecast::testing::TempDir;

// Exit 1 and `message` in the output.
void ExpectError(const std::string& args, const std::string& message) {
  const auto start = std::chrono::steady_clock::now();
  const Output o = Pipecast(args);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(o.status, 1) << args << "\n" << o.text;
  EXPECT_NE(o.text.find(message), std::string::npos) << args << "\n" << o.text;
  EXPECT_LT(seconds, 10.0) << args;
}

std::string Write(const std::string& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir + "/" + name) << text;
  return dir + "/" + name;
}

TEST(SimInput, EndlessAndOversizedFilesStopAtTheCap) {
  ExpectError("sim /dev/zero", "scenario file '/dev/zero' is larger than 64 MiB");
  ExpectError("validate /dev/zero", "schedule file '/dev/zero' is larger than 64 MiB");
}

TEST(SimInput, DashReadsTheScenarioFromStandardInput) {
  const Output o = Pipecast("sim - --methods 1f1b --format json < scenarios/toy-uniform.yaml");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto j = nlohmann::json::parse(o.text);
  EXPECT_EQ(j["scenario"]["source"], "standard input");
  EXPECT_EQ(j["results"][0]["makespan_ns"], 33'000'000);  // (M + D - 1)(tF + tB) = 11 x 3 ms
}

TEST(SimInput, MethodListsAndParameters) {
  ExpectError("sim --methods ''", "--methods: an empty entry");
  ExpectError("sim --methods 1f1b,,zb-h1", "--methods: an empty entry");
  ExpectError("sim --methods paci:accumulation=4:accumulation=8",
              "gives parameter 'accumulation' twice");
  ExpectError("schedule --method paci --param accumulation=4 --param accumulation=8",
              "--param 'accumulation' is given twice");
}

TEST(SimInput, OutputDirectoryThatIsAFileFailsBeforeSimulating) {
  const std::string dir = TempDir("svgfile");
  Write(dir, "pictures", "not a directory");
  ExpectError("sim --svg-dir " + dir + "/pictures",
              "--svg-dir " + dir + "/pictures: is a file, not a directory");
  ExpectError("sim --trace-dir " + dir + "/pictures", "is a file, not a directory");
}

TEST(SimInput, ArithmeticThatDoesNotFitIsAnError) {
  const std::string dir = TempDir("overflow");
  Write(dir, "zero.yaml",
        "pipeline: {stages: 2, microbatches: 4}\n"
        "costs: {forward: 0ms, backward: 0ms}\n");
  ExpectError("sim " + dir + "/zero.yaml --methods 1f1b",
              "1f1b: every action takes 0 ns (the scenario's costs are all zero)");
  Write(dir, "slow.yaml",
        "pipeline: {stages: 2, microbatches: 4}\n"
        "costs: {forward: 1ms, backward: 2ms, message_bytes: 2GB}\n"
        "network: {bandwidth: 1bit/s}\n");
  ExpectError("sim " + dir + "/slow.yaml --methods 1f1b",
              "stage 0: moving message_bytes (2000000000 bytes) at 0.125 bytes/s takes longer "
              "than the simulator's clock holds");
}

// Sizes are checked before memory is spent: the refusal names the size, the estimate and the
// flag that raises the limit.
TEST(SimInput, RunsAboveTheMemoryBudgetAreRefusedUpFront) {
  const std::string dir = TempDir("budget");
  Write(dir, "huge.yaml",
        "pipeline: {stages: 64, microbatches: 1000000}\n"
        "costs: {forward: 1ms, backward: 2ms}\nmethods: [1f1b]\n");
  ExpectError("sim " + dir + "/huge.yaml --max-memory 1GiB",
              "huge.yaml:3: 1f1b with 64 stages x 1000000 microbatches (128000000 compute "
              "actions) needs about");
  ExpectError("sim " + dir + "/huge.yaml --max-memory 1GiB",
              "more than the limit of 1.00 GiB; "
              "raise it with --max-memory");
  ExpectError("sim " + dir + "/huge.yaml --max-memory lots", "--max-memory: expected a size");
  ExpectError("sim " + dir + "/huge.yaml --max-memory 1GiB --svg-dir " + dir + "/s",
              "with its traces and pictures");
}

// A schedule file is simulated with the scenario's microbatch size (its own may only agree), so
// it gives exactly the generated method's throughput.
TEST(SimSchedules, FileSimulatesLikeTheGeneratedMethod) {
  const std::string dir = TempDir("sameshape");
  Output o = Pipecast("schedule --method zb-h1 --stages 8 --microbatches 16 --minibatches 4 -o " +
                      dir + "/zb.txt");
  ASSERT_EQ(o.status, 0) << o.text;
  std::string text = Slurp(dir + "/zb.txt");
  text.erase(text.find("microbatch_size 1\n"), 18);  // a hand-written file without the line
  Write(dir, "zb.txt", text);
  const Output gen = Pipecast("sim --methods zb-h1 --format json");
  const Output file = Pipecast("sim --methods " + dir + "/zb.txt --format json");
  ASSERT_EQ(gen.status, 0) << gen.text;
  ASSERT_EQ(file.status, 0) << file.text;
  const auto g = nlohmann::json::parse(gen.text)["results"][0];
  const auto f = nlohmann::json::parse(file.text)["results"][0];
  EXPECT_EQ(f["microbatch_size"], 2);
  EXPECT_EQ(f["makespan_ns"], g["makespan_ns"]);
  EXPECT_EQ(f["throughput_samples_per_s"], g["throughput_samples_per_s"]);
}

TEST(SimSchedules, FilesOfAnotherShapeAreRefusedNamingBothValues) {
  const std::string dir = TempDir("othershape");
  ASSERT_EQ(Pipecast("schedule --method 1f1b --stages 8 --microbatches 8 --minibatches 4 -o " +
                     dir + "/m8.txt")
                .status,
            0);
  ExpectError("sim --methods " + dir + "/m8.txt",
              "m8.txt:5:1: the schedule has 8 microbatches per minibatch but the scenario's "
              "pipeline.microbatches is 16; generate one of the scenario's shape with pipecast "
              "schedule --method NAME --stages 8 --microbatches 16 --minibatches 4 "
              "--microbatch-size 2");
  ASSERT_EQ(
      Pipecast("schedule --method 1f1b --stages 8 --microbatches 16 -o " + dir + "/n1.txt").status,
      0);
  ExpectError("sim --methods " + dir + "/n1.txt",
              "n1.txt:6:1: the schedule has 1 minibatch but the scenario's pipeline.minibatches "
              "is 4");
  ASSERT_EQ(Pipecast("schedule --method 1f1b --stages 8 --microbatches 16 --minibatches 4 -o " +
                     dir + "/s1.txt")
                .status,
            0);
  ExpectError("sim --methods " + dir + "/s1.txt",
              "s1.txt:7:1: the schedule's microbatch_size is 1 but the scenario's "
              "pipeline.microbatch_size is 2");
}

// A deadlock in a hand-written file is reported with the tokens and positions the user wrote,
// not through sends and receives lowering would add.
TEST(SimSchedules, ProblemsAreReportedInTheUsersTerms) {
  const std::string dir = TempDir("userterms");
  Write(dir, "d.txt",
        "# pipecast schedule v1\ndevices 2\nmicrobatches 2\n"
        "device 0: F0 B0 F1 B1 S\ndevice 1: F1 B1 F0 B0 S\n");
  const Output o = Pipecast("validate " + dir + "/d.txt");
  EXPECT_EQ(o.status, 1);
  EXPECT_NE(o.text.find("d.txt:4:14: token 'B0': deadlock: dependency cycle 'B0' (4:14) .. "
                        "'F1' (4:17) -> 'F1' (5:11) .. 'B0' (5:20) -> 'B0' (4:14)"),
            std::string::npos)
      << o.text;
  EXPECT_EQ(o.text.find("RG"), std::string::npos) << o.text;
  EXPECT_EQ(o.text.find("SA"), std::string::npos) << o.text;
  Write(dir, "j.json", R"({"format": "pipecast-schedule", "version": 1, "devices": 1,
    "microbatches": 1, "programs": [["0B0", "0F0", "S"]]})");
  const Output j = Pipecast("validate " + dir + "/j.json");
  EXPECT_EQ(j.status, 1);
  EXPECT_NE(j.text.find("j.json: programs[0][0]: token '0B0': backward runs before its forward"),
            std::string::npos)
      << j.text;
}

// A torch CSV of several minibatches keeps one optimizer step per minibatch.
TEST(SimSchedules, TorchCsvMinibatchesKeepTheirSteps) {
  const std::string dir = TempDir("csv");
  ASSERT_EQ(Pipecast("schedule --method 1f1b --stages 2 --microbatches 2 --minibatches 3 "
                     "--format torch-csv -o " +
                     dir + "/s.csv")
                .status,
            0);
  Output o = Pipecast("validate --minibatches 3 " + dir + "/s.csv");
  ASSERT_EQ(o.status, 0) << o.text;
  EXPECT_NE(o.text.find("6 microbatches, 30 actions"), std::string::npos) << o.text;  // 3 S each
  Write(dir, "s.yaml",
        "pipeline: {stages: 2, microbatches: 2, minibatches: 3}\n"
        "costs: {forward: 1ms, backward: 2ms}\n");
  const Output gen = Pipecast("sim " + dir + "/s.yaml --methods 1f1b --format json");
  const Output csv = Pipecast("sim " + dir + "/s.yaml --methods " + dir + "/s.csv --format json");
  ASSERT_EQ(csv.status, 0) << csv.text;
  const auto g = nlohmann::json::parse(gen.text)["results"][0];
  const auto c = nlohmann::json::parse(csv.text)["results"][0];
  EXPECT_EQ(c["stages"][0]["steps"], 3);
  EXPECT_EQ(c["makespan_ns"], g["makespan_ns"]);
}

}  // namespace

namespace {

// Bubble work (PipeFisher): the JSON adds up (hidden + exposed = work per device, the makespan
// with the work is the makespan plus the extra time), a schedule with fewer bubbles hides less,
// and the table says it is simulated only.
TEST(SimBubbleWork, ShippedScenarioAddsUpAndZeroBubbleHidesLess) {
  const Output o = Pipecast("sim scenarios/pipefisher-kfac.yaml --format json");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto j = nlohmann::json::parse(o.text);
  std::map<std::string, double> hidden;
  for (const auto& r : j["results"]) {
    const auto& b = r["bubble_work"];
    for (const auto& d : b["devices"]) {
      EXPECT_EQ(d["hidden_ns"].get<int64_t>() + d["exposed_ns"].get<int64_t>(),
                d["work_ns"].get<int64_t>());
      EXPECT_LE(d["placed"].get<int64_t>(), d["items"].get<int64_t>());
    }
    EXPECT_EQ(b["makespan_with_work_ns"].get<int64_t>(),
              r["makespan_ns"].get<int64_t>() + b["extra_ns"].get<int64_t>());
    hidden[r["method"]] = b["hidden_fraction"];
  }
  EXPECT_GT(hidden.at("gpipe"), hidden.at("zb-h2"));
  EXPECT_GT(hidden.at("zb-h1"), hidden.at("zb-h2"));
  const Output table = Pipecast("sim scenarios/pipefisher-kfac.yaml");
  EXPECT_NE(table.text.find("simulated only, the executor does not run it"), std::string::npos);
}

TEST(SimBubbleWork, BadItemsNameTheirLineAndKey) {
  const std::string dir = TempDir("bubblework");
  const std::string base =
      "pipeline: {stages: 2, microbatches: 2}\ncosts: {forward: 1ms, backward: 2ms}\n";
  ExpectError("sim " + Write(dir, "a.yaml", base + "bubble_work:\n  - {name: x}\n"),
              "a.yaml:4:5: bubble_work[0].duration is required");
  ExpectError("sim " + Write(dir, "b.yaml", base + "bubble_work:\n  - {duration: [1ms]}\n"),
              "bubble_work[0].duration has 1 value but pipeline.stages is 2");
  ExpectError("sim " + Write(dir, "c.yaml", base + "bubble_work:\n  - {duration: 1ms, per: mb}\n"),
              "bubble_work[0].per");
  ExpectError("sim " + Write(dir, "d.yaml", base + "bubble_work: 3ms\n"),
              "bubble_work: expected a list of items");
}

// The shipped heterogeneous scenario: the speed-aware partition (the CPU-like device 0 gets the
// embedding and one block) and each device's own capacity, in the JSON.
TEST(SimHeterogeneous, ShippedScenarioCutsByDeviceSpeed) {
  const Output o = Pipecast("sim scenarios/heterogeneous.yaml --methods 1f1b --format json");
  ASSERT_EQ(o.status, 0) << o.text;
  const auto result = nlohmann::json::parse(o.text)["results"][0];
  EXPECT_EQ(result["partition"], nlohmann::json({"E+0", "1-9", "10-18", "19-23+H"}));
  const auto stages = result["stages"];
  ASSERT_EQ(stages.size(), 4u);
  EXPECT_EQ(stages[0]["memory_capacity_bytes"], int64_t{512} << 30);
  for (int d = 1; d < 4; ++d) EXPECT_EQ(stages[d]["memory_capacity_bytes"], int64_t{80} << 30);
}

}  // namespace
