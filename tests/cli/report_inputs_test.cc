// Tests of the inputs of `pipecast report` (cli/report_inputs.h): the three documents read into
// their structs with the fixture's numbers, and every bad input met with one message that names
// the file, the key and the fix, under its own status code.
#include "cli/report_inputs.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli/report_test_util.h"

namespace pipecast::cli::report {
namespace {

using testing_report::ReadData;
using testing_report::ToySimJson;

// AddInput's error, which must have `code` and contain `text`.
void ExpectError(const std::string& file, const std::string& json, StatusCode code,
                 const std::string& text) {
  Inputs in;
  const Status s = AddInput(file, json, in);
  EXPECT_EQ(s.code(), code) << s.message();
  EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
  EXPECT_EQ(s.message().rfind(file + ": ", 0), 0u) << "names the file first: " << s.message();
}

TEST(ReportInputs, ReadsTheSimulationRunAndPlan) {
  Inputs in;
  ASSERT_TRUE(AddInput("sim.json", ToySimJson(), in).ok());
  ASSERT_TRUE(AddInput("run.json", ReadData("run-toy-report.json"), in).ok());
  ASSERT_TRUE(AddInput("plan.json", ReadData("plan-toy-report.json"), in).ok());
  ASSERT_TRUE(CheckConsistent(in).ok()) << CheckConsistent(in).message();
  ASSERT_EQ(in.sims.size(), 1u);
  const SimInput& s = in.sims[0];
  EXPECT_EQ(s.scenario_name, "toy-report");
  EXPECT_EQ(s.device_memory_bytes, int64_t{8} << 30);
  ASSERT_EQ(s.results.size(), 4u);  // the scenario's gpipe, 1f1b, pipedream, pipeoptim
  const SimMethod& onef1b = s.results[1];
  EXPECT_EQ(onef1b.label, "1f1b");
  EXPECT_EQ(onef1b.devices, 4);
  EXPECT_EQ(onef1b.stages.size(), 4u);
  EXPECT_EQ(onef1b.stages[0].weights, int64_t{256} << 20);
  EXPECT_EQ(onef1b.stages[0].optimizer_state, int64_t{512} << 20);
  EXPECT_EQ(onef1b.stages[0].activations, int64_t{4} * (512 << 20));  // 1F1B: 4 in flight
  EXPECT_EQ(s.results[2].delay_max(), 3);                             // PipeDream at D = 4

  ASSERT_EQ(in.runs.size(), 1u);
  const RunInput& r = in.runs[0];
  EXPECT_EQ(r.job_name, "toy-report");
  ASSERT_EQ(r.results.size(), 3u);
  EXPECT_EQ(r.results[2].label, "pipeoptim[sgd]");
  EXPECT_DOUBLE_EQ(r.results[1].final_accuracy, 0.82);
  EXPECT_DOUBLE_EQ(r.results[0].evaluations[1].wall_s, 4.0);
  ASSERT_TRUE(r.results[2].stages[0].prediction_error.has_value());
  EXPECT_DOUBLE_EQ(*r.results[2].stages[0].prediction_error, 0.45);
  EXPECT_FALSE(r.results[2].stages[3].prediction_error.has_value());

  ASSERT_EQ(in.plans.size(), 1u);
  const PlanInput& p = in.plans[0];
  EXPECT_EQ(p.best.label, "zb-h2");
  EXPECT_EQ(p.pareto.size(), 3u);
  EXPECT_EQ(p.configs.size(), 5u);
  EXPECT_EQ(p.memory_cap_bytes, int64_t{8} << 30);
  EXPECT_FALSE(p.max_gradient_delay.has_value());
  EXPECT_EQ(*p.configs[4].infeasible_reason, "peak memory 9.00 GiB above the cap of 8.00 GiB");
}

TEST(ReportInputs, EmptyNotJsonAndNotPipecast) {
  ExpectError("empty.json", " \n", StatusCode::kInvalidArgument, "the file is empty");
  ExpectError("table.txt", "method  makespan\n1f1b  22 ms\n", StatusCode::kParseError,
              "not JSON (");
  ExpectError("other.json", R"({"a": 1})", StatusCode::kInvalidArgument,
              "schema: missing: not a pipecast result; pipecast report reads the JSON that "
              "pipecast sim, pipecast run and pipecast plan write with --format json");
  ExpectError("list.json", "[1, 2]", StatusCode::kInvalidArgument, "got an array");
  ExpectError("foo.json", R"({"schema": "foo", "schema_version": 1})", StatusCode::kInvalidArgument,
              "schema: 'foo' is not one pipecast report reads");
  ExpectError("s.json", R"({"format": "pipecast-schedule", "version": 1})",
              StatusCode::kInvalidArgument, "a schedule, not results; simulate it first");
}

TEST(ReportInputs, OlderAndNewerSchemaVersions) {
  ExpectError("old.json", R"({"schema": "pipecast-run", "schema_version": 1, "results": []})",
              StatusCode::kUnsupportedVersion,
              "schema_version: 1 is older than this pipecast reads (pipecast-run version 2; "
              "version 1 had no seeds, summary or per-stage means); re-create it with pipecast "
              "run JOB --format json -o FILE");
  ExpectError("new.json", R"({"schema": "pipecast-sim", "schema_version": 2})",
              StatusCode::kUnsupportedVersion,
              "schema_version: 2 is newer than this pipecast reads (pipecast-sim version 1); "
              "update pipecast");
  ExpectError("plan.json", R"({"schema": "pipecast.plan", "schema_version": "1"})",
              StatusCode::kInvalidArgument, "schema_version: missing or not an integer");
}

TEST(ReportInputs, MissingAndMistypedFieldsNameTheirPath) {
  nlohmann::json doc = nlohmann::json::parse(ToySimJson());
  doc["results"][0].erase("makespan_ns");
  ExpectError("a.json", doc.dump(), StatusCode::kInvalidArgument,
              "a.json: results[0].makespan_ns: missing; re-create it with pipecast sim SCENARIO "
              "--format json -o FILE");
  doc = nlohmann::json::parse(ToySimJson());
  doc["results"][1]["stages"][2]["memory_breakdown"]["weights"] = "1GiB";
  ExpectError("b.json", doc.dump(), StatusCode::kInvalidArgument,
              "results[1].stages[2].memory_breakdown.weights: expected an integer, got a string");
  doc = nlohmann::json::parse(ToySimJson());
  doc["results"] = nlohmann::json::array();
  ExpectError("c.json", doc.dump(), StatusCode::kInvalidArgument,
              "results: empty: no method was simulated");
  nlohmann::json run = nlohmann::json::parse(ReadData("run-toy-report.json"));
  run["results"][0]["evaluations"] = nlohmann::json::array();
  ExpectError("d.json", run.dump(), StatusCode::kInvalidArgument,
              "results[0].evaluations: empty: a run has at least one evaluation");
}

TEST(ReportInputs, RunsAndSimulationsOfAnotherScenarioOrPipelineAreRefused) {
  Inputs in;
  ASSERT_TRUE(AddInput("sim.json", ToySimJson(), in).ok());
  nlohmann::json run = nlohmann::json::parse(ReadData("run-toy-report.json"));
  run["job"]["name"] = "fashion-mlp";
  ASSERT_TRUE(AddInput("run.json", run.dump(), in).ok());
  Status s = CheckConsistent(in);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "run.json: job.name: 'fashion-mlp' is another scenario than sim.json's scenario.name "
            "'toy-report'; a report shows the results of one scenario: report a run with the "
            "simulation of its job's own profile (pipecast run JOB --profile-out p.yaml, then "
            "pipecast sim p.yaml --format json), or make one report per scenario");

