// NcclTransport on real GPUs (label `gpu`; skipped without one). On one GPU a one-rank
// communicator sends to itself: each message's send and receive run as one NCCL group, whatever
// order the executor's Send and Recv come in, and the received bits equal the sent ones. With
// two GPUs, two ranks in two threads exchange an activation and a gradient over their channels.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "runtime/cuda/nccl_transport.h"
#include "runtime/cuda/test_cuda_device.h"
#include "support/gpu.h"

namespace pipecast::runtime::cuda {
namespace {

using Kind = MessageKey::Kind;
using testing::Pattern;
using testing::SameBits;
using testing::TestCudaDevice;

Clock::time_point In(int seconds) { return Clock::now() + std::chrono::seconds(seconds); }

int GpuCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

TEST(NcclTransportGpuTest, OneRankGroupedSelfSendReceive) {
  PIPECAST_REQUIRE_GPU();
  int exchanges = 0;
  Result<NcclComm> world = CreateCommunicator(
      0, 1, 0,
      [&](const std::string&) -> Result<std::string> {
        ++exchanges;
        return InvalidArgument("one rank needs no exchange");
      },
      In(60));
  ASSERT_TRUE(world.ok()) << world.status().message();
  EXPECT_EQ(exchanges, 0);
  TestCudaDevice dev(0);
  const std::vector<Channel> channels = {{0, 0, 0}, {0, 0, 1}};
  auto links = NcclChannels::Create(world->get(), 0, 0, channels, In(60));
  ASSERT_TRUE(links.ok()) << links.status().message();
  ASSERT_EQ((*links)->size(), 2);
  FlightRecorder recorder(1, 32);
  const MessageSpace space{2, 4, 0};
  NcclTransport t(**links, space, dev, &recorder);

  const std::vector<float> act = Pattern(4099, 1), grad = Pattern(17, 2);
  const BufferView act_src = dev.Alloc(act), act_dst = dev.Alloc(std::vector<float>(4099, 0.f));
  const BufferView grad_src = dev.Alloc(grad), grad_dst = dev.Alloc(std::vector<float>(17, 0.f));
  const MessageKey a{Kind::kActivation, 1, 0}, g{Kind::kGradient, 0, 3};
  // The activation's Send comes first, the gradient's Recv comes first.
  const Handle sa = t.Send(0, 0, a, act_src, dev, dev.Record(Lane::kCompute));
  const Handle rg = t.Recv(0, 0, g, grad_dst);
  const Handle ra = t.Recv(0, 0, a, act_dst);
  const Handle sg = t.Send(0, 0, g, grad_src, dev, dev.Record(Lane::kCompute));
  ASSERT_TRUE(t.WaitReceived(ra, dev, Lane::kCompute, In(30)).ok());
  ASSERT_TRUE(t.WaitReceived(rg, dev, Lane::kCompute, In(30)).ok());
  ASSERT_TRUE(t.WaitSent(sa, In(30)).ok());
  ASSERT_TRUE(t.WaitSent(sg, In(30)).ok());
  ASSERT_TRUE(dev.Synchronize(In(30)).ok());
  EXPECT_TRUE(SameBits(dev.Download(act_dst), act));
  EXPECT_TRUE(SameBits(dev.Download(grad_dst), grad));
  EXPECT_TRUE(t.failure().ok());
  // The two sends and two receives are recorded as completed (receives by the watchdog, which
  // polls every millisecond: give it a second).
  int completed = 0;
  for (int tries = 0; tries < 1000 && completed < 4; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    completed = 0;
    for (const FlightEntry& e : recorder.Last(0))
      if ((e.what == FlightAction::kSend || e.what == FlightAction::kRecv) && e.completed_ns >= 0)
        ++completed;
  }
  EXPECT_EQ(completed, 4) << recorder.Dump();
}

TEST(NcclTransportGpuTest, AbortStopsEveryWait) {
  PIPECAST_REQUIRE_GPU();
  Result<NcclComm> world = CreateCommunicator(0, 1, 0, {}, In(60));
  ASSERT_TRUE(world.ok()) << world.status().message();
  TestCudaDevice dev(0);
  const std::vector<Channel> channels = {{0, 0, 0}};
  auto links = NcclChannels::Create(world->get(), 0, 0, channels, In(60));
  ASSERT_TRUE(links.ok()) << links.status().message();
  NcclTransport t(**links, MessageSpace{2, 2, 0}, dev);
  const BufferView buf = dev.Alloc(std::vector<float>(8, 1.f));
  const Handle h = t.Send(0, 0, {Kind::kActivation, 1, 1}, buf, dev, dev.Record(Lane::kCompute));
  t.Abort();
  const Status s = t.WaitSent(h, In(5));
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
  EXPECT_NE(s.message().find("the activation of microbatch 1 for stage 1"), std::string::npos)
      << s.message();
}

TEST(NcclTransportGpuTest, TwoRanksOnTwoGpus) {
  PIPECAST_REQUIRE_GPU();
  if (GpuCount() < 2) GTEST_SKIP() << "needs two GPUs";
  std::promise<std::string> id;
  std::shared_future<std::string> shared = id.get_future().share();
  const UniqueIdExchange exchange = [&](const std::string& mine) -> Result<std::string> {
    if (!mine.empty()) id.set_value(mine);
    return shared.get();
  };
  const std::vector<Channel> channels = {{0, 1, 0}, {1, 0, 1}};
  const std::vector<float> act = Pattern(1 << 16, 3);
  std::vector<float> got_act, got_grad;
  Status status[2];
  auto rank = [&](int r) {
    Result<NcclComm> world = CreateCommunicator(r, 2, r, exchange, In(60));
    if (!world.ok()) {
      status[r] = world.status();
      return;
    }
    TestCudaDevice dev(r);
    auto links = NcclChannels::Create(world->get(), r, r, channels, In(60));
    if (!links.ok()) {
      status[r] = links.status();
      return;
    }
    NcclTransport t(**links, MessageSpace{2, 2, 0}, dev);
    const MessageKey a{Kind::kActivation, 1, 0}, g{Kind::kGradient, 0, 0};
    if (r == 0) {
      const BufferView src = dev.Alloc(act), back = dev.Alloc(std::vector<float>(act.size()));
      const Handle s = t.Send(0, 1, a, src, dev, dev.Record(Lane::kCompute));
      const Handle h = t.Recv(0, 1, g, back);
      status[0] = t.WaitReceived(h, dev, Lane::kCompute, In(30));
      if (status[0].ok()) status[0] = t.WaitSent(s, In(30));
      if (status[0].ok()) status[0] = dev.Synchronize(In(30));
      got_grad = dev.Download(back);
    } else {
      const BufferView in = dev.Alloc(std::vector<float>(act.size()));
      const Handle h = t.Recv(1, 0, a, in);
      status[1] = t.WaitReceived(h, dev, Lane::kCompute, In(30));
      // Send what arrived straight back: its ready point is after the receive.
      const Handle s = t.Send(1, 0, g, in, dev, dev.Record(Lane::kCompute));
      if (status[1].ok()) status[1] = t.WaitSent(s, In(30));
      if (status[1].ok()) status[1] = dev.Synchronize(In(30));
      got_act = dev.Download(in);
    }
  };
  std::thread r1(rank, 1);
  rank(0);
  r1.join();
  ASSERT_TRUE(status[0].ok()) << status[0].message();
  ASSERT_TRUE(status[1].ok()) << status[1].message();
  EXPECT_TRUE(SameBits(got_act, act));
  EXPECT_TRUE(SameBits(got_grad, act));
}

// Rank 1 waits for an activation that rank 0 never sends: the wait returns at once (the lane
// waits, not the host), and the watchdog, at the wait's deadline, aborts the channels and
// records a kDeadlineExceeded naming the message and the peer, which the device's Synchronize
// and later waits return.
TEST(NcclTransportGpuTest, WatchdogEndsAWaitForALostPeer) {
  PIPECAST_REQUIRE_GPU();
  if (GpuCount() < 2) GTEST_SKIP() << "needs two GPUs";
  std::promise<std::string> id;
  std::shared_future<std::string> shared = id.get_future().share();
  const UniqueIdExchange exchange = [&](const std::string& mine) -> Result<std::string> {
    if (!mine.empty()) id.set_value(mine);
    return shared.get();
  };
  std::promise<void> done;
  std::shared_future<void> finished = done.get_future().share();
  const std::vector<Channel> channels = {{0, 1, 0}};
  Status failure, later, synchronized;
  std::string dump;
  struct Finish {  // rank 1 lets rank 0 go however it leaves, failed assertions included
    std::promise<void>* done;
    ~Finish() {
      if (done != nullptr) done->set_value();
    }
  };
  auto rank = [&](int r) {
    const Finish finish{r == 1 ? &done : nullptr};
    Result<NcclComm> world = CreateCommunicator(r, 2, r, exchange, In(60));
    ASSERT_TRUE(world.ok()) << world.status().message();
    TestCudaDevice dev(r);
    auto links = NcclChannels::Create(world->get(), r, r, channels, In(60));
    ASSERT_TRUE(links.ok()) << links.status().message();
    FlightRecorder recorder(2, 8);
    NcclTransport t(**links, MessageSpace{2, 2, 0}, dev, &recorder);
    if (r == 0) {
      finished.wait();  // sends nothing, and stays until rank 1 is done
      return;
    }
    const BufferView in = dev.Alloc(std::vector<float>(64));
    const Handle h = t.Recv(1, 0, {Kind::kActivation, 1, 0}, in);
    EXPECT_TRUE(
        t.WaitReceived(h, dev, Lane::kCompute, Clock::now() + std::chrono::milliseconds(200)).ok());
    for (int tries = 0; tries < 10000 && t.failure().ok(); ++tries)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    failure = t.failure();
    synchronized = dev.Synchronize(In(5));  // the device was told: its lane's data never came
    const Handle h2 = t.Recv(1, 0, {Kind::kActivation, 1, 1}, in);
    later = t.WaitReceived(h2, dev, Lane::kCompute, In(1));
    dump = recorder.Dump(1);
  };
  std::thread r0(rank, 0);
  rank(1);
  r0.join();
  EXPECT_EQ(failure.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(
      failure.message(),
      "rank 1 waited 200 ms receiving the activation of microbatch 0 for stage 1 from rank 0");
  EXPECT_EQ(synchronized.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(synchronized.message(), failure.message());
  EXPECT_NE(later.code(), StatusCode::kOk);
  EXPECT_NE(dump.find("receive the activation of microbatch 0 for stage 1 from device 0, NOT "
                      "COMPLETED"),
            std::string::npos)
      << dump;
  EXPECT_NE(dump.find("abort"), std::string::npos) << dump;
}

}  // namespace
}  // namespace pipecast::runtime::cuda
