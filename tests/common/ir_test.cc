// IR basics: tokens, placement and lowering.
#include <gtest/gtest.h>

#include "common/generators.h"
#include "common/ir.h"
#include "common/lower.h"

namespace pipecast::ir {
namespace {

TEST(ActionToken, EveryKindAndAnnotation) {
  EXPECT_EQ(ActionToken({ActionKind::kForward, 2, 3, {}}, false), "F3");
  EXPECT_EQ(ActionToken({ActionKind::kForward, 2, 3, {}}, true), "2F3");
  EXPECT_EQ(ActionToken({ActionKind::kBackward, 1, 7, {WeightSource::kStashed, 0}}, false),
            "B7@stash");
  EXPECT_EQ(ActionToken({ActionKind::kForward, 0, 4, {WeightSource::kPredicted, 3}}, false),
            "F4@pred:3");
  EXPECT_EQ(ActionToken({ActionKind::kBackward, 0, 4, {WeightSource::kCorrected, 2}}, false),
            "B4@corr:2");
  EXPECT_EQ(ActionToken({ActionKind::kForward, 0, 4, {WeightSource::kVersion, 9}}, false),
            "F4@v:9");
  EXPECT_EQ(ActionToken({ActionKind::kForward, 0, 4, {WeightSource::kBufferOlder, 0}}, false),
            "F4@old");
  EXPECT_EQ(ActionToken({ActionKind::kForward, 0, 4, {WeightSource::kBufferNewer, 0}}, false),
            "F4@new");
  EXPECT_EQ(ActionToken({ActionKind::kBackwardInput, 0, 1, {}}, false), "I1");
  EXPECT_EQ(ActionToken({ActionKind::kWeightGrad, 0, 1, {}}, false), "W1");
  EXPECT_EQ(ActionToken({ActionKind::kSendActivation, 5, 1, {}}, true), "5SA1");
  EXPECT_EQ(ActionToken({ActionKind::kRecvGradient, 5, 1, {}}, true), "5RG1");
  EXPECT_EQ(ActionToken({ActionKind::kStep, -1, -1, {}}, true), "S");
}

TEST(Placement, RoundRobin) {
  EXPECT_EQ(RoundRobinPlacement(8, 4), (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 3}));
}

// Lowering adds exactly one send and one receive per cross-device dependency, and none
// between stages on one device.
TEST(Lowering, OneSendReceivePairPerCrossDeviceDependency) {
  for (const MethodInfo& method : Methods()) {
    GenerateOptions o{method.name, 4, 8, 2, 1, {}};
    auto p = Generate(o);
    ASSERT_TRUE(p.ok()) << method.name << ": " << p.status().message();
    const Program lowered = InsertCommunication(*p);
    int64_t sends = 0, recvs = 0;
    for (const auto& dev : lowered.devices) {
      for (const Action& a : dev) {
        sends += a.kind == ActionKind::kSendActivation || a.kind == ActionKind::kSendGradient;
        recvs += a.kind == ActionKind::kRecvActivation || a.kind == ActionKind::kRecvGradient;
      }
    }
    int64_t cross = 0;
    for (int32_t s = 0; s + 1 < p->num_stages; ++s)
      cross += p->device_of(s) != p->device_of(s + 1) ? 1 : 0;
    const int64_t expected = 2 * cross * p->total_microbatches();
    EXPECT_EQ(sends, expected) << method.name;
    EXPECT_EQ(recvs, expected) << method.name;
    EXPECT_EQ(InsertCommunication(lowered), lowered) << "lowering is idempotent";
  }
}

TEST(Lowering, SendFollowsProducerAndReceivePrecedesConsumer) {
  auto p = Generate({"1f1b", 2, 2, 1, 1, {}});
  ASSERT_TRUE(p.ok());
  const Program l = InsertCommunication(*p);
  // Device 0: F0 SA0 F1 SA1 RG0 B0 RG1 B1 S.
  std::vector<std::string> d0, d1;
  for (const Action& a : l.devices[0]) d0.push_back(ActionToken(a, false));
  for (const Action& a : l.devices[1]) d1.push_back(ActionToken(a, false));
  EXPECT_EQ(d0, (std::vector<std::string>{"F0", "SA0", "F1", "SA1", "RG0", "B0", "RG1", "B1",
                                          "S"}));
  EXPECT_EQ(d1, (std::vector<std::string>{"RA0", "F0", "B0", "SG0", "RA1", "F1", "B1", "SG1",
                                          "S"}));
}

}  // namespace
}  // namespace pipecast::ir