  Inputs shape;
  ASSERT_TRUE(AddInput("sim.json", ToySimJson(), shape).ok());
  run["job"]["name"] = "toy-report-measured";  // a profile's name is the job's with a suffix
  run["job"]["stages"] = 2;
  ASSERT_TRUE(AddInput("run.json", run.dump(), shape).ok());
  s = CheckConsistent(shape);
  EXPECT_NE(s.message().find("sim.json: results[0].devices: gpipe was simulated on 4 stages x 8 "
                             "microbatches of 1, but run.json trained 2 stages x 8 microbatches "
                             "of 1"),
            std::string::npos)
      << s.message();
}

TEST(ReportInputs, AMethodGivenTwiceAndTwoPlans) {
  Inputs in;
  ASSERT_TRUE(AddInput("a.json", ToySimJson(), in).ok());
  ASSERT_TRUE(AddInput("b.json", ToySimJson({"1f1b"}), in).ok());
  EXPECT_EQ(CheckConsistent(in).message(),
            "b.json: results[0]: simulated 1f1b is also in a.json: results[1]; give each method "
            "(and seed) once");
  Inputs plans;
  ASSERT_TRUE(AddInput("p.json", ReadData("plan-toy-report.json"), plans).ok());
  ASSERT_TRUE(AddInput("q.json", ReadData("plan-toy-report.json"), plans).ok());
  EXPECT_NE(CheckConsistent(plans).message().find("q.json: a second plan"), std::string::npos);
}

TEST(ReportInputs, NoFilesAndMissingFiles) {
  EXPECT_NE(ReadInputs({}).status().message().find("no input files"), std::string::npos);
  EXPECT_EQ(ReadInputs({"/nonexistent/x.json"}).status().code(), StatusCode::kNotFound);
}

TEST(ReportInputs, SameScenarioAllowsAProfileSuffix) {
  EXPECT_TRUE(SameScenario("fashion-mlp", "fashion-mlp"));
  EXPECT_TRUE(SameScenario("fashion-mlp", "fashion-mlp-measured"));
  EXPECT_TRUE(SameScenario("fashion-mlp-measured", "fashion-mlp"));
  EXPECT_FALSE(SameScenario("fashion-mlp", "fashion-mlpx"));
  EXPECT_FALSE(SameScenario("default", "toy-report"));
  EXPECT_FALSE(SameScenario("", "-x"));
}

}  // namespace
}  // namespace pipecast::cli::report
