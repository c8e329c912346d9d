// Tests for common/input_file.h: what a user sees for a missing, oversized or endless input, and
// that "-" reads standard input.
#include "common/input_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace pipecast::ir {
namespace {

std::string TempFile(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("pipecast_input_test_" + name);
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

TEST(ReadInputFile, ReadsAWholeFile) {
  const std::string text = std::string(200'000, 'a') + "\nend";
  const std::string path = TempFile("whole", text);
  Result<std::string> r = ReadInputFile(path, "schedule file");
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, text);
}

TEST(ReadInputFile, MissingFileAndDirectory) {
  Result<std::string> missing = ReadInputFile("/nonexistent/x.txt", "schedule file");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "schedule file '/nonexistent/x.txt' not found");
  Result<std::string> dir = ReadInputFile("/", "scenario file");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kIoError);
  EXPECT_EQ(dir.status().message(), "scenario file '/' is a directory");
}

TEST(ReadInputFile, RefusesMoreThanTheCap) {
  const std::string path = TempFile("big", std::string(1001, 'x'));
  Result<std::string> r = ReadInputFile(path, "scenario file", 1000);
  std::filesystem::remove(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("is larger than 1000 bytes, the most pipecast reads"),
            std::string::npos)
      << r.status().message();
  const std::string exact = TempFile("exact", std::string(1000, 'x'));
  EXPECT_TRUE(ReadInputFile(exact, "scenario file", 1000).ok());
  std::filesystem::remove(exact);
}

// /dev/zero never ends: the cap stops it at once, with the default limit named in MiB.
TEST(ReadInputFile, EndlessDeviceStopsAtTheCap) {
  const auto start = std::chrono::steady_clock::now();
  Result<std::string> r = ReadInputFile("/dev/zero", "scenario file");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "scenario file '/dev/zero' is larger than 64 MiB, the most pipecast reads from one "
            "input file; schedule and scenario files are text of at most a few MiB");
  EXPECT_LT(seconds, 5.0);
}

TEST(ReadInputFile, DashReadsStandardInput) {
  const std::string path = TempFile("stdin", "pipeline: {}\n");
  ASSERT_NE(std::freopen(path.c_str(), "rb", stdin), nullptr);
  Result<std::string> r = ReadInputFile("-", "scenario file");
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "pipeline: {}\n");
  EXPECT_EQ(InputName("-"), "standard input");
  EXPECT_EQ(InputName("a.yaml"), "a.yaml");
}

}  // namespace
}  // namespace pipecast::ir
