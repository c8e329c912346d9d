// Tests for the text, JSON and PyTorch CSV schedule formats: round trips on hand-built programs
// and the exact wording of parse errors.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/format_json.h"
#include "common/format_text.h"
#include "common/format_torch_csv.h"
#include "common/ir.h"

namespace pipecast::ir {
namespace {

using K = ActionKind;
using WS = WeightSource;

Action A(K kind, int32_t stage, int32_t mb, WeightRef w = {}) { return {kind, stage, mb, w}; }
Action Step() { return {K::kStep, -1, -1, {}}; }

// Two devices, four virtual stages placed 0 1 1 0 (several stages per device), every action
// kind and every weight annotation. Not a valid schedule; the formats do not care.
Program EveryKindProgram() {
  Program p;
  p.method = "zb-h1";
  p.params = {{"alpha", "0.5"}, {"mode", "paper"}};
  p.num_devices = 2;
  p.num_stages = 4;
  p.placement = {0, 1, 1, 0};
  p.microbatches = 3;
  p.minibatches = 2;
  p.microbatch_size = 4;
  p.max_live_versions = {3, 2};
  p.devices = {
      {A(K::kForward, 0, 0), A(K::kSendActivation, 0, 0), A(K::kForward, 0, 1, {WS::kPredicted, 2}),
       A(K::kRecvActivation, 3, 0), A(K::kForward, 3, 0, {WS::kBufferOlder, 0}),
       A(K::kBackwardInput, 3, 0, {WS::kStashed, 0}), A(K::kWeightGrad, 3, 0),
       A(K::kBackward, 0, 5, {WS::kCorrected, 1}), A(K::kBackwardInput, 0, 4), Step()},
      {A(K::kRecvActivation, 1, 0), A(K::kForward, 1, 0, {WS::kBufferNewer, 0}),
       A(K::kForward, 2, 0, {WS::kVersion, 0}), A(K::kSendActivation, 2, 0),
       A(K::kRecvGradient, 2, 0), A(K::kBackward, 2, 0, {WS::kVersion, 7}),
       A(K::kSendGradient, 1, 0), Step(), Step()},
  };
  return p;
}

// One stage per device (no stage prefixes in text), a split backward and a full one.
Program OneStagePerDevice() {
  Program p;
  p.method = "1f1b";
  p.num_devices = 2;
  p.num_stages = 2;
  p.placement = {0, 1};
  p.microbatches = 2;
  p.devices = {
      {A(K::kForward, 0, 0), A(K::kForward, 0, 1), A(K::kBackwardInput, 0, 0),
       A(K::kWeightGrad, 0, 0), A(K::kBackward, 0, 1, {WS::kStashed, 0}), Step()},
      {A(K::kForward, 1, 0), A(K::kBackward, 1, 0), A(K::kForward, 1, 1),
       A(K::kBackwardInput, 1, 1), A(K::kWeightGrad, 1, 1), Step()},
  };
  return p;
}

std::string ErrorOf(const Result<Program>& r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kParseError);
  return r.status().message();
}

// A minimal valid text file with `device_lines` appended.
std::string TextWith(const std::string& header, const std::string& device_lines) {
  return "# pipecast schedule v1\n" + header + device_lines;
}

// ---------------------------------------------------------------------------------------------
// Text format

TEST(TextFormat, PrintsExpectedLayout) {
  const std::string text = ProgramToText(OneStagePerDevice());
  EXPECT_EQ(text,
            "# pipecast schedule v1\n"
            "method 1f1b\n"
            "devices 2\n"
            "stages 2\n"
            "microbatches 2\n"
            "minibatches 1\n"
            "microbatch_size 1\n"
            "device 0: F0 F1 B0 W0 B1@stash S\n"
            "device 1: F0 B0 F1 B1 W1 S\n");
}

TEST(TextFormat, PrintsStagePrefixOnlyOnMultiStageDevices) {
  const std::string text = ProgramToText(EveryKindProgram());
  EXPECT_NE(text.find("placement 0 1 1 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("max_live_versions 3 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("param alpha=0.5\nparam mode=paper\n"), std::string::npos) << text;
  EXPECT_NE(
      text.find("device 0: 0F0 0SA0 0F1@pred:2 3RA0 3F0@old 3B0@stash 3W0 0B5@corr:1 0I4 S\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("device 1: 1RA0 1F0@new 2F0@v:0 2SA0 2RG0 2B0@v:7 1SG0 S S\n"),
            std::string::npos)
      << text;
}

TEST(TextFormat, RoundTripsEveryKindAndAnnotation) {
  const Program p = EveryKindProgram();
  const Result<Program> parsed = ParseProgramText(ProgramToText(p), "every.txt");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, p);
}

TEST(TextFormat, RoundTripsOneStagePerDevice) {
  const Program p = OneStagePerDevice();
  const Result<Program> parsed = ParseProgramText(ProgramToText(p), "one.txt");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, p);
}

TEST(TextFormat, BIsSplitOnlyWhenTheDeviceHasTheMatchingW) {
  const Result<Program> p = ParseProgramText(
      TextWith("devices 1\nmicrobatches 3\n", "device 0: F0 F1 F2 B0 W0 I1 W1 B2 S\n"), "b.txt");
  ASSERT_TRUE(p.ok()) << p.status().message();
  const std::vector<Action>& d = p->devices[0];
  EXPECT_EQ(d[3].kind, K::kBackwardInput);  // B0 with W0
  EXPECT_EQ(d[5].kind, K::kBackwardInput);  // I1
  EXPECT_EQ(d[7].kind, K::kBackward);       // B2, no W2
}

TEST(TextFormat, AcceptsCommentsBlankLinesCrlfAndAnyHeaderOrder) {
  const std::string text =
      "# pipecast schedule v1\r\n"
      "\r\n"
      "device 1: F0 B0 S   # trailing comment\r\n"
      "   # indented comment\r\n"
      "devices 2\r\n"
      "microbatches 1\r\n"
      "param note=a#b\r\n"
      "device 0: F0@cur B0 S\r\n";
  const Result<Program> p = ParseProgramText(text, "c.txt");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->num_devices, 2);
  EXPECT_EQ(p->num_stages, 2);
  EXPECT_EQ(p->placement, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(p->method, "custom");
  EXPECT_EQ(p->params.at("note"), "a#b");
  EXPECT_EQ(p->devices[0],
            (std::vector<Action>{A(K::kForward, 0, 0), A(K::kBackward, 0, 0), Step()}));
  EXPECT_EQ(p->devices[1],
            (std::vector<Action>{A(K::kForward, 1, 0), A(K::kBackward, 1, 0), Step()}));
}

TEST(TextFormat, DefaultsStagesToDevicesRoundRobin) {
  const Result<Program> p = ParseProgramText(TextWith("devices 2\nstages 4\nmicrobatches 1\n",
                                                      "device 0: 0F0 2F0 S\ndevice 1: 1F0 3F0 S\n"),
                                             "rr.txt");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->placement, (std::vector<int32_t>{0, 1, 0, 1}));
  EXPECT_EQ(p->devices[1][1], A(K::kForward, 3, 0));
}

