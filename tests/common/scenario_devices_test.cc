// Tests for per-device hardware in scenario files (common/scenario.h: `devices:` with explicit
// costs, `cluster.devices:` with a model): groups expanded, defaults taken from `device:` /
// `cluster.device`, the speeds DeviceSpeed derives, every error with its file:line:column and
// key, and writing such a scenario back (common/scenario_writer.h) to the same values.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/scenario.h"
#include "common/scenario_writer.h"

namespace pipecast::ir {
namespace {

std::string Error(const std::string& yaml) {
  Result<Scenario> r = ParseScenario(yaml, "s.yaml");
  EXPECT_FALSE(r.ok()) << yaml;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
  return r.status().message();
}

Scenario Parse(const std::string& yaml) {
  Result<Scenario> r = ParseScenario(yaml, "s.yaml");
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : Scenario{};
}

const char* const kExplicit = R"(pipeline: {stages: 4, microbatches: 8}
costs: {forward: 1ms, backward: 2ms}
device: {memory: 80GiB, memory_bandwidth: 2TB/s}
)";

const char* const kModel = R"(pipeline: {stages: 4, microbatches: 8}
model: {layers: 4, hidden: 64, heads: 4, sequence: 16, vocabulary: 100}
cluster:
  device: {peak_flops: 100TFLOPS, efficiency: 0.5, memory: 80GiB, memory_bandwidth: 2TB/s}
)";

TEST(ScenarioDevices, ExplicitGroupsTakeTheirDefaultsFromDevice) {
  const Scenario s = Parse(std::string(kExplicit) + R"(devices:
  - {speed: 0.25, memory: 16GiB}
  - {count: 2}
  - {speed: 2, memory_bandwidth: 1TB/s}
)");
  ASSERT_EQ(s.devices.size(), 4u);
  const int64_t gib = int64_t{1} << 30;
  EXPECT_EQ(s.devices[0], (DeviceHardware{0.25, 0, 0, 16 * gib, 2e12}));
  EXPECT_EQ(s.devices[1], (DeviceHardware{1, 0, 0, 80 * gib, 2e12}));
  EXPECT_EQ(s.devices[2], s.devices[1]);
  EXPECT_EQ(s.devices[3], (DeviceHardware{2, 0, 0, 80 * gib, 1e12}));
  EXPECT_EQ(DeviceSpeed(s, 0), 0.25);
  EXPECT_EQ(DeviceSpeed(s, 3), 2.0);
  EXPECT_EQ(DeviceMemoryBytes(s, 0), 16 * gib);
  EXPECT_EQ(DeviceMemoryBytes(s, 2), 80 * gib);
  EXPECT_EQ(DeviceMemoryBandwidth(s, 3), 1e12);
  // The scenario-wide fields stay the defaults.
  EXPECT_EQ(s.device_memory_bytes, 80 * gib);
}

TEST(ScenarioDevices, WithoutAListEveryDeviceIsTheDefault) {
  const Scenario s = Parse(kExplicit);
  EXPECT_TRUE(s.devices.empty());
  for (int32_t d = 0; d < 4; ++d) {
    EXPECT_EQ(DeviceSpeed(s, d), 1.0);
    EXPECT_EQ(DeviceMemoryBytes(s, d), int64_t{80} << 30);
    EXPECT_EQ(DeviceMemoryBandwidth(s, d), 2e12);
  }
}

TEST(ScenarioDevices, ModelSpeedIsPeakTimesEfficiencyOverTheClusterDevice) {
  const Scenario s = Parse(std::string(kModel) + R"(  devices:
    - {peak_flops: 10TFLOPS, efficiency: 40%, memory: 512GiB}
    - {count: 3}
)");
  ASSERT_EQ(s.devices.size(), 4u);
  EXPECT_EQ(s.devices[0].peak_flops, 10e12);
  EXPECT_EQ(s.devices[0].efficiency, 0.4);
  EXPECT_EQ(s.devices[0].memory_bytes, int64_t{512} << 30);
  EXPECT_EQ(s.devices[0].memory_bandwidth, 2e12);  // from cluster.device
  EXPECT_EQ(s.devices[1].peak_flops, 100e12);
  EXPECT_EQ(s.devices[1].efficiency, 0.5);
  // 10 T x 0.4 = 4 TFLOP/s against 100 T x 0.5 = 50 TFLOP/s.
  EXPECT_DOUBLE_EQ(DeviceSpeed(s, 0), 4.0 / 50.0);
  EXPECT_EQ(DeviceSpeed(s, 1), 1.0);
}

