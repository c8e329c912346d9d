// Tests for ValidateProgram: a valid 1F1B program passes (with and without communication), and
// every rule, when broken, produces a diagnostic naming the device, action and token.
#include "common/validate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/format_text.h"
#include "common/ir.h"
#include "common/lower.h"

namespace pipecast::ir {
namespace {

using K = ActionKind;
using WS = WeightSource;

// Hand-written 1F1B, D = 4 devices, M = 4 microbatches, stage d on device d.
constexpr char kOneFOneB[] =
    "# pipecast schedule v1\n"
    "method 1f1b\n"
    "devices 4\n"
    "microbatches 4\n"
    "device 0: F0 F1 F2 F3 B0 B1 B2 B3 S\n"
    "device 1: F0 F1 F2 B0 F3 B1 B2 B3 S\n"
    "device 2: F0 F1 B0 F2 B1 F3 B2 B3 S\n"
    "device 3: F0 B0 F1 B1 F2 B2 F3 B3 S\n";

Program Parse(const std::string& text) {
  Result<Program> p = ParseProgramText(text, "test.txt");
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? *p : Program{};
}

// A program of `devices` devices, one stage each, `microbatches` microbatches, and the given
// device lines (text format).
Program Make(int32_t devices, int32_t microbatches, const std::string& device_lines,
             const std::string& extra_header = "") {
  return Parse("devices " + std::to_string(devices) + "\nmicrobatches " +
               std::to_string(microbatches) + "\n" + extra_header + device_lines);
}

std::vector<std::string> Messages(const Program& p) {
  std::vector<std::string> out;
  for (const Diagnostic& d : ValidateProgram(p)) out.push_back(d.ToString());
  return out;
}

// The diagnostics as one string, for failure messages.
std::string Joined(const Program& p) {
  std::string out;
  for (const std::string& m : Messages(p)) out += m + "\n";
  return out;
}

// Expects exactly the diagnostics `expected`, in order.
void ExpectDiagnostics(const Program& p, const std::vector<std::string>& expected) {
  EXPECT_EQ(Messages(p), expected) << Joined(p);
}

TEST(Validate, HandWrittenOneFOneBPasses) {
  const Program p = Parse(kOneFOneB);
  EXPECT_TRUE(ValidateProgram(p).empty()) << Joined(p);
  EXPECT_TRUE(ValidationStatus(ValidateProgram(p), "1f1b").ok());
}

TEST(Validate, LoweredOneFOneBPasses) {
  const Program p = InsertCommunication(Parse(kOneFOneB));
  ASSERT_TRUE(HasCommunication(p));
  EXPECT_TRUE(ValidateProgram(p).empty()) << Joined(p);
}

TEST(Validate, InterleavedTwoStagesPerDevicePasses) {
  // 2 devices, 4 virtual stages round robin, 1 microbatch, lowered.
  const Program p =
      InsertCommunication(Parse("devices 2\nstages 4\nmicrobatches 1\n"
                                "device 0: 0F0 2F0 2B0 0B0 S\n"
                                "device 1: 1F0 3F0 3B0 1B0 S\n"));
  EXPECT_TRUE(ValidateProgram(p).empty()) << Joined(p);
}

TEST(Validate, DiagnosticToString) {
  EXPECT_EQ((Diagnostic{2, 14, "B3@stash", "msg"}).ToString(),
            "device 2, action 14 (B3@stash): msg");
  EXPECT_EQ((Diagnostic{2, -1, "", "msg"}).ToString(), "device 2: msg");
  EXPECT_EQ((Diagnostic{-1, -1, "", "msg"}).ToString(), "msg");
}

TEST(Validate, ValidationStatusListsEveryProblem) {
  const std::vector<Diagnostic> diags = {{0, 1, "F1", "first"}, {-1, -1, "", "second"}};
  const Status s = ValidationStatus(diags, "plan.txt");
  EXPECT_EQ(s.code(), StatusCode::kInvalidSchedule);
  EXPECT_EQ(s.message(),
            "plan.txt is not a valid schedule (2 problems):\n  device 0, action 1 (F1): first\n"
            "  second");
}

// ---- Metadata ----

TEST(Validate, MetadataCounts) {
  Program p = Parse(kOneFOneB);
  p.microbatches = 0;
  p.microbatch_size = -1;
  ExpectDiagnostics(p, {"microbatches must be in [1, 1000000], got 0",
                        "microbatch_size must be in [1, 2147483647], got -1"});
}

TEST(Validate, MetadataPlacementAndDevices) {
  Program p = Parse(kOneFOneB);
  p.placement = {0, 1, 2};
  p.devices.pop_back();
  ExpectDiagnostics(p, {"placement has 3 entries but there are 4 stages",
                        "program has 3 device programs but num_devices is 4"});
  p = Parse(kOneFOneB);
  p.placement[2] = 7;
  ExpectDiagnostics(p, {"placement[2] = 7 is not a device in [0, 4)"});
}

TEST(Validate, MetadataMaxLiveVersions) {
  Program p = Parse(kOneFOneB);
  p.max_live_versions = {1, 1};
  ExpectDiagnostics(p, {"max_live_versions has 2 entries but there are 4 devices"});
  p.max_live_versions = {1, 0, 1, 1};
  ExpectDiagnostics(p, {"device 1: max_live_versions must be >= 1, got 0"});
}

TEST(Validate, MetadataTooLarge) {
  Program p = Parse(kOneFOneB);
  p.microbatches = 1'000'000;
  p.minibatches = 100;
  ExpectDiagnostics(p, {"program too large: 4 stages x 100000000 microbatches exceeds the limits"});
}

// ---- Per-action fields ----

TEST(Validate, StageOutOfRange) {
  Program p = Make(1, 1, "device 0: F0 B0 S\n");
  p.devices[0].insert(p.devices[0].begin() + 1, Action{K::kForward, 3, 0, {}});
  ExpectDiagnostics(p, {"device 0, action 1 (3F0): stage 3 out of range [0, 1)"});
}

TEST(Validate, MicrobatchOutOfRange) {
  Program p = Make(1, 1, "device 0: F0 B0 S\n");
  p.devices[0].insert(p.devices[0].begin(), Action{K::kForward, 0, 5, {}});
  ExpectDiagnostics(p, {"device 0, action 0 (F5): microbatch 5 out of range [0, 1)"});
}

TEST(Validate, StageNotPlacedOnDevice) {
  const Program p = Make(2, 1, "device 0: F0 1B0 B0 S\ndevice 1: F0 S\n");
  ExpectDiagnostics(p,
                    {"device 0, action 1 (1B0): stage 1 is placed on device 1, not on device 0"});
}

TEST(Validate, StepMustHaveNoStageOrMicrobatch) {
  Program p = Make(1, 1, "device 0: F0 B0 S\n");
  p.devices[0][2].stage = 0;
  p.devices[0][2].weights = {WS::kStashed, 0};
  ExpectDiagnostics(p, {"device 0, action 2 (S): a step must have stage -1 and microbatch -1, got "
                        "stage 0 and microbatch -1",
                        "device 0, action 2 (S): a step takes no weight annotation"});
}

// ---- Completeness ----

TEST(Validate, MissingForwardsAndBackwardsAreListedAsRanges) {
  const Program p = Make(1, 12, "device 0: F0 F4 F8 B0 B1 B2 B3 B4 B5 B6 B7 B8 B9 B10 B11 S\n");
  ExpectDiagnostics(p, {"device 0: stage 0: no F for 9 microbatches (1-3, 5-7, 9-11)"});
}

TEST(Validate, MissingBackward) {
  const Program p = Make(2, 2, "device 0: F0 F1 B0 S\ndevice 1: F0 B0 F1 S\n");
  ExpectDiagnostics(p, {"device 0: stage 0: no backward (B or I) for 1 microbatch (1)",
                        "device 1: stage 1: no backward (B or I) for 1 microbatch (1)"});
}

TEST(Validate, DuplicateActionsAreNamed) {
  const Program p = Make(1, 2, "device 0: F0 F1 B0 F1 B1 B0 S\n");
  ExpectDiagnostics(p, {"device 0, action 3 (F1): duplicate F of stage 0 microbatch 1 (first at "
                        "device 0 action 1 (F1))",
                        "device 0, action 5 (B0): duplicate backward of stage 0 microbatch 0 "
                        "(first at device 0 action 2 (B0))"});
}

TEST(Validate, SplitBackwardNeedsW) {
  const Program p = Make(1, 2, "device 0: F0 F1 I0 B1 W1 S\n");
  ExpectDiagnostics(p, {"device 0, action 2 (I0): split backward I has no W: the weight gradient "
                        "is never computed"});
}

TEST(Validate, WOnlyForSplitBackward) {
  Program p = Make(1, 1, "device 0: F0 B0 W0 S\n");  // parses as I0 W0
  p.devices[0][1].kind = K::kBackward;
  ExpectDiagnostics(p, {"device 0, action 2 (W0): W of a full backward B (a split backward is I "
                        "followed by W)"});
}

// ---- Order ----

TEST(Validate, BackwardBeforeForward) {
  const Program p = Make(1, 2, "device 0: F0 B1 B0 F1 S\n");
  ExpectDiagnostics(p, {"device 0, action 1 (B1): backward runs before its forward (device 0 "
                        "action 3 (F1))",
                        "device 0, action 1 (B1): deadlock: dependency cycle device 0 action 1 "
                        "(B1) .. action 3 (F1) -> device 0 action 1 (B1)"});
}

TEST(Validate, WeightGradBeforeBackwardInput) {
  const Program p = Make(1, 1, "device 0: F0 W0 I0 S\n");
  ExpectDiagnostics(p, {"device 0, action 1 (W0): W runs before its backward (device 0 action 2 "
                        "(I0))",
                        "device 0, action 1 (W0): deadlock: dependency cycle device 0 action 1 "
                        "(W0) .. action 2 (I0) -> device 0 action 1 (W0)"});
}

// ---- Gradients applied ----

TEST(Validate, GradientNeverApplied) {
  const Program p = Make(2, 2,
                         "device 0: F0 F1 B0 S B1\n"
                         "device 1: F0 B0 F1 B1 S\n");
  ExpectDiagnostics(p, {"device 0, action 4 (B1): gradient never applied: no optimizer step S "
                        "follows it on device 0"});
  const Program split = Make(1, 2, "device 0: F0 F1 B0 I1 S W1 W0\n");
  ExpectDiagnostics(split, {"device 0, action 5 (W1): gradient never applied: no optimizer step "
                            "S follows it on device 0 (nor the 1 later gradient action)"});
}

// ---- Weight annotations ----

TEST(Validate, WeightAnnotationOnlyOnForwardAndBackward) {
  Program p = Make(1, 1, "device 0: F0 I0 W0 S\n");
  p.devices[0][2].weights = {WS::kStashed, 0};
  ExpectDiagnostics(p, {"device 0, action 2 (W0): weight annotation on a weight_grad (only F, B "
                        "and I use weights)"});
}

TEST(Validate, StashOnlyOnBackward) {
  const Program p = Make(1, 1, "device 0: F0@stash B0 S\n");
  ExpectDiagnostics(p, {"device 0, action 0 (F0@stash): @stash applies to B and I only (a "
                        "forward's weights are what gets stashed)"});
}

TEST(Validate, StashNeedsForwardEarlierOnDevice) {
  const Program p = Make(1, 2, "device 0: F0 B0@stash B1@stash F1 S\n");
  ExpectDiagnostics(p, {"device 0, action 2 (B1@stash): backward runs before its forward (device "
                        "0 action 3 (F1))",
                        "device 0, action 2 (B1@stash): backward uses a stash but this "
                        "microbatch's forward runs only later (device 0 action 3 (F1))",
                        "device 0, action 2 (B1@stash): deadlock: dependency cycle device 0 action "
                        "2 (B1@stash) .. action 3 (F1) -> device 0 action 2 (B1@stash)"});
}

TEST(Validate, StashWhoseForwardNeverRanOnDevice) {
  Program p = Make(2, 1, "device 0: F0 B0@stash S\ndevice 1: F0 B0 S\n");
  p.devices[0].erase(p.devices[0].begin());  // drop F0 of stage 0
  const std::vector<std::string> m = Messages(p);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.front(), "device 0: stage 0: no F for 1 microbatch (0)") << Joined(p);
  EXPECT_NE(std::find(m.begin(), m.end(),
                      "device 0, action 0 (B0@stash): backward uses a stash but this "
                      "microbatch's forward never ran on device 0"),
            m.end())
      << Joined(p);
}

TEST(Validate, WeightValuesInRange) {
  Program p = Make(1, 1, "device 0: F0@pred:1 B0@corr:1 S\n");
  p.devices[0][0].weights.value = -2;
  p.devices[0][1].weights.value = -1;
  ExpectDiagnostics(p, {"device 0, action 0 (F0@pred:-2): @pred value must be >= 0, got -2",
                        "device 0, action 1 (B0@corr:-1): @corr value must be >= 0, got -1"});
  Program q = Make(1, 1, "device 0: F0@old B0 S\n");
  q.devices[0][0].weights.value = 3;
  ExpectDiagnostics(q, {"device 0, action 0 (F0@old): @old takes no value, got 3"});
}

TEST(Validate, ExplicitVersionNotNewerThanDevice) {
  const Program p = Make(1, 2, "device 0: F0@v:0 B0@v:0 S F1@v:1 B1@v:2 S\n");
  ExpectDiagnostics(p, {"device 0, action 4 (B1@v:2): @v:2 is newer than device 0's current "
                        "version 1"});
}

TEST(Validate, LiveVersionsWithinDeclaredLimit) {
  // B1 uses the stash of version 0 after the first Step: versions 0 and 1 live at once.
  const std::string lines = "device 0: F0 F1 B0@stash S B1@stash S\n";
  EXPECT_TRUE(ValidateProgram(Make(1, 2, lines, "max_live_versions 2\n")).empty());
  ExpectDiagnostics(Make(1, 2, lines, "max_live_versions 1\n"),
                    {"device 0, action 3 (S): device holds 2 weight versions at once here, more "
                     "than its max_live_versions 1"});
}

// ---- Communication ----

// 2 devices, 1 microbatch, lowered: device 0 = F0 SA0 RG0 B0 S; device 1 = RA1 F0 B0 SG1 S.
Program Lowered() {
  return InsertCommunication(Make(2, 1, "device 0: F0 B0 S\ndevice 1: F0 B0 S\n"));
}

TEST(Validate, LoweredFixturePasses) {
  const Program p = Lowered();
  ASSERT_EQ(ProgramToText(p).substr(ProgramToText(p).find("device 0:")),
            "device 0: F0 SA0 RG0 B0 S\ndevice 1: RA0 F0 B0 SG0 S\n");
  EXPECT_TRUE(ValidateProgram(p).empty()) << Joined(p);
}

TEST(Validate, MissingSendAndReceive) {
  Program p = Lowered();
  p.devices[0].erase(p.devices[0].begin() + 1);  // SA0
  p.devices[1].erase(p.devices[1].begin());      // RA0 of stage 1
  ExpectDiagnostics(p, {"device 1, action 0 (F0): needs a transfer from device 0 to device 1 but "
                        "there is no 0SA0/1RA0 pair"});
}

TEST(Validate, UnmatchedSendAndReceive) {
  Program p = Lowered();
  p.devices[1].erase(p.devices[1].begin());  // RA0: SA0 unmatched
  ExpectDiagnostics(p, {"device 0, action 1 (SA0): unmatched send: no 1RA0 on device 1"});
  Program q = Lowered();
  q.devices[1].erase(q.devices[1].begin() + 3);  // SG0: RG0 unmatched
  ExpectDiagnostics(q, {"device 0, action 2 (RG0): unmatched receive: no 1SG0 on device 1"});
}

TEST(Validate, DuplicateSend) {
  Program p = Lowered();
  p.devices[0].insert(p.devices[0].begin() + 2, p.devices[0][1]);
  ExpectDiagnostics(p, {"device 0, action 2 (SA0): duplicate 0SA0 (first at device 0 action 1 "
                        "(SA0))"});
}

TEST(Validate, SendBetweenStagesOnTheSameDevice) {
  Program p =
      InsertCommunication(Parse("devices 2\nstages 4\nmicrobatches 1\nplacement 0 0 1 1\n"
                                "device 0: 0F0 1F0 1B0 0B0 S\n"
                                "device 1: 2F0 3F0 3B0 2B0 S\n"));
  EXPECT_TRUE(ValidateProgram(p).empty()) << Joined(p);
  p.devices[0].insert(p.devices[0].begin() + 1, Action{K::kSendActivation, 0, 0, {}});
  ExpectDiagnostics(p, {"device 0, action 1 (0SA0): send_activation between stages 0 and 1, "
                        "which are both on device 0"});
  Program q = Lowered();
  q.devices[0].push_back(Action{K::kRecvActivation, 0, 0, {}});
  ExpectDiagnostics(q, {"device 0, action 5 (RA0): recv_activation of stage 0 has no peer stage "
                        "-1"});
}

TEST(Validate, SendBeforeProducerAndReceiveAfterConsumer) {
  Program p = Lowered();
  std::swap(p.devices[0][0], p.devices[0][1]);  // SA0 F0
  std::swap(p.devices[1][0], p.devices[1][1]);  // F0 RA0
  const std::vector<std::string> m = Messages(p);
  ASSERT_EQ(m.size(), 3u) << Joined(p);
  EXPECT_EQ(m[0],
            "device 0, action 0 (SA0): sends before its producer ran (device 0 action 1 (F0))");
  EXPECT_EQ(m[1],
            "device 1, action 0 (F0): runs before its receive 1RA0 (device 1 action 1 (RA0))");
  EXPECT_EQ(m[2].rfind("device 0, action 0 (SA0): deadlock: dependency cycle", 0), 0u) << m[2];
}

TEST(Validate, LinkOrderMustMatchReceiveOrder) {
  Program p = InsertCommunication(Make(2, 2, "device 0: F0 F1 B0 B1 S\ndevice 1: F0 B0 F1 B1 S\n"));
  ASSERT_TRUE(ValidateProgram(p).empty()) << Joined(p);
  // Device 0 sends microbatch 1 before microbatch 0, device 1 receives 0 first.
  std::vector<Action>& d0 = p.devices[0];
  ASSERT_EQ(ProgramToText(p).substr(ProgramToText(p).find("device 0:")),
            "device 0: F0 SA0 F1 SA1 RG0 B0 RG1 B1 S\n"
            "device 1: RA0 F0 B0 SG0 RA1 F1 B1 SG1 S\n");
  d0 = {d0[0], d0[2], d0[3], d0[1], d0[4], d0[5], d0[6], d0[7], d0[8]};
  ExpectDiagnostics(p, {"device 0, action 3 (SA0): link 0->1 out of order: received by device 1 "
                        "action 0 (RA0), before the earlier send device 0 action 2 (SA1) is "
                        "received by device 1 action 4 (RA1); a FIFO link deadlocks"});
}

// ---- Deadlock ----

TEST(Validate, DeadlockCycleIsReported) {
  // Device 0 waits for B0 from device 1 before its F1; device 1 waits for F1 before its B0.
  const Program p = Make(2, 2, "device 0: F0 B0 F1 B1 S\ndevice 1: F1 B1 F0 B0 S\n");
  ExpectDiagnostics(p, {"device 0, action 1 (B0): deadlock: dependency cycle device 0 action 1 "
                        "(B0) .. action 2 (F1) -> device 1 action 0 (F1) .. action 3 (B0) -> "
                        "device 0 action 1 (B0)"});
  // Lowered, the sends also go out of FIFO order and the cycle runs through them.
  ExpectDiagnostics(
      InsertCommunication(p),
      {"device 0, action 5 (SA1): link 0->1 out of order: received by device 1 action 0 (RA1), "
       "before the earlier send device 0 action 1 (SA0) is received by device 1 action 4 (RA0); "
       "a FIFO link deadlocks",
       "device 1, action 7 (SG0): link 1->0 out of order: received by device 0 action 2 (RG0), "
       "before the earlier send device 1 action 3 (SG1) is received by device 0 action 6 (RG1); "
       "a FIFO link deadlocks",
       "device 0, action 2 (RG0): deadlock: dependency cycle device 0 action 2 (RG0) .. action 5 "
       "(SA1) -> device 1 action 0 (RA1) .. action 7 (SG0) -> device 0 action 2 (RG0)"});
}

// A V placement (ZB-V, D = 2): link 0->1 carries stage 0's activations and stage 3's gradients,
// link 1->0 stage 2's activations and stage 1's gradients. Device 1 needs the gradient of
// microbatch 0 before the activation of microbatch 1, which device 0 sent first; the kinds are
// separate channels, each in order, so nothing deadlocks. Swapping two gradients still does.
TEST(Validate, LinkOrderIsKeptPerMessageKind) {
  const std::string header = "stages 4\nplacement 0 1 1 0\n";
  const Program p = Make(2, 2,
                         "device 0: 0F0 0F1 3F0 3B0 3F1 3B1 0B0 0B1 S\n"
                         "device 1: 1F0 2F0 2B0 1B0 1F1 2F1 2B1 1B1 S\n",
                         header);
  EXPECT_TRUE(ValidateProgram(InsertCommunication(p)).empty()) << Joined(InsertCommunication(p));
  ValidateOptions implicit;
  implicit.implicit_link_order = true;
  EXPECT_TRUE(ValidateProgram(p, implicit).empty());
  const Program swapped = Make(2, 2,
                               "device 0: 0F0 0F1 3F0 3F1 3B1 3B0 0B0 0B1 S\n"
                               "device 1: 1F0 2F0 1F1 2F1 2B0 1B0 2B1 1B1 S\n",
                               header);
  const std::vector<std::string> m = Messages(InsertCommunication(swapped));
  ASSERT_FALSE(m.empty());
  EXPECT_NE(m[0].find("link 0->1 out of order"), std::string::npos) << m[0];
}

// Without sends and receives, the same crossing is found where lowering would put the transfers,
// and reported at the compute action whose output goes out of order.
TEST(Validate, ImplicitLinkOrderIsCheckedOnRequest) {
  const Program p = Make(2, 2, "device 0: F0 B0 F1 B1 S\ndevice 1: F1 B1 F0 B0 S\n");
  ValidateOptions options;
  options.implicit_link_order = true;
  std::vector<std::string> m;
  for (const Diagnostic& d : ValidateProgram(p, options)) m.push_back(d.ToString());
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0],
            "device 0, action 2 (F1): link 0->1 out of order: its output is needed by device 1 "
            "action 0 (F1), before the earlier output of device 0 action 0 (F0) is needed by "
            "device 1 action 2 (F0); with sends and receives inserted, a FIFO link deadlocks");
  EXPECT_EQ(m[1].rfind("device 1, action 3 (B0): link 1->0 out of order", 0), 0u) << m[1];
  EXPECT_EQ(m[2].rfind("device 0, action 1 (B0): deadlock: dependency cycle", 0), 0u) << m[2];
  // In order, nothing is reported.
  EXPECT_TRUE(ValidateProgram(Parse(kOneFOneB), options).empty());
}