TEST(TextFormat, ErrorNamesFileLineColumnTokenAndSuggestion) {
  const std::string text =
      "# pipecast schedule v1\n"
      "method 1f1b\n"
      "devices 2\n"
      "microbatches 4\n"
      "\n"
      "device 0: F0 F1 F2 F3 B0 B1 B2 B3 S\n"
      "device 1: F0 F3@prd:2\n";
  EXPECT_EQ(ErrorOf(ParseProgramText(text, "sched.txt")),
            "sched.txt:7:14: token 'F3@prd:2': unknown weight annotation 'prd' (did you mean "
            "'pred'?)");
}

TEST(TextFormat, UnknownHeaderKeySuggestsClosest) {
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("devices 1\nmicrobatchs 4\n", ""), "h.txt")),
            "h.txt:3:1: unknown key 'microbatchs' (did you mean 'microbatches'?)");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("zzz 1\n", ""), "h.txt")),
            "h.txt:2:1: unknown key 'zzz'");
}

TEST(TextFormat, UnknownActionKindSuggestsClosest) {
  EXPECT_EQ(
      ErrorOf(ParseProgramText(TextWith("devices 1\nmicrobatches 1\n", "device 0: f0\n"), "k.txt")),
      "k.txt:4:11: token 'f0': unknown action kind 'f' (did you mean 'F'?)");
  EXPECT_EQ(
      ErrorOf(ParseProgramText(TextWith("devices 1\nmicrobatches 1\n", "device 0: X0\n"), "k.txt")),
      "k.txt:4:11: token 'X0': unknown action kind 'X'");
  EXPECT_EQ(ErrorOf(ParseProgramText(
                TextWith("devices 2\nmicrobatches 1\n", "device 0: 0SX0\ndevice 1:\n"), "k.txt")),
            "k.txt:4:11: token '0SX0': unknown action kind 'SX' (did you mean 'SA'?)");
}

