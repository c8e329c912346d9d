// The flight recorder: the ring keeps each device's last N actions in order, completions reach
// only entries still in the ring, the dump reads as documented, and concurrent recording from
// several threads loses and tears nothing.
#include "runtime/flight_recorder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace pipecast::runtime {
namespace {

using Kind = MessageKey::Kind;

TEST(FlightRecorderTest, RingKeepsTheLastEntriesInOrder) {
  int64_t clock = 0;
  FlightRecorder rec(2, 4, [&] { return clock; });
  for (int32_t j = 0; j < 6; ++j) {
    clock = 1000 * j;
    EXPECT_EQ(rec.Issue(1, FlightAction::kSend, 0, {Kind::kGradient, 0, j}), j);
  }
  const std::vector<FlightEntry> last = rec.Last(1);
  ASSERT_EQ(last.size(), 4u);  // 6 recorded, capacity 4: ids 2..5
  for (size_t k = 0; k < last.size(); ++k) {
    EXPECT_EQ(last[k].id, static_cast<int64_t>(k) + 2);
    EXPECT_EQ(last[k].key.microbatch, static_cast<int32_t>(k) + 2);
    EXPECT_EQ(last[k].issued_ns, 1000 * (static_cast<int64_t>(k) + 2));
    EXPECT_EQ(last[k].completed_ns, -1);
  }
  EXPECT_EQ(rec.Recorded(1), 6);
  EXPECT_TRUE(rec.Last(0).empty());
  // Completing an overwritten id (1 lives in slot 1, now id 5's) changes nothing; id 5 completes
  // once, at the first completion's time.
  clock = 9000;
  rec.Complete(1, 1);
  EXPECT_EQ(rec.Last(1)[3].completed_ns, -1);
  rec.Complete(1, 5);
  clock = 9999;
  rec.Complete(1, 5);
  EXPECT_EQ(rec.Last(1)[3].completed_ns, 9000);
}

TEST(FlightRecorderTest, DumpText) {
  int64_t clock = 12'500'000;
  FlightRecorder rec(2, 2, [&] { return clock; });
  const int64_t a = rec.Issue(0, FlightAction::kSend, 1, {Kind::kActivation, 1, 3});
  clock = 13'000'000;
  rec.Complete(0, a);
  clock = 14'250'000;
  rec.Issue(0, FlightAction::kRecv, 1, {Kind::kGradient, 0, 2});
  rec.Issue(1, FlightAction::kWaitSent, 0, {Kind::kGradientSum, 2, 0, 1});
  rec.Issue(1, FlightAction::kWaitReceived, 0, {Kind::kActivation, 1, 3});
  rec.Issue(1, FlightAction::kAbort, 0, {});
  EXPECT_EQ(rec.Dump(),
            "device 0: last 2 of 2 actions\n"
            "  #0 at 12.500 ms: send the activation of microbatch 3 for stage 1 to device 1, "
            "completed at 13.000 ms\n"
            "  #1 at 14.250 ms: receive the gradient of microbatch 2 for stage 0 from device 1, "
            "NOT COMPLETED\n"
            "device 1: last 2 of 3 actions\n"
            "  #1 at 14.250 ms: wait (on the device) for the activation of microbatch 3 for "
            "stage 1 from device 0, NOT COMPLETED\n"
            "  #2 at 14.250 ms: abort (blaming device 0)\n");
  EXPECT_EQ(rec.Dump(1).rfind("device 1: last 2 of 3 actions\n", 0), 0u);
  EXPECT_EQ(rec.Dump(1).find("device 0:"), std::string::npos);
  const FlightEntry sent = rec.Last(0)[0];
  EXPECT_EQ(FlightRecorder::Describe(FlightEntry{
                7, FlightAction::kWaitSent, 1, 0, {Kind::kGradientSum, 2, 0, 1}, 1'000'000, -1}),
            "#7 at 1.000 ms: wait until device 0 has the gradient sum of stage 2, round 0, from "
            "replica 1, NOT COMPLETED");
  EXPECT_EQ(sent.completed_ns, 13'000'000);
}

// Four threads record on their own device and on a shared one, completing as they go, while a
// fifth dumps: every entry that remains is whole (its fields agree with each other) and the
// counts add up.
TEST(FlightRecorderTest, ConcurrentRecording) {
  constexpr int32_t kThreads = 4, kPerThread = 20000, kCapacity = 64;
  FlightRecorder rec(kThreads + 1, kCapacity);
  std::atomic<bool> done{false};
  std::thread dumper([&] {
    while (!done.load()) EXPECT_FALSE(rec.Dump().empty());
  });
  std::vector<std::thread> threads;
  for (int32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&rec, t] {
      for (int32_t j = 0; j < kPerThread; ++j) {
        const MessageKey key{Kind::kActivation, t, j};
        const int64_t own = rec.Issue(t, FlightAction::kSend, t + 100, key);
        EXPECT_EQ(own, j);
        const int64_t shared = rec.Issue(kThreads, FlightAction::kRecv, t + 100, key);
        if (j % 2 == 0) rec.Complete(kThreads, shared);
        rec.Complete(t, own);
      }
    });
  }
  for (auto& th : threads) th.join();
  done.store(true);
  dumper.join();
  for (int32_t t = 0; t < kThreads; ++t) {
    EXPECT_EQ(rec.Recorded(t), kPerThread);
    const std::vector<FlightEntry> last = rec.Last(t);
    ASSERT_EQ(last.size(), static_cast<size_t>(kCapacity));
    for (size_t k = 0; k < last.size(); ++k) {
      EXPECT_EQ(last[k].id, kPerThread - kCapacity + static_cast<int64_t>(k));
      EXPECT_EQ(last[k].key.microbatch, last[k].id);
      EXPECT_EQ(last[k].peer, t + 100);
      EXPECT_GE(last[k].completed_ns, last[k].issued_ns);
    }
  }
  EXPECT_EQ(rec.Recorded(kThreads), int64_t{kThreads} * kPerThread);
  std::vector<FlightEntry> shared = rec.Last(kThreads);
  ASSERT_EQ(shared.size(), static_cast<size_t>(kCapacity));
  for (size_t k = 0; k < shared.size(); ++k) {
    const FlightEntry& e = shared[k];
    EXPECT_EQ(e.id, int64_t{kThreads} * kPerThread - kCapacity + static_cast<int64_t>(k));
    EXPECT_EQ(e.peer, e.key.stage + 100);  // written by one thread, not mixed
    // Its thread completed it right after issuing it when even; an entry still in the ring was
    // not overwritten in between (ids only grow), so exactly the even ones are completed.
    EXPECT_EQ(e.completed_ns >= 0, e.key.microbatch % 2 == 0) << FlightRecorder::Describe(e);
    if (k > 0) {
      EXPECT_GE(e.issued_ns, shared[k - 1].issued_ns);
    }
  }
}

}  // namespace
}  // namespace pipecast::runtime