TEST(ScenarioDevices, CountsMustAddUpToTheStages) {
  EXPECT_EQ(Error(std::string(kExplicit) + "devices: [{count: 2}, {speed: 0.5}]\n"),
            "s.yaml:4:10: devices describes 3 devices (2 + 1) but pipeline.stages is 4; give one "
            "entry per device, or count: N for N equal devices");
  EXPECT_EQ(Error(std::string(kExplicit) + "devices: [{count: 3}, {count: 2}]\n"),
            "s.yaml:4:23: devices describes more than the 4 devices of pipeline.stages (3 + 2 so "
            "far); the counts must add up to pipeline.stages");
  EXPECT_EQ(Error(std::string(kModel) + "  devices: [{}]\n"),
            "s.yaml:5:12: cluster.devices describes 1 device (1) but pipeline.stages is 4; give "
            "one entry per device, or count: N for N equal devices");
}

TEST(ScenarioDevices, BadValuesNameTheirKey) {
  const std::string e = kExplicit;
  EXPECT_EQ(Error(e + "devices: [{count: 4, speed: 0}]\n"),
            "s.yaml:4:29: devices[0].speed must be greater than 0 (1 = the speed costs: are "
            "given for, 0.5 = half as fast), got 0");
  EXPECT_EQ(Error(e + "devices: [{count: 4, speed: fast}]\n"),
            "s.yaml:4:29: devices[0].speed: expected a number, got 'fast'");
  EXPECT_EQ(Error(e + "devices: [{count: 0}]\n"),
            "s.yaml:4:19: devices[0].count must be from 1 to 1000000, got 0");
  EXPECT_EQ(Error(e + "devices: [{count: 4, memory: -1GiB}]\n").substr(0, 40),
            "s.yaml:4:30: devices[0].memory: expected");
  EXPECT_EQ(Error(e + "devices: [{count: 4, sped: 2}]\n"),
            "s.yaml:4:22: unknown key 'sped' in devices[0]; did you mean 'speed'?");
  EXPECT_EQ(Error(e + "devices: []\n"),
            "s.yaml:4:10: devices must be a non-empty list of devices such as {count: 3, speed: "
            "0.5, memory: 16GiB}, got a list");
  EXPECT_EQ(Error(e + "devices: {speed: 2}\n"),
            "s.yaml:4:10: devices must be a non-empty list of devices such as {count: 3, speed: "
            "0.5, memory: 16GiB}, got a map");
  const std::string m = kModel;
  EXPECT_EQ(Error(m + "  devices: [{count: 4, peak_flops: 0FLOPS}]\n"),
            "s.yaml:5:36: cluster.devices[0].peak_flops must be greater than 0");
  EXPECT_EQ(Error(m + "  devices: [{count: 4, efficiency: 1.5}]\n"),
            "s.yaml:5:36: cluster.devices[0].efficiency must be in (0, 1], got 1.5");
  EXPECT_EQ(Error(m + "  devices: [{count: 4, speed: 0.5}]\n"),
            "s.yaml:5:24: cluster.devices[0].speed is for explicit costs; with model: give the "
            "device's peak_flops (and efficiency), from which its speed follows");
}

TEST(ScenarioDevices, EachFormHasItsOwnKey) {
  EXPECT_EQ(Error(std::string(kModel) + "devices: [{count: 4}]\n"),
            "s.yaml:5:1: devices: is only used with explicit costs; with model: give "
            "cluster.devices");
}

TEST(ScenarioDevices, WrittenBackReadsTheSame) {
  for (const std::string& yaml :
       {std::string(kExplicit) +
            "devices: [{speed: 0.3, memory: 1GiB}, {count: 2}, {speed: 1.5, memory: 0}]\n",
        std::string(kModel) + "  devices: [{count: 2, peak_flops: 7.5TFLOPS}, {count: 2}]\n"}) {
    const Scenario s = Parse(yaml);
    const std::string text = FormatScenarioYaml(s, "");
    const Scenario back = Parse(text);
    EXPECT_EQ(back.devices, s.devices) << text;
    EXPECT_EQ(back.device_memory_bytes, s.device_memory_bytes);
  }
}

}  // namespace
}  // namespace pipecast::ir