TEST(TextFormat, RejectsMalformedTokens) {
  struct Case {
    std::string token;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"F", "missing microbatch index after 'F'"},
      {"F9", "microbatch 9 out of range [0, 2)"},
      {"F99999999999999999999999", "microbatch 99999999999999999999999 out of range [0, 2)"},
      {"5F0", "stage 5 out of range [0, 1)"},
      {"S3", "a step 'S' takes no microbatch index"},
      {"0S", "a step 'S' takes no stage prefix"},
      {"S@stash", "a step 'S' takes nothing after it"},
      {"F0@pred", "'@pred' needs a value, e.g. '@pred:1'"},
      {"B0@stash:1", "'@stash' takes no value"},
      {"F0@v:-1", "'@v:' needs a non-negative integer value"},
      {"F0@v:99999999999", "'@v:' needs a non-negative integer value"},
      {"W0@stash", "weight annotations apply only to F, B and I"},
      {"SA0@old", "weight annotations apply only to F, B and I"},
      {"F0@", "expected a weight annotation name after '@'"},
      {"F0x", "unexpected 'x' after the microbatch index"},
      {"F0@v:1x", "unexpected 'x' after the weight annotation"},
      {"@", "expected an action kind (F, B, I, W, SA, RA, SG, RG, S, AR or AV)"},
  };
  for (const Case& c : cases) {
    const std::string text = TextWith("devices 1\nmicrobatches 2\n", "device 0: " + c.token + "\n");
    EXPECT_EQ(ErrorOf(ParseProgramText(text, "t.txt")),
              "t.txt:4:11: token '" + c.token + "': " + c.error);
  }
}

TEST(TextFormat, RequiresStagePrefixOnMultiStageDevice) {
  const std::string text =
      TextWith("devices 2\nstages 4\nmicrobatches 1\n", "device 0: 0F0 F0\ndevice 1: 1F0\n");
  EXPECT_EQ(ErrorOf(ParseProgramText(text, "m.txt")),
            "m.txt:5:15: token 'F0': needs a stage prefix: this device holds several virtual "
            "stages");
  const std::string none =
      TextWith("devices 2\nstages 1\nmicrobatches 1\n", "device 0: F0\ndevice 1: F0\n");
  EXPECT_EQ(ErrorOf(ParseProgramText(none, "m.txt")),
            "m.txt:6:11: token 'F0': needs a stage prefix: no virtual stage is placed on this "
            "device");
}

TEST(TextFormat, RejectsBadDeviceLines) {
  const std::string header = "devices 2\nmicrobatches 1\n";
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith(header, "device 0: F0\n"), "d.txt")),
            "d.txt:2:1: no 'device 1:' line (devices is 2)");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith(header, "device 0: F0\ndevice 2: F0\n"), "d.txt")),
            "d.txt:5:8: device index must be an integer in [0, 1], got '2'");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith(header, "device 0: F0\ndevice 1: F0\ndevice 0: B0\n"),
                                     "d.txt")),
            "d.txt:6:8: duplicate line for device 0 (first on line 4)");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith(header, "device 0 F0\n"), "d.txt")),
            "d.txt:4:1: expected 'device N: actions...'");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith(header, "device 0 1: F0\n"), "d.txt")),
            "d.txt:4:1: expected one device index before ':'");
}

