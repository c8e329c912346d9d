// Tests for common/convergence.h: the profile round-trips, and every file that is not a current
// profile is refused with a message naming the file, the key and the command that writes one.
#include "common/convergence.h"

#include <gtest/gtest.h>

#include <string>

namespace pipecast::ir {
namespace {

ConvergenceProfile Sample() {
  ConvergenceProfile p;
  p.job_name = "gpt";
  p.job_source = "scenarios/gpt.job.yaml";
  p.model_type = "gpt";
  p.model = "gpt: 2 layers";
  p.dataset = "fortunes";
  p.optimizer = "adamw";
  p.stages = 4;
  p.microbatches = 8;
  p.microbatch_size = 8;
  ConvergenceMethod m;
  m.label = "paci(accumulation=4)";
  m.method = "paci";
  m.params = {{"accumulation", "4"}};
  m.asynchronous = true;
  m.steps_per_minibatch = 2;
  m.seeds.push_back({1, {{2, 64, 1, 0.5, 3.5, 3.25, 0.125}, {4, 128, 2, 1.0, 3.0, 2.75, 0.25}}});
  m.seeds.push_back({2, {{2, 64, 1, 0.5, 3.6, 3.5, 0.1}}});
  p.methods.push_back(m);
  return p;
}

std::string Error(const std::string& text) {
  Result<ConvergenceProfile> r = ParseConvergenceJson(text, "c.json");
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.status().message();
}

TEST(Convergence, RoundTrips) {
  const ConvergenceProfile p = Sample();
  Result<ConvergenceProfile> back = ParseConvergenceJson(FormatConvergenceJson(p), "c.json");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(back->source, "c.json");
  EXPECT_EQ(back->global_batch(), 64);
}

TEST(Convergence, RefusesOtherDocumentsAndVersions) {
  EXPECT_EQ(Error("not json"),
            "c.json: not a JSON object; a convergence profile is the JSON that pipecast run JOB "
            "--convergence-out FILE writes");
  EXPECT_EQ(Error(R"({"schema": "pipecast-run", "schema_version": 2})"),
            "c.json: this is a pipecast-run report, not a convergence profile; write a "
            "convergence profile with pipecast run JOB --convergence-out FILE");
  EXPECT_EQ(Error(R"({"schema": "pipecast.convergence", "schema_version": 0})"),
            "c.json: schema_version is 0, but this pipecast reads version 1 of "
            "pipecast.convergence; measure it again with this version (pipecast run JOB "
            "--convergence-out FILE)");
  std::string text = FormatConvergenceJson(Sample());
  const std::string key = "\"test_loss\": 2.75";
  text.replace(text.find(key), key.size(), "\"test_los\": 2.75");
  EXPECT_EQ(Error(text),
            "c.json: methods[0].seeds[0].points[1].test_loss is missing; write the profile again "
            "with pipecast run JOB --convergence-out FILE");
}

}  // namespace
}  // namespace pipecast::ir
