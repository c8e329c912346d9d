// The host part of the NCCL bootstrap (runtime/cuda/nccl_bootstrap.h): how rank 0's id reaches
// every rank through an exchange, and what each misbehaving exchange is told. No GPU needed.
#include "runtime/cuda/nccl_bootstrap.h"

#include <gtest/gtest.h>

#include <string>

namespace pipecast::runtime::cuda {
namespace {

const std::string kId(sizeof(ncclUniqueId), 'x');  // 128 bytes

TEST(NcclBootstrapTest, RankZeroPassesItsIdAndEveryRankGetsIt) {
  std::string seen;
  int calls = 0;
  const UniqueIdExchange exchange = [&](const std::string& id) -> Result<std::string> {
    ++calls;
    seen = id;
    return kId;  // what a broadcast from rank 0 returns on every rank
  };
  Result<std::string> r0 = ShareUniqueId(0, 4, kId, exchange);
  ASSERT_TRUE(r0.ok()) << r0.status().message();
  EXPECT_EQ(*r0, kId);
  EXPECT_EQ(seen, kId);  // rank 0 hands its id to the exchange
  Result<std::string> r3 = ShareUniqueId(3, 4, "", exchange);
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(*r3, kId);
  EXPECT_EQ(seen, "");  // the others pass nothing
  EXPECT_EQ(calls, 2);
}

TEST(NcclBootstrapTest, OneRankNeedsNoExchange) {
  int calls = 0;
  Result<std::string> r = ShareUniqueId(0, 1, kId, [&](const std::string&) -> Result<std::string> {
    ++calls;
    return kId;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kId);
  EXPECT_EQ(calls, 0);
}

TEST(NcclBootstrapTest, ExchangeErrorsNameTheRank) {
  const UniqueIdExchange broken = [](const std::string&) -> Result<std::string> {
    return DeadlineExceeded("no answer from the store at 10.0.0.1:29500 within 30 s");
  };
  Result<std::string> r = ShareUniqueId(2, 4, "", broken);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(r.status().message(),
            "rank 2 could not get rank 0's NCCL id: no answer from the store at 10.0.0.1:29500 "
            "within 30 s");

  const UniqueIdExchange truncating = [](const std::string&) -> Result<std::string> {
    return std::string("short");
  };
  r = ShareUniqueId(1, 2, "", truncating);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "rank 1 received an NCCL id of 5 bytes from the exchange, expected 128: the ranks do "
            "not use the same exchange or it truncates binary data");

  const UniqueIdExchange other = [](const std::string&) -> Result<std::string> {
    return std::string(sizeof(ncclUniqueId), 'y');
  };
  r = ShareUniqueId(0, 2, kId, other);
  EXPECT_EQ(r.status().message(), "the exchange did not hand rank 0 its own NCCL id back");
}

TEST(NcclBootstrapTest, BadRanksAndIds) {
  const UniqueIdExchange unused = [](const std::string&) -> Result<std::string> { return kId; };
  EXPECT_EQ(ShareUniqueId(4, 4, "", unused).status().message(),
            "rank 4 is not a rank of a job of 4 ranks");
  EXPECT_EQ(ShareUniqueId(-1, 4, "", unused).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ShareUniqueId(0, 2, "abc", unused).status().message(),
            "rank 0's NCCL id has 3 bytes, not 128");
}

TEST(NcclBootstrapTest, NcclStatusNamesTheCall) {
  EXPECT_TRUE(NcclStatus(ncclSuccess, "x").ok());
  // On a non-blocking communicator "in progress" means started; elsewhere it is not success.
  EXPECT_TRUE(NcclStarted(ncclInProgress, "x").ok());
  EXPECT_TRUE(NcclStarted(ncclSuccess, "x").ok());
  EXPECT_EQ(NcclStatus(ncclInProgress, "x").code(), StatusCode::kDeviceError);
  EXPECT_EQ(NcclStarted(ncclInvalidUsage, "x").code(), StatusCode::kDeviceError);
  const Status s = NcclStatus(ncclRemoteError, "rank 1 receiving the gradient");
  EXPECT_EQ(s.code(), StatusCode::kDeviceError);
  EXPECT_EQ(
      s.message().rfind(
          std::string("rank 1 receiving the gradient: ") + ncclGetErrorString(ncclRemoteError), 0),
      0u)
      << s.message();
}

}  // namespace
}  // namespace pipecast::runtime::cuda