TEST(TextFormat, RejectsBadHeaderValues) {
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("microbatches 1\n", ""), "v.txt")),
            "v.txt: missing 'devices' line");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("devices 1\n", ""), "v.txt")),
            "v.txt: missing 'microbatches' line");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("devices 0\nmicrobatches 1\n", ""), "v.txt")),
            "v.txt:2:9: devices must be an integer in [1, 1000000], got '0'");
  EXPECT_EQ(ErrorOf(ParseProgramText(
                TextWith("devices 99999999999999999999999999\nmicrobatches 1\n", ""), "v.txt")),
            "v.txt:2:9: devices must be an integer in [1, 1000000], got "
            "'99999999999999999999999999'");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("devices 1\nmicrobatches -3\n", ""), "v.txt")),
            "v.txt:3:14: microbatches must be an integer in [1, 1000000], got '-3'");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("devices 1 2\nmicrobatches 1\n", ""), "v.txt")),
            "v.txt:2:1: 'devices' takes one value, got 2");
  EXPECT_EQ(
      ErrorOf(ParseProgramText(TextWith("devices 1\ndevices 1\nmicrobatches 1\n", ""), "v.txt")),
      "v.txt:3:1: duplicate 'devices' (first on line 2)");
  EXPECT_EQ(
      ErrorOf(ParseProgramText(TextWith("devices 2\nplacement 0\nmicrobatches 1\n", ""), "v.txt")),
      "v.txt:3:1: 'placement' needs 2 values, got 1");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("devices 2\nplacement 0 2\nmicrobatches 1\n", ""),
                                     "v.txt")),
            "v.txt:3:13: placement entry must be an integer in [0, 1], got '2'");
  EXPECT_EQ(ErrorOf(ParseProgramText(
                TextWith("devices 2\nmax_live_versions 1 0\nmicrobatches 1\n", ""), "v.txt")),
            "v.txt:3:21: max_live_versions entry must be an integer in [1, 1000000], got '0'");
  EXPECT_EQ(
      ErrorOf(ParseProgramText(TextWith("devices 1\nmicrobatches 1\nparam x\n", ""), "v.txt")),
      "v.txt:4:1: expected 'param key=value'");
  EXPECT_EQ(ErrorOf(ParseProgramText(
                TextWith("devices 1\nmicrobatches 1\nparam x=1\nparam x=2\n", ""), "v.txt")),
            "v.txt:5:1: duplicate parameter 'x'");
  EXPECT_EQ(ErrorOf(ParseProgramText(TextWith("devices 1\nmethod\nmicrobatches 1\n", ""), "v.txt")),
            "v.txt:3:1: 'method' takes one value");
  EXPECT_EQ(ErrorOf(ParseProgramText("# pipecast schedule v2\ndevices 1\n", "v.txt")),
            "v.txt:1:1: unsupported schedule format version '2' (this pipecast reads v1)");
}

TEST(TextFormat, RejectsOversizedSchedules) {
  EXPECT_EQ(ErrorOf(ParseProgramText(
                TextWith("devices 1\nmicrobatches 1000000\nminibatches 2\n", ""), "big.txt")),
            "big.txt:3:1: schedule too large: 1 stages x 2000000 microbatches exceeds the limits "
            "(1000000 microbatches, 10000000 stage-microbatch pairs)");
  EXPECT_FALSE(
      ParseProgramText(TextWith("devices 1000\nmicrobatches 100000\n", ""), "big.txt").ok());
}

// `seed` with a few random insertions, deletions and byte changes.
std::string Mutate(const std::string& seed, const std::string& alphabet, std::mt19937& rng) {
  std::string s = seed;
  const int edits = 1 + static_cast<int>(rng() % 6);
  for (int e = 0; e < edits; ++e) {
    const size_t pos = rng() % (s.size() + 1);
    switch (rng() % 3) {
      case 0:
        s.insert(pos, 1, alphabet[rng() % alphabet.size()]);
        break;
      case 1:
        if (pos < s.size()) s.erase(pos, 1);
        break;
      default:
        if (pos < s.size()) s[pos] = static_cast<char>(rng() % 256);
        break;
    }
  }
  return s;
}

