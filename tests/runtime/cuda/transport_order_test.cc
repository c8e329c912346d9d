// The rendezvous order check (runtime/cuda/transport_order.h) on hand-built call sequences,
// including deadlocking ones whose cycles are worked out by hand, and on the calls the executor
// makes for generated programs.
#include "runtime/cuda/transport_order.h"

#include <gtest/gtest.h>

#include <array>
#include <set>

#include "common/generators.h"
#include "common/lower.h"
#include "common/version_plan.h"

namespace pipecast::runtime::cuda {
namespace {

using Kind = MessageKey::Kind;
using Op = TransportCall::Op;
using Calls = std::vector<std::vector<TransportCall>>;

const MessageKey kX{Kind::kActivation, 1, 0};  // "the activation of microbatch 0 for stage 1"
const MessageKey kY{Kind::kGradient, 0, 0};    // "the gradient of microbatch 0 for stage 0"
const MessageKey kZ{Kind::kActivation, 2, 0};
const MessageKey kW{Kind::kGradient, 1, 0};

TransportCall Send(int32_t to, MessageKey key) { return {Op::kSend, to, key}; }
TransportCall Recv(int32_t from, MessageKey key) { return {Op::kRecv, from, key}; }
TransportCall WaitReceived(MessageKey key) { return {Op::kWaitReceived, -1, key}; }
TransportCall WaitSent(MessageKey key) { return {Op::kWaitSent, -1, key}; }

TEST(TransportOrderTest, MatchedLinksComplete) {
  const Calls calls = {
      {Send(1, kX), Recv(1, kY), WaitReceived(kY), WaitSent(kX)},
      {Recv(0, kX), WaitReceived(kX), Send(0, kY), WaitSent(kY)},
  };
  EXPECT_TRUE(CheckRendezvousOrder(calls).ok());
}

// Both devices send before they receive: a single queue per device would deadlock, but sends
// and receives run on separate streams, so each send meets its receive.
TEST(TransportOrderTest, SendsAndReceivesRunOnSeparateStreams) {
  const Calls calls = {
      {Send(1, kX), Recv(1, kY), WaitReceived(kY), WaitSent(kX)},
      {Send(0, kY), Recv(0, kX), WaitReceived(kX), WaitSent(kY)},
  };
  EXPECT_TRUE(CheckRendezvousOrder(calls).ok());
}

TEST(TransportOrderTest, SelfSendCompletes) {
  const Calls calls = {{Send(0, kX), Recv(0, kX), WaitReceived(kX), WaitSent(kX)}};
  EXPECT_TRUE(CheckRendezvousOrder(calls).ok());
}

TEST(TransportOrderTest, LinkOutOfOrder) {
  const MessageKey x1{Kind::kActivation, 1, 1};
  const Calls calls = {
      {Send(1, kX), Send(1, x1)},
      {Recv(0, x1), Recv(0, kX)},
  };
  const Status s = CheckRendezvousOrder(calls);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "link 0->1 (activations) out of order: message 0 of the link is the activation of "
            "microbatch 0 for "
            "stage 1 at the sender but the activation of microbatch 1 for stage 1 at the "
            "receiver; the transport pairs a link's sends and receives by order, so both devices "
            "must issue them in the same order");
}

TEST(TransportOrderTest, UnmatchedAndUnknownMessages) {
  Status s = CheckRendezvousOrder(Calls{{Send(1, kX)}, {}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "device 0 sends the activation of microbatch 0 for stage 1 to device 1, which device "
            "1 never receives");
  s = CheckRendezvousOrder(Calls{{}, {Recv(0, kX)}});
  EXPECT_EQ(s.message(),
            "device 1 receives the activation of microbatch 0 for stage 1 from device 0, which "
            "device 0 never sends");
  s = CheckRendezvousOrder(Calls{{WaitSent(kX)}});
  EXPECT_EQ(s.message(),
            "device 0 waits for the activation of microbatch 0 for stage 1, which it did not send "
            "before");
}

// Each thread waits for its send before it posts the receive that the other's send needs.
TEST(TransportOrderTest, DeadlockThroughWaitSent) {
  Calls calls = {
      {Send(1, kX), WaitSent(kX), Recv(1, kY), WaitReceived(kY)},
      {Send(0, kY), WaitSent(kY), Recv(0, kX), WaitReceived(kX)},
  };
  for (int32_t d = 0; d < 2; ++d)
    for (size_t i = 0; i < calls[d].size(); ++i) calls[d][i].action = static_cast<int32_t>(i);
  const Status s =
      CheckRendezvousOrder(calls, TransferStreams::kPerDevice,
                           [](int32_t d, int32_t a) { return std::to_string(d * 10 + a); });
  EXPECT_EQ(s.code(), StatusCode::kDeadlock);
  EXPECT_EQ(s.message(),
            "the transfers of devices 0, 1 wait on each other when a send completes only once its "
            "receive runs (NCCL):\n"
            "  device 0 sends the activation of microbatch 0 for stage 1 to device 1 (0): "
            "waits for device 1 to start the receive\n"
            "  device 1 receives the activation of microbatch 0 for stage 1 from device 0 (12): "
            "is not issued yet: device 1's thread first waits for its earlier send of the "
            "gradient of microbatch 0 for stage 0 to complete\n"
            "  device 1 sends the gradient of microbatch 0 for stage 0 to device 0 (10): waits "
            "for device 0 to start the receive\n"
            "  device 0 receives the gradient of microbatch 0 for stage 0 from device 1 (2): "
            "is not issued yet: device 0's thread first waits for its earlier send of the "
            "activation of microbatch 0 for stage 1 to complete\n"
            "receive earlier or send later in one of these devices' programs, so that every "
            "link's messages can complete in order");
}

// Three devices: device 0 sends x to 1, then z to 2 on its one send stream. Device 1 posts the
// receive of x only after its compute has waited for w, which device 2 sends once it has z,
// which waits behind x. Buffered sends would not deadlock here; rendezvous sends on one stream
// per device do, and one stream per channel does not (x and z are on different channels).
TEST(TransportOrderTest, DeadlockThroughTheSendStream) {
  const Calls calls = {
      {Send(1, kX), Send(2, kZ)},
      {Recv(2, kW), WaitReceived(kW), Recv(0, kX), WaitReceived(kX)},
      {Recv(0, kZ), WaitReceived(kZ), Send(1, kW)},
  };
  EXPECT_TRUE(CheckRendezvousOrder(calls, TransferStreams::kPerChannel).ok());
  const Status s = CheckRendezvousOrder(calls, TransferStreams::kPerDevice);
  EXPECT_EQ(s.code(), StatusCode::kDeadlock);
  EXPECT_EQ(s.message(),
            "the transfers of devices 0, 1, 2 wait on each other when a send completes only once "
            "its receive runs (NCCL):\n"
            "  device 0 sends the activation of microbatch 0 for stage 1 to device 1: waits for "
            "device 1 to start the receive\n"
            "  device 1 receives the activation of microbatch 0 for stage 1 from device 0: waits "
            "behind the earlier receive on device 1's receive stream\n"
            "  device 1 receives the gradient of microbatch 0 for stage 1 from device 2: waits for "
            "device 2 to start the send\n"
            "  device 2 sends the gradient of microbatch 0 for stage 1 to device 1: waits for "
            "device 2's compute, which waits for the activation of microbatch 0 for stage 2\n"
            "  device 2 receives the activation of microbatch 0 for stage 2 from device 0: waits "
            "for device 0 to start the send\n"
            "  device 0 sends the activation of microbatch 0 for stage 2 to device 2: waits "
            "behind the earlier send on device 0's send stream\n"
            "receive earlier or send later in one of these devices' programs, so that every "
            "link's messages can complete in order");
}

ir::Program Lowered(const std::string& method, int32_t devices, int32_t microbatches,
                    int32_t minibatches, int32_t data_parallel = 1) {
  ir::GenerateOptions o{method, devices, microbatches, minibatches};
  o.data_parallel = data_parallel;
  auto p = ir::Generate(o);
  EXPECT_TRUE(p.ok()) << method << ": " << p.status().message();
  return ir::InsertCommunication(*p);
}

// 1F1B on two devices, two microbatches, by hand from runtime/executor.cc: device 0 runs
// F0 SA0 F1 SA1 RG0 B0 RG1 B1 S, device 1 RA0 F0 B0 SG0 RA1 F1 B1 SG1 S; a record is reused
// at the first action that opens it again.
TEST(TransportOrderTest, ExecutorCallsOf1F1B) {
  const ir::Program p = Lowered("1f1b", 2, 2, 1);
  const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
  const Calls calls = ExecutorCalls(p, plan);
  ASSERT_EQ(calls.size(), 2u);
  const MessageKey a0{Kind::kActivation, 1, 0}, a1{Kind::kActivation, 1, 1};
  const MessageKey g0{Kind::kGradient, 0, 0}, g1{Kind::kGradient, 0, 1};
  auto text = [](const std::vector<TransportCall>& c) {
    std::string s;
    for (const TransportCall& t : c) {
      const char* op[] = {"send", "recv", "wait-received", "wait-sent"};
      s += std::string(op[static_cast<int>(t.op)]) + " " + t.key.ToString() + ";";
    }
    return s;
  };
  const std::vector<TransportCall> d0 = {Send(1, a0),      Send(1, a1), Recv(1, g0),
                                         WaitReceived(g0), Recv(1, g1), WaitReceived(g1),
                                         WaitSent(a0),     WaitSent(a1)};
  // Device 1 holds one record: RA1 opens it again, after the send of g0 completed.
  const std::vector<TransportCall> d1 = {Recv(0, a0), WaitReceived(a0), Send(0, g0), WaitSent(g0),
                                         Recv(0, a1), WaitReceived(a1), Send(0, g1), WaitSent(g1)};
  EXPECT_EQ(text(calls[0]), text(d0));
  EXPECT_EQ(text(calls[1]), text(d1));
  EXPECT_EQ(calls[0][0].peer, 1);
  EXPECT_EQ(calls[1][2].peer, 0);
  EXPECT_TRUE(CheckProgramOrder(p, plan).ok());
}

// The key -> index table both GPU transports size their slots by (send 2i, receive 2i + 1):
// every key of every kind has its own index below size(), and KeyAt inverts Index. Size by
// hand: 3 point-to-point kinds x 3 stages x max(5 microbatches, 7 chunks) = 63, plus 4
// reduction kinds x 3 stages x 2 rounds x 3 replicas = 72.
TEST(TransportOrderTest, MessageTables) {
  const MessageSpace space{3, 5, 7, 3, 2};
  EXPECT_EQ(space.size(), 63 + 72);
  std::set<int32_t> seen;
  auto check = [&](const MessageKey& k) {
    const int32_t i = space.Index(k);
    EXPECT_GE(i, 0);
    EXPECT_LT(i, space.size());
    EXPECT_TRUE(seen.insert(i).second) << k.ToString();
    EXPECT_TRUE(space.KeyAt(i) == k) << k.ToString() << " -> " << space.KeyAt(i).ToString();
  };
  for (int32_t st = 0; st < 3; ++st) {
    for (int32_t j = 0; j < 5; ++j) {
      check({Kind::kActivation, st, j});
      check({Kind::kGradient, st, j});
    }
    for (int32_t c = 0; c < 7; ++c) check({Kind::kEvalActivation, st, c});
    for (const Kind k : {Kind::kGradientSum, Kind::kReducedGradient, Kind::kAverageWeights,
                         Kind::kAverageReference})
      for (int32_t round = 0; round < 2; ++round)
        for (int32_t r = 1; r < 3; ++r) check({k, st, round, r});
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(3 * (5 + 5 + 7) + 4 * 3 * 2 * 2));
}

// The channels of 1F1B on two devices: activations 0 -> 1, gradients 1 -> 0; with two copies
// (devices 2 and 3 run replica 1) also each copy's pipeline and the all-reduces' reductions
// both ways between the two copies of each stage.
TEST(TransportOrderTest, ChannelsOfPrograms) {
  ir::Program p = Lowered("1f1b", 2, 4, 1);
  ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
  EXPECT_EQ(ChannelsOf(p, plan), (std::vector<Channel>{{0, 1, 0}, {1, 0, 1}}));
  p = Lowered("1f1b", 2, 4, 1, 2);
  ASSERT_EQ(p.device_of_replica(0, 1), 2);
  ASSERT_EQ(p.device_of_replica(1, 1), 3);
  plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
  EXPECT_EQ(
      ChannelsOf(p, plan),
      (std::vector<Channel>{
          {0, 1, 0}, {0, 2, 2}, {1, 0, 1}, {1, 3, 2}, {2, 0, 2}, {2, 3, 0}, {3, 1, 2}, {3, 2, 1}}));
  EXPECT_EQ(ChannelClass(Kind::kEvalActivation), ChannelClass(Kind::kActivation));
  EXPECT_EQ(ChannelClass(Kind::kAverageReference), ChannelClass(Kind::kGradientSum));
  EXPECT_NE(ChannelClass(Kind::kGradient), ChannelClass(Kind::kActivation));
}

// Every method's executor calls complete with one stream per channel (NcclTransport), at a few
// shapes and with data parallelism (all-reduces); with one send and one receive stream per
// device, four methods' programs deadlock or mix a link's classes, which is why NcclTransport
// keeps channels apart.
TEST(TransportOrderTest, EveryMethodCompletesWithChannelStreams) {
  const std::set<std::string> need_channels = {"interleaved", "zb-v", "chimera", "wpipe"};
  int32_t checked = 0;
  std::vector<std::string> skipped;
  for (const ir::MethodInfo& m : ir::Methods()) {
    for (const auto [devices, microbatches, minibatches, dp] :
         {std::array{4, 8, 2, 1}, std::array{2, 4, 3, 1}, std::array{4, 8, 2, 2}}) {
      ir::GenerateOptions o{m.name, devices, microbatches, minibatches};
      o.data_parallel = dp;
      auto g = ir::Generate(o);
      if (!g.ok()) {  // avgpipe takes its copies as a parameter of its own
        skipped.push_back(m.name + " dp" + std::to_string(dp));
        continue;
      }
      const ir::Program p = ir::InsertCommunication(*g);
      const ir::VersionPlan plan = ir::BuildVersionPlan(p, ir::PlanDetail::kExecution);
      const Status s = CheckProgramOrder(p, plan, TransferStreams::kPerChannel);
      EXPECT_TRUE(s.ok()) << m.name << " " << devices << "x" << microbatches << " dp" << dp << ": "
                          << s.message();
      ++checked;
      if (devices == 4 && dp == 1) {
        EXPECT_EQ(CheckProgramOrder(p, plan, TransferStreams::kPerDevice).ok(),
                  !need_channels.count(m.name))
            << m.name;
      }
    }
  }
  EXPECT_EQ(skipped, std::vector<std::string>{"avgpipe dp2"});
  EXPECT_EQ(checked, 3 * static_cast<int32_t>(ir::Methods().size()) - 1);
}

}  // namespace
}  // namespace pipecast::runtime::cuda