// Messages can name actions the way the caller's user knows them.
TEST(Validate, DescribeNamesActionsInTheCallersTerms) {
  const Program p = Make(2, 2, "device 0: F0 B0 F1 B1 S\ndevice 1: F1 B1 F0 B0 S\n");
  ValidateOptions options;
  options.describe = [](int32_t d, int32_t i) {
    std::string s = "<";
    s += std::to_string(d);
    s += ':';
    s += std::to_string(i);
    return s + '>';
  };
  const std::vector<Diagnostic> m = ValidateProgram(p, options);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].message, "deadlock: dependency cycle <0:1> .. <0:2> -> <1:0> .. <1:3> -> <0:1>");
}

// The dry run needs time and memory linear in the program: a 4-million-pair program validates
// in seconds.
TEST(Validate, LargeProgramsValidateInLinearTime) {
  Program p = Make(1, 1, "device 0: F0 B0 S\n");
  p.num_devices = p.num_stages = 64;
  p.microbatches = 65536;
  p.placement = RoundRobinPlacement(64, 64);
  p.devices.assign(64, {});
  for (int32_t k = 0; k < 64; ++k) {  // 1F1B
    const int32_t w = 63 - k;
    for (int32_t j = 0; j < w; ++j) p.devices[k].push_back({K::kForward, k, j, {}});
    for (int32_t i = 0; i < 65536 - w; ++i) {
      p.devices[k].push_back({K::kForward, k, w + i, {}});
      p.devices[k].push_back({K::kBackward, k, i, {}});
    }
    for (int32_t j = 65536 - w; j < 65536; ++j) p.devices[k].push_back({K::kBackward, k, j, {}});
    p.devices[k].push_back({K::kStep, -1, -1, {}});
  }
  EXPECT_TRUE(ValidateProgram(p).empty());
  std::swap(p.devices[63][0], p.devices[63][1]);  // B0 before F0 on the last stage
  const std::vector<Diagnostic> m = ValidateProgram(p);
  ASSERT_FALSE(m.empty());
  EXPECT_NE(m.back().message.find("deadlock: dependency cycle"), std::string::npos);
}