// Mutated inputs must produce a Program or an error, never a crash (the libFuzzer target
// covers this more deeply; this keeps a cheap version in every test run). Whatever parses
// prints and parses back to itself.
TEST(TextFormat, SurvivesMutatedInputs) {
  const std::string seed = ProgramToText(EveryKindProgram());
  std::mt19937 rng(12345);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    const std::string s = Mutate(seed, "0123456789FBIWSARG@:#-=\n \tpredvcuroldnewstash", rng);
    const Result<Program> r = ParseProgramText(s, "fuzz.txt");
    if (!r.ok()) continue;
    const Result<Program> again = ParseProgramText(ProgramToText(*r), "again.txt");
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << s;
    EXPECT_EQ(*again, *r) << s;
  }
}

TEST(JsonFormat, SurvivesMutatedInputs) {
  const std::string seed = ProgramToJson(EveryKindProgram());
  std::mt19937 rng(777);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    const std::string s = Mutate(seed, "0123456789FBIWS@:[]{},\"-. e", rng);
    const Result<Program> r = ParseProgramJson(s, "fuzz.json");
    if (!r.ok()) continue;
    const Result<Program> again = ParseProgramJson(ProgramToJson(*r), "again.json");
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << s;
    EXPECT_EQ(*again, *r) << s;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON format

TEST(JsonFormat, RoundTripsEveryKindAndAnnotation) {
  for (const Program& p : {EveryKindProgram(), OneStagePerDevice()}) {
    const std::string json = ProgramToJson(p);
    const Result<Program> parsed = ParseProgramJson(json, "every.json");
    ASSERT_TRUE(parsed.ok()) << parsed.status().message() << "\n" << json;
    EXPECT_EQ(*parsed, p) << json;
  }
}

TEST(JsonFormat, PrintsTokensWithStagePrefix) {
  const std::string json = ProgramToJson(OneStagePerDevice());
  EXPECT_NE(json.find("\"format\": \"pipecast-schedule\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"version\": 1"), std::string::npos) << json;
  EXPECT_NE(json.find("[\"0F0\", \"0F1\", \"0B0\", \"0W0\", \"0B1@stash\", \"S\"]"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("[\"1F0\", \"1B0\", \"1F1\", \"1B1\", \"1W1\", \"S\"]"), std::string::npos)
      << json;
}

// {"format":..., "version": 1, "devices": 2, "microbatches": 1, <extra>, "programs": <programs>}
std::string JsonWith(const std::string& extra, const std::string& programs) {
  return R"({"format": "pipecast-schedule", "version": 1, "devices": 2, "microbatches": 1, )" +
         extra + R"("programs": )" + programs + "}";
}

TEST(JsonFormat, ErrorsNameTheJsonPath) {
  EXPECT_EQ(ErrorOf(ParseProgramJson(JsonWith("", R"([["F0", "B0"], ["F0", "B0", "F3@prd:2"]])"),
                                     "s.json")),
            "s.json: programs[1][2]: token 'F3@prd:2': unknown weight annotation 'prd' (did you "
            "mean 'pred'?)");
  EXPECT_EQ(ErrorOf(ParseProgramJson(JsonWith("", R"([["F0"], ["F0", 7]])"), "s.json")),
            "s.json: programs[1][1]: expected a token string");
  EXPECT_EQ(ErrorOf(ParseProgramJson(JsonWith("", R"([["F0"]])"), "s.json")),
            "s.json: programs: expected an array of 2 device programs (one per device)");
  EXPECT_EQ(
      ErrorOf(ParseProgramJson(JsonWith(R"("placement": [0, 5], )", R"([[], []])"), "s.json")),
      "s.json: placement[1]: expected an integer in [0, 1], got 5");
  EXPECT_EQ(ErrorOf(ParseProgramJson(JsonWith(R"("stages": 2.5, )", R"([[], []])"), "s.json")),
            "s.json: stages: expected an integer in [1, 1000000], got 2.5");
  EXPECT_EQ(ErrorOf(ParseProgramJson(JsonWith(R"("microbatch": 2, )", R"([[], []])"), "s.json")),
            "s.json: microbatch: unknown key (did you mean 'microbatches'?)");
  EXPECT_EQ(
      ErrorOf(ParseProgramJson(JsonWith(R"("params": {"a": [1]}, )", R"([[], []])"), "s.json")),
      "s.json: params.a: expected a string, number or boolean");
}

TEST(JsonFormat, RejectsWrongDocuments) {
  EXPECT_EQ(ErrorOf(ParseProgramJson("[1, 2]", "w.json")),
            "w.json: (top level): expected a JSON object");
  EXPECT_EQ(ErrorOf(ParseProgramJson(R"({"format": "other", "version": 1})", "w.json")),
            "w.json: format: expected \"pipecast-schedule\", got \"other\"");
  EXPECT_EQ(ErrorOf(ParseProgramJson(R"({"format": "pipecast-schedule", "version": 2})", "w.json")),
            "w.json: version: unsupported version 2 (this pipecast reads 1)");
  EXPECT_EQ(ErrorOf(ParseProgramJson(R"({"format": "pipecast-schedule", "version": 1})", "w.json")),
            "w.json: devices: missing");
  const std::string syntax = ErrorOf(ParseProgramJson("{\"format\": ", "w.json"));
  EXPECT_EQ(syntax.rfind("w.json: invalid JSON: ", 0), 0u) << syntax;
  EXPECT_FALSE(ParseProgramJson(std::string(100000, '['), "deep.json").ok());
}

TEST(JsonFormat, AcceptsNumericParamsAndDefaults) {
  const Result<Program> p =
      ParseProgramJson(JsonWith(R"("params": {"a": 2, "b": true, "c": "x"}, )",
                                R"([["F0", "B0", "S"], ["F0", "B0", "S"]])"),
                       "d.json");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->params.at("a"), "2");
  EXPECT_EQ(p->params.at("b"), "true");
  EXPECT_EQ(p->params.at("c"), "x");
  EXPECT_EQ(p->num_stages, 2);
  EXPECT_EQ(p->placement, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(p->devices[1][0], A(K::kForward, 1, 0));
}

// ---------------------------------------------------------------------------------------------
// PyTorch CSV

// A program of the shape ParseTorchCsv produces: compute-only, one S at the end of each device.
Program TorchShaped() {
  Program p;
  p.method = "torch-csv";
  p.num_devices = 2;
  p.num_stages = 4;
  p.placement = {0, 1, 1, 0};
  p.microbatches = 2;
  p.devices = {
      {A(K::kForward, 0, 0), A(K::kForward, 0, 1), A(K::kForward, 3, 0), A(K::kBackward, 3, 0),
       A(K::kForward, 3, 1), A(K::kBackwardInput, 3, 1), A(K::kWeightGrad, 3, 1),
       A(K::kBackward, 0, 0), A(K::kBackward, 0, 1), Step()},
      {A(K::kForward, 1, 0), A(K::kForward, 2, 0), A(K::kForward, 1, 1), A(K::kForward, 2, 1),
       A(K::kBackward, 2, 0), A(K::kBackward, 1, 0), A(K::kBackwardInput, 2, 1),
       A(K::kBackwardInput, 1, 1), A(K::kWeightGrad, 2, 1), A(K::kWeightGrad, 1, 1), Step()},
  };
  return p;
}

TEST(TorchCsv, WritesComputeCellsLikeCsvWriter) {
  EXPECT_EQ(ProgramToTorchCsv(TorchShaped()),
            "0F0,0F1,3F0,3B0,3F1,3I1,3W1,0B0,0B1\r\n"
            "1F0,2F0,1F1,2F1,2B0,1B0,2I1,1I1,2W1,1W1\r\n");
}

TEST(TorchCsv, DropsCommunicationStepsAndAnnotations) {
  Program p = EveryKindProgram();
  EXPECT_EQ(ProgramToTorchCsv(p),
            "0F0,0F1,3F0,3I0,3W0,0B5,0I4\r\n"
            "1F0,2F0,2B0\r\n");
}

TEST(TorchCsv, RoundTrips) {
  const Program p = TorchShaped();
  const Result<Program> parsed = ParseTorchCsv(ProgramToTorchCsv(p), "t.csv");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, p);
}

TEST(TorchCsv, ParsesTorchOutputWithIdleCells) {
  // As torch's _dump_csv writes a 1F1B schedule with None (idle) entries as empty cells.
  const std::string csv =
      "0F0,0F1,,0B0,,0B1\r\n"
      ",1F0,1B0,1F1,1B1,\r\n";
  const Result<Program> p = ParseTorchCsv(csv, "1f1b.csv");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->method, "torch-csv");
  EXPECT_EQ(p->num_devices, 2);
  EXPECT_EQ(p->num_stages, 2);
  EXPECT_EQ(p->microbatches, 2);
  EXPECT_EQ(p->minibatches, 1);
  EXPECT_EQ(p->devices[0],
            (std::vector<Action>{A(K::kForward, 0, 0), A(K::kForward, 0, 1), A(K::kBackward, 0, 0),
                                 A(K::kBackward, 0, 1), Step()}));
  EXPECT_EQ(p->devices[1].back(), Step());
}

