// PoolPlan: offsets and totals worked by hand, overflow refused, the largest buffers named.
#include "runtime/cuda/pool_plan.h"

#include <gtest/gtest.h>

#include <limits>

namespace pipecast::runtime::cuda {
namespace {

TEST(PoolPlan, AlignsEveryOffsetTo256Bytes) {
  PoolPlan plan;
  plan.Add("a", 10);   // [0, 10)     -> next at 256
  plan.Add("b", 256);  // [256, 512)  -> next at 512
  plan.Add("c", 0);    // 512, empty  -> next at 512
  plan.Add("d", 257);  // [512, 769)  -> total 1024
  ASSERT_TRUE(plan.Finish().ok());
  EXPECT_EQ(plan.entry(0).offset, 0);
  EXPECT_EQ(plan.entry(1).offset, 256);
  EXPECT_EQ(plan.entry(2).offset, 512);
  EXPECT_EQ(plan.entry(3).offset, 512);
  EXPECT_EQ(plan.total_bytes(), 1024);
}

TEST(PoolPlan, RefusesAnOverflowingPlanNamingTheBuffer) {
  PoolPlan plan;
  plan.Add("stage 0 weights", 1024);
  plan.Add("stage 1 activation records", std::numeric_limits<int64_t>::max() - 100);
  const Status s = plan.Finish();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("stage 1 activation records"), std::string::npos) << s.message();
}

TEST(PoolPlan, NamesTheLargestBuffersFirst) {
  PoolPlan plan;
  plan.Add("small", 100);
  plan.Add("big", int64_t{3} << 30);
  plan.Add("middle", int64_t{5} << 20);
  ASSERT_TRUE(plan.Finish().ok());
  EXPECT_EQ(plan.Largest(2), "big 3.00 GiB, middle 5.0 MiB");
}

TEST(FormatBytes, PicksTheUnit) {
  EXPECT_EQ(FormatBytes(96), "96 B");
  EXPECT_EQ(FormatBytes(12 * 1024), "12.0 KiB");
  EXPECT_EQ(FormatBytes(int64_t{512} << 20), "512.0 MiB");
  EXPECT_EQ(FormatBytes(int64_t{5} << 29), "2.50 GiB");
}

}  // namespace
}  // namespace pipecast::runtime::cuda