TEST(Validate, CycleCheckSkippedWhenActionsAreMissing) {
  // Same deadlock, but F0 of stage 0 is missing: the missing action is reported, no cycle.
  Program p = Make(2, 2, "device 0: F0 B0 F1 B1 S\ndevice 1: F1 B1 F0 B0 S\n");
  p.devices[0].erase(p.devices[0].begin());
  ExpectDiagnostics(p, {"device 0: stage 0: no F for 1 microbatch (0)"});
}

TEST(Validate, CollectsEveryProblem) {
  Program p = Make(2, 2, "device 0: F0 F1 B0 B1\ndevice 1: F0 B0 F1 B1@v:3 S\n");
  p.devices[1].push_back(Action{K::kForward, 1, 9, {}});
  ExpectDiagnostics(p, {"device 1, action 3 (B1@v:3): @v:3 is newer than device 1's current "
                        "version 0",
                        "device 1, action 5 (F9): microbatch 9 out of range [0, 2)",
                        "device 0, action 2 (B0): gradient never applied: no optimizer step S "
                        "follows it on device 0 (nor the 1 later gradient action)"});
}

// Random programs (valid or not, with or without communication) never crash the validator, and
// the diagnostics it returns always name a real action.
TEST(Validate, SurvivesRandomPrograms) {
  std::mt19937 rng(2024);
  auto pick = [&](int32_t lo, int32_t hi) {
    return lo + static_cast<int32_t>(rng() % static_cast<uint32_t>(hi - lo + 1));
  };
  for (int iteration = 0; iteration < 4000; ++iteration) {
    Program p;
    p.num_devices = pick(1, 3);
    p.num_stages = pick(1, 4);
    p.microbatches = pick(1, 3);
    p.minibatches = pick(1, 2);
    p.placement.clear();
    for (int32_t s = 0; s < p.num_stages; ++s) p.placement.push_back(pick(0, p.num_devices - 1));
    if (pick(0, 3) == 0) p.max_live_versions.assign(p.num_devices, pick(1, 3));
    p.devices.resize(p.num_devices);
    if (pick(0, 1) == 0) {
      // Start from a well-formed GPipe-like program, then perturb a few actions.
      for (int32_t j = 0; j < p.total_microbatches(); ++j)
        for (int32_t s = 0; s < p.num_stages; ++s)
          p.devices[p.placement[s]].push_back({K::kForward, s, j, {}});
      for (int32_t j = 0; j < p.total_microbatches(); ++j)
        for (int32_t s = p.num_stages - 1; s >= 0; --s)
          p.devices[p.placement[s]].push_back({K::kBackward, s, j, {WS::kStashed, 0}});
      for (auto& d : p.devices) d.push_back({K::kStep, -1, -1, {}});
      if (pick(0, 1) == 0) p = InsertCommunication(p);
    }
    const int edits = pick(0, 4);
    for (int e = 0; e < edits; ++e) {
      std::vector<Action>& d = p.devices[pick(0, p.num_devices - 1)];
      Action a{static_cast<K>(pick(0, 8)),
               pick(-1, p.num_stages),
               pick(-1, p.total_microbatches()),
               {static_cast<WS>(pick(0, 6)), pick(-1, 3)}};
      const int32_t at = pick(0, static_cast<int32_t>(d.size()));
      if (pick(0, 2) == 0 && !d.empty()) {
        d.erase(d.begin() + std::min<int32_t>(at, static_cast<int32_t>(d.size()) - 1));
      } else {
        d.insert(d.begin() + at, a);
      }
    }
    for (const Diagnostic& diag : ValidateProgram(p)) {
      ASSERT_LT(diag.device, p.num_devices) << diag.ToString();
      if (diag.action_index >= 0) {
        ASSERT_GE(diag.device, 0) << diag.ToString();
        ASSERT_LT(diag.action_index, static_cast<int32_t>(p.devices[diag.device].size()))
            << diag.ToString();
      }
    }
  }
}

}  // namespace
}  // namespace pipecast::ir