TEST(TorchCsv, MinibatchesHintSplitsMicrobatches) {
  const Result<Program> p = ParseTorchCsv("0F0,0F1,0F2,0F3,0B0,0B1,0B2,0B3\n", "h.csv", 2);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->microbatches, 2);
  EXPECT_EQ(p->minibatches, 2);
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F0,0F1,0F2\n", "h.csv", 2)),
            "h.csv: 3 microbatches do not split into 2 minibatches");
  EXPECT_EQ(ParseTorchCsv("0F0\n", "h.csv", 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(TorchCsv, RejectsBadCells) {
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F0,0F1\n1F0,0B1\n", "r.csv")),
            "r.csv:2:5: cell '0B1': stage 0 is already on row 1; a stage lives on one rank");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F0\n2F0\n", "r.csv")),
            "r.csv: stage 1 appears on no row (stages 0..2 must all be placed)");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F0,0SEND_F0\n", "r.csv")),
            "r.csv:1:5: cell '0SEND_F0': a torch SEND_F action; only compute_only schedules (F, "
            "B, I, W) are supported");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F0,0BW0\n", "r.csv")),
            "r.csv:1:5: cell '0BW0': 'BW' is the full backward of older torch releases, where "
            "'B' meant backward-input; this reader follows current torch (B full backward, I "
            "backward-input, W weight)");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F0,0X0\n", "r.csv")),
            "r.csv:1:5: cell '0X0': unknown action type 'X'");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F0, 0f1\n", "r.csv")),
            "r.csv:1:5: cell '0f1': unknown action type 'f' (did you mean 'F'?)");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("F0\n", "r.csv")),
            "r.csv:1:1: cell 'F0': expected <stage><type><microbatch>, e.g. '0F1'");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F\n", "r.csv")),
            "r.csv:1:1: cell '0F': missing microbatch index");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F1x\n", "r.csv")),
            "r.csv:1:1: cell '0F1x': unexpected 'x' after the microbatch");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("0F99999999999\n", "r.csv")),
            "r.csv:1:1: cell '0F99999999999': microbatch index out of range [0, 1000000)");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("(0F1;1B0)OVERLAP_F_B\n", "r.csv")),
            "r.csv:1:1: cell '(0F1;1B0)OVERLAP_F_B': an OVERLAP_F_B group; only compute_only "
            "schedules are supported");
  EXPECT_EQ(ErrorOf(ParseTorchCsv("", "r.csv")), "r.csv: no compute actions");
}

TEST(TorchCsv, AcceptsQuotedCellsAndEmptyRows) {
  const Result<Program> p = ParseTorchCsv("\"0F0\", 0B0 \n\n1F0,1B0\n", "q.csv");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->num_devices, 3);
  EXPECT_EQ(p->placement, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(p->devices[1], (std::vector<Action>{Step()}));
}

TEST(TorchCsv, SurvivesMutatedInputs) {
  const std::string seed = ProgramToTorchCsv(TorchShaped());
  std::mt19937 rng(99);
  for (int iteration = 0; iteration < 3000; ++iteration) {
    const std::string s = Mutate(seed, "0123456789FBIW,\r\n \"_", rng);
    const Result<Program> r = ParseTorchCsv(s, "fuzz.csv");
    if (!r.ok()) continue;
    const Result<Program> again = ParseTorchCsv(ProgramToTorchCsv(*r), "again.csv");
    ASSERT_TRUE(again.ok()) << again.status().message() << "\n" << s;
    EXPECT_EQ(again->devices, r->devices) << s;
  }
}

}  // namespace
}  // namespace pipecast::ir
