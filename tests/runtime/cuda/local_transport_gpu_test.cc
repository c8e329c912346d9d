// CudaLocalTransport on real GPUs (label `gpu`; skipped without one): copies between two test
// devices on one GPU, in both arrival orders, arrive bit for bit; receives posted before the
// transport knows their device are copied without waiting for that device's thread; a size
// mismatch, a missing send and Abort give the documented errors; with two GPUs the copy crosses
// them.
#include <gtest/gtest.h>

#include <thread>

#include "runtime/cuda/local_transport.h"
#include "runtime/cuda/test_cuda_device.h"
#include "support/gpu.h"

namespace pipecast::runtime::cuda {
namespace {

using Kind = MessageKey::Kind;
using testing::Pattern;
using testing::SameBits;
using testing::TestCudaDevice;

Clock::time_point In(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

// Two messages 0 -> 1, one sent before its receive is posted and one after, on devices d0, d1.
void CopiesBothOrders(TestCudaDevice& d0, TestCudaDevice& d1) {
  Device* devices[] = {&d0, &d1};
  FlightRecorder recorder(2, 16);
  CudaLocalTransport t(devices, MessageSpace{2, 2, 0}, &recorder, 4);
  const std::vector<float> x = Pattern(3001, 5), y = Pattern(1, 6);
  const BufferView x_src = d0.Alloc(x), y_src = d0.Alloc(y);
  const BufferView x_dst = d1.Alloc(std::vector<float>(x.size())), y_dst = d1.Alloc({0.f});
  const MessageKey kx{Kind::kActivation, 1, 0}, ky{Kind::kActivation, 1, 1};
  const Handle sx = t.Send(0, 1, kx, x_src, d0, d0.Record(Lane::kCompute));
  const Handle rx = t.Recv(1, 0, kx, x_dst);
  const Handle ry = t.Recv(1, 0, ky, y_dst);
  const Handle sy = t.Send(0, 1, ky, y_src, d0, d0.Record(Lane::kCompute));
  ASSERT_TRUE(t.WaitReceived(rx, d1, Lane::kCompute, In(10000)).ok());
  ASSERT_TRUE(t.WaitReceived(ry, d1, Lane::kCompute, In(10000)).ok());
  ASSERT_TRUE(t.WaitSent(sx, In(10000)).ok());
  ASSERT_TRUE(t.WaitSent(sy, In(10000)).ok());
  ASSERT_TRUE(d1.Synchronize(In(10000)).ok());
  EXPECT_TRUE(SameBits(d1.Download(x_dst), x));
  EXPECT_TRUE(SameBits(d1.Download(y_dst), y));
  EXPECT_EQ(recorder.Last(0).size(), 2u);
  EXPECT_GE(recorder.Last(1)[0].completed_ns, 0);
}

TEST(CudaLocalTransportGpuTest, TwoDevicesOnOneGpu) {
  PIPECAST_REQUIRE_GPU();
  TestCudaDevice d0(0), d1(0);
  CopiesBothOrders(d0, d1);
}

TEST(CudaLocalTransportGpuTest, AcrossTwoGpus) {
  PIPECAST_REQUIRE_GPU();
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n < 2) GTEST_SKIP() << "needs two GPUs";
  TestCudaDevice d0(0), d1(1);
  CopiesBothOrders(d0, d1);
}

// Built from a device count (as `pipecast run` builds it): device 1 posts two receives before
// the transport knows it; once its first WaitReceived makes it known, the second message is
// copied as soon as it is sent, so device 0's WaitSent of it returns without device 1 having
// waited for it (no rendezvous), and both arrive bit for bit.
TEST(CudaLocalTransportGpuTest, ReceivesPostedBeforeTheDeviceIsKnownNeedNoWaitToBeCopied) {
  PIPECAST_REQUIRE_GPU();
  TestCudaDevice d0(0), d1(0);
  CudaLocalTransport t(2, MessageSpace{2, 2, 0});
  const std::vector<float> x = Pattern(257, 7), y = Pattern(33, 8);
  const BufferView x_src = d0.Alloc(x), y_src = d0.Alloc(y);
  const BufferView x_dst = d1.Alloc(std::vector<float>(x.size())),
                   y_dst = d1.Alloc(std::vector<float>(y.size()));
  const MessageKey kx{Kind::kActivation, 1, 0}, ky{Kind::kActivation, 1, 1};
  const Handle rx = t.Recv(1, 0, kx, x_dst);  // device 1 is not known yet
  const Handle ry = t.Recv(1, 0, ky, y_dst);
  const Handle sx = t.Send(0, 1, kx, x_src, d0, d0.Record(Lane::kCompute));
  const Handle sy = t.Send(0, 1, ky, y_src, d0, d0.Record(Lane::kCompute));
  ASSERT_TRUE(t.WaitReceived(rx, d1, Lane::kCompute, In(10000)).ok());
  const Status sent = t.WaitSent(sy, In(2000));
  EXPECT_TRUE(sent.ok()) << sent.message();
  ASSERT_TRUE(t.WaitSent(sx, In(10000)).ok());
  ASSERT_TRUE(t.WaitReceived(ry, d1, Lane::kCompute, In(10000)).ok());
  ASSERT_TRUE(d1.Synchronize(In(10000)).ok());
  EXPECT_TRUE(SameBits(d1.Download(x_dst), x));
  EXPECT_TRUE(SameBits(d1.Download(y_dst), y));
}

TEST(CudaLocalTransportGpuTest, SizeMismatchDeadlineAndAbort) {
  PIPECAST_REQUIRE_GPU();
  TestCudaDevice d0(0), d1(0);
  Device* devices[] = {&d0, &d1};
  CudaLocalTransport t(devices, MessageSpace{2, 4, 0});
  const BufferView four = d0.Alloc(std::vector<float>(4, 1.f));
  const BufferView three = d1.Alloc(std::vector<float>(3, 0.f));
  const MessageKey k0{Kind::kActivation, 1, 0}, k1{Kind::kActivation, 1, 1},
      k2{Kind::kActivation, 1, 2};
  const Handle s0 = t.Send(0, 1, k0, four, d0, d0.Record(Lane::kCompute));
  const Handle r0 = t.Recv(1, 0, k0, three);
  Status s = t.WaitReceived(r0, d1, Lane::kCompute, In(1000));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "the activation of microbatch 0 for stage 1 has 4 values but device 1 expects 3");
  EXPECT_EQ(t.WaitSent(s0, In(1000)).code(), StatusCode::kInvalidArgument);

  const Handle r1 = t.Recv(1, 0, k1, three);
  s = t.WaitReceived(r1, d1, Lane::kCompute, In(50));
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find("device 1 waited 50 ms for the activation of microbatch 1 for "
                             "stage 1 from device 0"),
            std::string::npos)
      << s.message();

  const Handle r2 = t.Recv(1, 0, k2, three);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    t.Abort();
  });
  s = t.WaitReceived(r2, d1, Lane::kCompute, In(10000));
  stopper.join();
  EXPECT_EQ(s.code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace pipecast::runtime::cuda
