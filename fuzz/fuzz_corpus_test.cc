// Replays every file of the fuzz corpora (fuzz/corpus/<target>/) through the same calls as the
// fuzz targets, in the ordinary test build: no crash, and every failure is a Status with a
// message. Files named valid-* must parse (scenarios must also build a cost model); regress-*
// files are reproducers of bugs the fuzzers found, kept so the bugs stay fixed. Every file also
// goes through the fuzz targets' own checks (fuzz_checks.h), which abort on a violation.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/format_json.h"
#include "common/format_text.h"
#include "common/scenario.h"
#include "fuzz/fuzz_checks.h"
#include "sim/cost_builder.h"

namespace pipecast {
namespace {

const std::filesystem::path kCorpus = std::filesystem::path(PIPECAST_SOURCE_DIR) / "fuzz/corpus";

std::vector<std::filesystem::path> Files(const std::string& target) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus / target)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string Read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

TEST(FuzzCorpus, Scenarios) {
  const std::vector<std::filesystem::path> files = Files("scenario");
  EXPECT_GE(files.size(), 5u);
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const std::string name = path.filename().string();
    const Result<ir::Scenario> scenario = ir::ParseScenario(Read(path), name);
    if (StartsWith(name, "valid-")) {
      ASSERT_TRUE(scenario.ok()) << scenario.status().message();
    }
    if (!scenario.ok()) {
      EXPECT_FALSE(scenario.status().message().empty());
      continue;
    }
    for (int32_t chunks = 1; chunks <= 3; ++chunks) {
      const Result<sim::CostModel> cost =
          sim::BuildCostModel(*scenario, scenario->pipeline.stages * chunks);
      if (chunks == 1 && StartsWith(name, "valid-")) {
        EXPECT_TRUE(cost.ok()) << cost.status().message();
      }
      if (cost.ok()) {
        EXPECT_EQ(cost->stages.size(), static_cast<size_t>(scenario->pipeline.stages * chunks));
      } else {
        EXPECT_FALSE(cost.status().message().empty());
      }
    }
    fuzzing::CheckScenarioBytes(Read(path));  // and everything the fuzz target checks
  }
}

TEST(FuzzCorpus, Schedules) {
  const std::vector<std::filesystem::path> files = Files("schedule");
  EXPECT_GE(files.size(), 5u);
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const std::string name = path.filename().string();
    const std::string text = Read(path);
    const Result<ir::Program> from_text = ir::ParseProgramText(text, name);
    const Result<ir::Program> from_json = ir::ParseProgramJson(text, name);
    EXPECT_TRUE(from_text.ok() || !from_text.status().message().empty());
    EXPECT_TRUE(from_json.ok() || !from_json.status().message().empty());
    if (StartsWith(name, "valid-") && path.extension() == ".txt") {
      EXPECT_TRUE(from_text.ok()) << from_text.status().message();
    }
    if (StartsWith(name, "valid-") && path.extension() == ".json") {
      EXPECT_TRUE(from_json.ok()) << from_json.status().message();
    }
    fuzzing::CheckScheduleBytes(text);  // and everything the fuzz target checks
  }
}

}  // namespace
}  // namespace pipecast
