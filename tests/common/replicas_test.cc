// Replicas in the IR: the text format round trip, the validator's rules for copies and
// all-reduces (each broken on purpose), and ReplicateForDataParallel's program by hand.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/format_json.h"
#include "common/format_text.h"
#include "common/generators.h"
#include "common/ir.h"
#include "common/lower.h"
#include "common/replicate.h"
#include "common/validate.h"

namespace pipecast::ir {
namespace {

// Two data-parallel copies of a 2-stage GPipe, written by hand.
constexpr char kTwoCopies[] =
    "# pipecast schedule v1\n"
    "method gpipe\n"
    "devices 4\n"
    "stages 2\n"
    "replicas 2\n"
    "placement 0 1 2 3\n"
    "microbatch_replica 0 1\n"
    "microbatches 2\n"
    "device 0: F0 B0 AR0 S\n"
    "device 1: F0 B0 AR0 S\n"
    "device 2: F1 B1 AR0 S\n"
    "device 3: F1 B1 AR0 S\n";

Program Parse(const std::string& text) {
  Result<Program> p = ParseProgramText(text, "test.txt");
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? *p : Program{};
}

std::string Joined(const Program& p) {
  std::string out;
  for (const Diagnostic& d : ValidateProgram(p)) out += d.ToString() + "\n";
  return out;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(Replicas, HandWrittenProgramIsValidAndRoundTrips) {
  const Program p = Parse(kTwoCopies);
  EXPECT_EQ(p.replicas, 2);
  EXPECT_EQ(p.device_of(1, 1), 3);
  EXPECT_EQ(p.replica_on(0, 2), 1);
  EXPECT_FALSE(p.holds(2, 1));
  EXPECT_EQ(Joined(p), "");
  EXPECT_EQ(Joined(InsertCommunication(p)), "");
  EXPECT_EQ(Parse(ProgramToText(p)), p);
  Result<Program> json = ParseProgramJson(ProgramToJson(p), "t.json");
  ASSERT_TRUE(json.ok()) << json.status().message();
  EXPECT_EQ(*json, p);
  // Lowered, microbatch 1 travels between devices 2 and 3 (its replica), not 0 and 1.
  const Program lowered = InsertCommunication(p);
  EXPECT_EQ(ProgramToText(lowered).find("device 0: 0F0 0SA0"), std::string::npos);
  EXPECT_NE(ProgramToText(lowered).find("device 2: F1 SA1 RG1 B1 AR0 S"), std::string::npos)
      << ProgramToText(lowered);
}

TEST(Replicas, ValidatorNamesEveryBrokenRule) {
  struct Case {
    std::string from, to, message;
  };
  const std::vector<Case> cases = {
      {"device 3: F1 B1 AR0 S", "device 3: F1 B1 S",
       "all-reduce of stage 1 round 0 has no participant on device 3 (replica 1)"},
      {"device 2: F1 B1 AR0 S", "device 2: F1 B1 AR0 AR0 S", "duplicate all-reduce of stage 0"},
      {"device 0: F0 B0 AR0 S", "device 0: F0 B0 1AR0 S", "which holds no copy of it"},
      {"device 2: F1 B1 AR0 S", "device 2: F0 B1 AR0 S", "is placed on device 0 for microbatch 0"},
      {"microbatch_replica 0 1", "microbatch_replica 0 0",
       "stage 0 is placed on device 0 for microbatch 1"},
      {"device 0: F0 B0 AR0 S", "device 0: F0 AR0 B0 S",
       "weight gradient of stage 0 taken after this copy's all-reduce"},
      {"device 0: F0 B0 AR0 S", "device 0: F0 B0 S AR0",
       "all-reduce of stage 0 with no Step after it"},
  };
  for (const Case& c : cases) {
    const std::string text = Replace(kTwoCopies, c.from, c.to);
    Result<Program> p = ParseProgramText(text, "t.txt");
    ASSERT_TRUE(p.ok()) << p.status().message();
    EXPECT_NE(Joined(*p).find(c.message), std::string::npos) << c.to << "\n" << Joined(*p);
  }
  Program two_copies = Parse(kTwoCopies);
  two_copies.placement[2] = 0;
  EXPECT_NE(Joined(two_copies).find("device 0 holds two copies of stage 0 (replicas 0 and 1)"),
            std::string::npos)
      << Joined(two_copies);
}

// Two stages on each of two devices, reduced in opposite orders: a blocking all-reduce
// deadlocks, and the validator says so.
TEST(Replicas, InconsistentAllReduceOrderIsADeadlock) {
  const Program p = Parse(
      "devices 2\nstages 2\nreplicas 2\nplacement 0 1 1 0\nmicrobatch_replica 0 1\n"
      "microbatches 2\n"
      "device 0: 0F0 1F1 1B1 0B0 0AR0 1AR0 S\n"
      "device 1: 1F0 0F1 0B1 1B0 0AR0 1AR0 S\n");
  EXPECT_EQ(Joined(p), "");
  const Program crossed = Parse(
      "devices 2\nstages 2\nreplicas 2\nplacement 0 1 1 0\nmicrobatch_replica 0 1\n"
      "microbatches 2\n"
      "device 0: 0F0 1F1 1B1 0B0 0AR0 1AR0 S\n"
      "device 1: 1F0 0F1 0B1 1B0 1AR0 0AR0 S\n");
  EXPECT_NE(Joined(crossed).find("deadlock"), std::string::npos) << Joined(crossed);
}

// Averages follow the same rules, counted apart from all-reduces.
TEST(Replicas, AveragesAreCheckedLikeAllReduces) {
  const std::string averaged = Replace(
      Replace(Replace(Replace(kTwoCopies, "device 0: F0 B0 AR0 S", "device 0: F0 B0 S AV0"),
                      "device 1: F0 B0 AR0 S", "device 1: F0 B0 S AV0"),
              "device 2: F1 B1 AR0 S", "device 2: F1 B1 S AV0"),
      "device 3: F1 B1 AR0 S", "device 3: F1 B1 S AV1");
  const Program p = Parse(averaged);
  const std::string diagnostics = Joined(p);
  EXPECT_NE(diagnostics.find("average of stage 1 round 1 has no participant on device 1"),
            std::string::npos)
      << diagnostics;
  EXPECT_NE(diagnostics.find("average of stage 1 round 0 has no participant on device 3"),
            std::string::npos)
      << diagnostics;
  EXPECT_EQ(Joined(Parse(Replace(averaged, "device 3: F1 B1 S AV1", "device 3: F1 B1 S AV0"))),
            "");
}

TEST(Replicas, AllReduceNeedsReplicas) {
  const Program p = Parse("devices 1\nmicrobatches 1\ndevice 0: F0 B0 AR0 S\n");
  EXPECT_NE(Joined(p).find("all-reduce in a program with one replica"), std::string::npos);
}

TEST(Replicas, TextErrorsNameTheKey) {
  Result<Program> p = ParseProgramText("devices 2\nreplicas 2\nmicrobatches 1\n", "r.txt");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("r.txt:2:1: 'replicas' needs a 'placement' line"),
            std::string::npos)
      << p.status().message();
}

// 1F1B, D = 2, M = 2, two copies, two minibatches, by hand: copy 1 on devices 2 and 3 runs
// microbatches 2, 3 (then 6, 7); every device all-reduces its stage before each Step.
TEST(DataParallel, ReplicatedProgramByHand) {
  auto p = Generate({"1f1b", 2, 2, 2, 1, {}, 2});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->num_devices, 4);
  EXPECT_EQ(p->microbatches, 4);
  EXPECT_EQ(p->placement, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(p->microbatch_replica, (std::vector<int32_t>{0, 0, 1, 1}));
  const std::string text = ProgramToText(*p);
  EXPECT_NE(text.find("device 0: F0 F1 B0 B1 AR0 S F4 F5 B4 B5 AR1 S\n"), std::string::npos);
  EXPECT_NE(text.find("device 3: F2 B2 F3 B3 AR0 S F6 B6 F7 B7 AR1 S\n"), std::string::npos)
      << text;
  EXPECT_EQ(Joined(*p), "");
  // SizeOf predicts it.
  Result<ProgramSize> size = SizeOf({"1f1b", 2, 2, 2, 1, {}, 2});
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->devices, 4);
  EXPECT_EQ(static_cast<size_t>(size->actions()), p->num_actions());
}

// Chimera over a grid of shapes and pipeline counts: every program it emits is valid, lowered
// links included (it falls back to basic units of D when a merged unit would cross one link's
// messages of a kind, and says so in its parameters).
TEST(Chimera, EveryShapeAndPipelineCountIsValid) {
  ValidateOptions links;
  links.implicit_link_order = true;
  for (int32_t d : {2, 4, 6, 8}) {
    for (int32_t f = 1; f <= d / 2; ++f) {
      if ((d / 2) % f != 0) continue;
      for (int32_t m = 1; m <= 16; ++m) {
        Result<Program> p = Generate({"chimera", d, m, 2, 1, {{"pipelines", std::to_string(2 * f)}}});
        ASSERT_TRUE(p.ok()) << d << " " << f << " " << m << ": " << p.status().message();
        EXPECT_EQ(p->replicas, 2 * f);
        EXPECT_TRUE(ValidateProgram(*p, links).empty())
            << "D=" << d << " pipelines=" << 2 * f << " M=" << m;
        EXPECT_TRUE(ValidateProgram(InsertCommunication(*p)).empty());
      }
    }
  }
  // D = 4, four pipelines, 12 microbatches: the merged unit crosses a link, basic units do not.
  Result<Program> fallback = Generate({"chimera", 4, 12, 1, 1, {{"pipelines", "4"}}});
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ(fallback->params.at("units"), "direct");
}

// Every method replicates into a valid program whose size SizeOf predicts.
TEST(DataParallel, EveryMethodReplicatesValidly) {
  for (const MethodInfo& info : Methods()) {
    GenerateOptions o{info.name, 4, 8, 2, 1, {}, 3};
    if (info.name == "avgpipe") {  // its pipelines are its copies: data_parallel is refused
      EXPECT_FALSE(Generate(o).ok());
      EXPECT_FALSE(SizeOf(o).ok());
      continue;
    }
    Result<Program> p = Generate(o);
    ASSERT_TRUE(p.ok()) << info.name << ": " << p.status().message();
    EXPECT_EQ(Joined(*p), "") << info.name;
    EXPECT_EQ(Joined(InsertCommunication(*p)), "") << info.name;
    Result<ProgramSize> size = SizeOf(o);
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(static_cast<size_t>(size->actions()), p->num_actions()) << info.name;
  }
}

}  // namespace
}  // namespace pipecast::ir
