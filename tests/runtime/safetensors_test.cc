// Safetensors round trip, byte layout, atomic replacement and corrupt-file errors.
#include "runtime/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace pipecast::runtime {
namespace {

std::string Temp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pipecast_st_" + name)).string();
}

SafetensorsFile Example() {
  SafetensorsFile f;
  f.tensors["stage0.weights"] = {{2, 3}, {1, 2, 3, 4, 5, 6}};
  f.tensors["stage0.opt.momentum"] = {{6}, {0.5f, -1, 0, 0, 0, 1e-30f}};
  f.metadata["versions"] = "3";
  return f;
}

TEST(Safetensors, RoundTripsTensorsAndMetadata) {
  const std::string path = Temp("rt.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, Example()).ok());
  auto back = ReadSafetensors(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->tensors.at("stage0.weights").data, Example().tensors.at("stage0.weights").data);
  EXPECT_EQ(back->tensors.at("stage0.weights").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(back->tensors.at("stage0.opt.momentum").data,
            Example().tensors.at("stage0.opt.momentum").data);
  EXPECT_EQ(back->metadata.at("versions"), "3");
}

TEST(Safetensors, LayoutIsHeaderLengthJsonThenData) {
  const std::string path = Temp("layout.safetensors");
  SafetensorsFile f;
  f.tensors["x"] = {{1}, {1.0f}};
  ASSERT_TRUE(WriteSafetensors(path, f).ok());
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 4);
  EXPECT_NE(bytes.substr(8, n).find(R"("x":{"data_offsets":[0,4],"dtype":"F32","shape":[1]})"),
            std::string::npos)
      << bytes.substr(8, n);
  EXPECT_EQ(bytes.substr(8 + n), std::string("\x00\x00\x80\x3f", 4));  // 1.0f little-endian
}

TEST(Safetensors, CorruptFilesGiveClearErrorsAndFailedWritesKeepTheOldFile) {
  const std::string path = Temp("corrupt.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, Example()).ok());
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  in.close();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes.substr(0, bytes.size() - 5);  // truncated
  }
  auto r = ReadSafetensors(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("outside the file (truncated?)"), std::string::npos)
      << r.status().message();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << "abc";
  }
  EXPECT_NE(ReadSafetensors(path).status().message().find("shorter than its 8-byte header"),
            std::string::npos);
  EXPECT_FALSE(ReadSafetensors(Temp("missing.safetensors")).ok());
  // A write into a directory that does not exist fails and touches nothing.
  EXPECT_FALSE(WriteSafetensors(Temp("no/such/dir/x.safetensors"), Example()).ok());
  // A shape that does not match the data is rejected before anything is written.
  const std::string good = Temp("good.safetensors");
  ASSERT_TRUE(WriteSafetensors(good, Example()).ok());
  SafetensorsFile bad;
  bad.tensors["w"] = {{5}, {1, 2}};
  EXPECT_FALSE(WriteSafetensors(good, bad).ok());
  EXPECT_TRUE(ReadSafetensors(good).ok());
}

}  // namespace
}  // namespace pipecast::runtime
