// The TCP store of the bootstrap: four ranks as threads on 127.0.0.1, the store on a free port.
// Set/Get, a Get waiting for a later Set, barriers, deadlines naming the key and the ranks
// that had not arrived, size limits, connecting to a port nobody serves (and retrying until
// rank 0 does), malformed frames from a raw socket (decoded here from the documented format)
// refused while the store serves on, checked hellos, the NCCL id exchange, and the store's
// stop waking its waiters. Waits that must fail use deadlines of 100-200 ms; waits that must
// succeed use 5 s, so a loaded machine slows the test but does not fail it.
#include "runtime/tcp_store.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/tcp_socket.h"

namespace pipecast::runtime {
namespace {

using Clock = TcpStore::Clock;
using namespace std::chrono_literals;

constexpr auto kLong = 5s;  // deadline of a wait that must succeed

Clock::time_point In(Clock::duration d) { return Clock::now() + d; }

std::unique_ptr<TcpStore> Connect(int port, int rank, int world) {
  Result<std::unique_ptr<TcpStore>> store =
      TcpStore::Connect("127.0.0.1", port, rank, world, In(kLong));
  EXPECT_TRUE(store.ok()) << store.status().message();
  return store.ok() ? std::move(*store) : nullptr;
}

// Rank 0 on a free port, then ranks 1 .. world - 1.
std::vector<std::unique_ptr<TcpStore>> World(int world) {
  std::vector<std::unique_ptr<TcpStore>> ranks;
  ranks.push_back(Connect(0, 0, world));
  for (int rank = 1; rank < world && ranks[0] != nullptr; ++rank) {
    ranks.push_back(Connect(ranks[0]->port(), rank, world));
  }
  return ranks;
}

// Runs body(rank) on one thread per rank and joins them.
template <typename Body>
void OnEveryRank(int world, Body body) {
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) threads.emplace_back(body, rank);
  for (std::thread& t : threads) t.join();
}

// A port nobody listens on (the system's choice of a free one, released).
int FreePort() {
  int port = 0;
  Result<net::Fd> fd = net::Listen(0, &port);
  EXPECT_TRUE(fd.ok()) << fd.status().message();
  return port;
}

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

bool Matches(const std::string& text, const std::string& pattern) {
  return std::regex_match(text, std::regex(pattern));
}

std::string U32(uint32_t v) {
  return {static_cast<char>(v & 0xff), static_cast<char>((v >> 8) & 0xff),
          static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 24) & 0xff)};
}

uint32_t ReadU32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  return v;
}

// A frame by the documented format: "PCS1", op, key length, value length, key, value.
std::string RawFrame(uint8_t op, const std::string& key, const std::string& value) {
  return std::string("PCS1") + static_cast<char>(op) + U32(key.size()) + U32(value.size()) + key +
         value;
}

// Sends `bytes` on a raw connection and returns everything the store sends until it closes.
std::string SendRaw(int port, const std::string& bytes) {
  Result<net::Fd> fd = net::ConnectOnce("127.0.0.1", port, In(kLong));
  EXPECT_TRUE(fd.ok()) << fd.status().message();
  if (!fd.ok()) return "";
  EXPECT_TRUE(net::SendAll(fd->get(), bytes, In(kLong)).ok());
  std::string got;
  const Clock::time_point deadline = In(kLong);
  while (net::WaitReadable(fd->get(), deadline)) {
    char chunk[4096];
    const ssize_t n = ::recv(fd->get(), chunk, sizeof(chunk), 0);
    if (n <= 0) break;
    got.append(chunk, static_cast<size_t>(n));
  }
  return got;
}

// The message of the last frame in `bytes`, which must be an error (op 12) with no key.
std::string LastError(const std::string& bytes) {
  size_t at = 0;
  std::string message;
  while (at + 13 <= bytes.size()) {
    EXPECT_EQ(bytes.substr(at, 4), "PCS1");
    const uint8_t op = static_cast<uint8_t>(bytes[at + 4]);
    const uint32_t key = ReadU32(bytes, at + 5);
    const uint32_t value = ReadU32(bytes, at + 9);
    message = op == 12 && key == 0 ? bytes.substr(at + 13, value) : "op " + std::to_string(op);
    at += 13 + key + value;
  }
  EXPECT_EQ(at, bytes.size());
  return message;
}

TEST(TcpStore, SetAndGetAcrossFourRanks) {
  auto ranks = World(4);
  ASSERT_EQ(ranks.size(), 4u);
  auto value_of = [](int rank) {
    std::string value("rank\0", 5);
    for (int i = 0; i < 1000; ++i) value += static_cast<char>((i * 7 + rank) % 256);
    return value;
  };
  OnEveryRank(4, [&](int rank) {
    TcpStore& store = *ranks[rank];
    ASSERT_TRUE(store.Set("from-" + std::to_string(rank), value_of(rank)).ok());
    for (int other = 0; other < 4; ++other) {
      Result<std::string> got = store.Get("from-" + std::to_string(other), In(kLong));
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_EQ(*got, value_of(other)) << "rank " << rank << " reading rank " << other;
    }
    EXPECT_TRUE(store.Barrier("done", In(kLong)).ok());
  });
  // A key keeps its value until it is set again.
  ASSERT_TRUE(ranks[2]->Set("from-1", "again").ok());
  EXPECT_EQ(*ranks[3]->Get("from-1", In(kLong)), "again");
}

TEST(TcpStore, GetWaitsForALaterSet) {
  auto ranks = World(2);
  ASSERT_EQ(ranks.size(), 2u);
  Clock::time_point set_at{};
  Clock::time_point got_at{};
  std::thread reader([&] {
    Result<std::string> got = ranks[1]->Get("late", In(kLong));
    got_at = Clock::now();
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(*got, "value");
  });
  std::this_thread::sleep_for(100ms);
  set_at = Clock::now();
  ASSERT_TRUE(ranks[0]->Set("late", "value").ok());
  reader.join();
  EXPECT_GE(got_at, set_at);
}

TEST(TcpStore, DeleteForgetsAValueUntilItIsSetAgain) {
  auto ranks = World(2);
  ASSERT_EQ(ranks.size(), 2u);
  ASSERT_TRUE(ranks[0]->Set("piece", "old").ok());
  ASSERT_TRUE(ranks[0]->Delete("piece").ok());
  ASSERT_TRUE(ranks[0]->Delete("never-set").ok());  // no error
  const Result<std::string> gone = ranks[1]->Get("piece", In(200ms));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kDeadlineExceeded) << gone.status().message();
  ASSERT_TRUE(ranks[0]->Set("piece", "new").ok());
  const Result<std::string> again = ranks[1]->Get("piece", In(kLong));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, "new");
}

TEST(TcpStore, BarrierReleasesNobodyUntilEveryRankArrives) {
  auto ranks = World(4);
  ASSERT_EQ(ranks.size(), 4u);
  std::atomic<int> before{0};
  std::atomic<bool> last_arrived{false};
  OnEveryRank(4, [&](int rank) {
    before.fetch_add(1);
    ASSERT_TRUE(ranks[rank]->Barrier("step", In(kLong)).ok());
    EXPECT_EQ(before.load(), 4);
    // The same name again: rank 3 comes 50 ms late and nobody passes before it.
    if (rank == 3) {
      std::this_thread::sleep_for(50ms);
      last_arrived = true;
    }
    ASSERT_TRUE(ranks[rank]->Barrier("step", In(kLong)).ok());
    EXPECT_TRUE(last_arrived.load()) << "rank " << rank;
  });
}

TEST(TcpStore, GetDeadlineNamesTheKey) {
  auto ranks = World(2);
  ASSERT_EQ(ranks.size(), 2u);
  const Clock::time_point start = Clock::now();
  Result<std::string> got = ranks[1]->Get("never", start + 100ms);
  const double waited = MillisSince(start);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded);
  const std::string port = std::to_string(ranks[0]->port());
  EXPECT_TRUE(Matches(got.status().message(),
                      "rank 1, store 127\\.0\\.0\\.1:" + port +
                          ": key 'never' was not set within [0-9]+ ms \\(does the rank that "
                          "sets it run, and has it reached that point\\?\\)"))
      << got.status().message();
  EXPECT_GE(waited, 100.0);
  EXPECT_LT(waited, 1500.0);
  // The connection is still good.
  ASSERT_TRUE(ranks[0]->Set("never", "now").ok());
  EXPECT_EQ(*ranks[1]->Get("never", In(kLong)), "now");
}

TEST(TcpStore, BarrierDeadlineNamesTheRanksThatHadNotArrived) {
  auto ranks = World(4);
  ASSERT_EQ(ranks.size(), 4u);
  // Rank 2 waits long; rank 0 arrives 100 ms later and gives up after 150 ms.
  std::thread rank2([&] { EXPECT_TRUE(ranks[2]->Barrier("sync", In(kLong)).ok()); });
  std::this_thread::sleep_for(100ms);
  const Clock::time_point start = Clock::now();
  const Status late = ranks[0]->Barrier("sync", start + 150ms);
  const double waited = MillisSince(start);
  EXPECT_EQ(late.code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(Matches(late.message(),
                      "rank 0, store 127\\.0\\.0\\.1:" + std::to_string(ranks[0]->port()) +
                          ": barrier 'sync' timed out after [0-9]+ ms: ranks 1, 3 of 4 had not "
                          "arrived \\(arrived: 0, 2\\)"))
      << late.message();
  EXPECT_GE(waited, 150.0);
  EXPECT_LT(waited, 1500.0);
  // Rank 2 still waits; when the other three come, all four pass.
  std::vector<std::thread> others;
  for (int rank : {0, 1, 3}) {
    others.emplace_back([&, rank] { EXPECT_TRUE(ranks[rank]->Barrier("sync", In(kLong)).ok()); });
  }
  for (std::thread& t : others) t.join();
  rank2.join();
}

TEST(TcpStore, BarrierTimeoutsCountRanksThatGaveUpAndNameRanksThatLeft) {
  auto ranks = World(3);
  ASSERT_EQ(ranks.size(), 3u);
  ranks[2].reset();  // rank 2 closes its connection
  // Ranks 0 and 1 wait with the same deadline: whichever the store answers second still counts
  // the first, who arrived and gave up, as arrived.
  const Clock::time_point deadline = In(150ms);
  Status answers[2];
  OnEveryRank(2, [&](int rank) { answers[rank] = ranks[rank]->Barrier("b", deadline); });
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(answers[rank].code(), StatusCode::kDeadlineExceeded);
    EXPECT_TRUE(Matches(answers[rank].message(),
                        ".*: barrier 'b' timed out after [0-9]+ ms: rank 2 of 3 had not arrived "
                        "\\(arrived: 0, 1; rank 2 had closed its connection\\)"))
        << answers[rank].message();
  }
}

TEST(TcpStore, RefusesOversizedKeysAndValuesBeforeSending) {
  auto ranks = World(2);
  ASSERT_EQ(ranks.size(), 2u);
  const std::string where = "rank 1, store 127.0.0.1:" + std::to_string(ranks[0]->port());
  Status big = ranks[1]->Set("big", std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(big.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(big.message(), where +
                               ": the value of key 'big' is 1048577 bytes; the store takes "
                               "at most 1048576 (1 MiB)");
  Status long_key = ranks[1]->Set(std::string(257, 'k'), "v");
  EXPECT_EQ(long_key.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(long_key.message(), where + ": the key '" + std::string(60, 'k') +
                                    "...' is 257 bytes; the store takes at most 256");
  EXPECT_EQ(ranks[1]->Get("", In(kLong)).status().message(), where + ": an empty key");
  // At the limits, both pass intact, over the same connection.
  std::string mib((1 << 20), '\0');
  for (size_t i = 0; i < mib.size(); ++i) mib[i] = static_cast<char>(i * 131 % 251);
  ASSERT_TRUE(ranks[1]->Set(std::string(256, 'k'), mib).ok());
  Result<std::string> got = ranks[0]->Get(std::string(256, 'k'), In(kLong));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_TRUE(*got == mib);
}

TEST(TcpStore, ConnectingToAPortNobodyServesFailsAtTheDeadline) {
  const int port = FreePort();
  const Clock::time_point start = Clock::now();
  Result<std::unique_ptr<TcpStore>> store =
      TcpStore::Connect("127.0.0.1", port, 1, 2, start + 200ms);
  const double waited = MillisSince(start);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(
      Matches(store.status().message(),
              "rank 1 could not connect to the store at 127\\.0\\.0\\.1:" + std::to_string(port) +
                  " within [0-9]+ ms: Connection refused \\(rank 0 serves the store "
                  "there: check that it is running and that MASTER_ADDR and MASTER_PORT "
                  "are the same on every rank\\)"))
      << store.status().message();
  EXPECT_GE(waited, 200.0);
  EXPECT_LT(waited, 1500.0);
}

TEST(TcpStore, ConnectRetriesUntilRank0Serves) {
  const int port = FreePort();
  std::thread rank1([&] {
    std::unique_ptr<TcpStore> store = Connect(port, 1, 2);
    ASSERT_NE(store, nullptr);
    Result<std::string> got = store->Get("greeting", In(kLong));
    ASSERT_TRUE(got.ok()) << got.status().message();
    EXPECT_EQ(*got, "hello");
    EXPECT_TRUE(store->Barrier("bye", In(kLong)).ok());
  });
  std::this_thread::sleep_for(100ms);
  std::unique_ptr<TcpStore> rank0 = Connect(port, 0, 2);
  ASSERT_NE(rank0, nullptr);
  EXPECT_EQ(rank0->port(), port);
  ASSERT_TRUE(rank0->Set("greeting", "hello").ok());
  EXPECT_TRUE(rank0->Barrier("bye", In(kLong)).ok());
  rank1.join();
}

TEST(TcpStore, RefusesMalformedFramesNamingThePeerAndServesOn) {
  // Ranks 0 and 1 of three; the raw connections come from outside.
  std::vector<std::unique_ptr<TcpStore>> ranks;
  ranks.push_back(Connect(0, 0, 3));
  ASSERT_NE(ranks[0], nullptr);
  const int port = ranks[0]->port();
  ranks.push_back(Connect(port, 1, 3));
  ASSERT_NE(ranks[1], nullptr);
  // "the store on port P refused 127.0.0.1:54321 (who) and closed that connection: why".
  auto refusal = [port](const std::string& who, const std::string& why) {
    return "the store on port " + std::to_string(port) + " refused 127\\.0\\.0\\.1:[0-9]+ \\(" +
           who + "\\) and closed that connection: " + why;
  };
  // An HTTP request.
  EXPECT_TRUE(Matches(LastError(SendRaw(port, "GET / HTTP/1.1\r\nHost: store\r\n\r\n")),
                      refusal("before its hello",
                              "a malformed frame: it does not start with the store's magic bytes "
                              "'PCS1' \\(it starts 47 45 54 20: is another program talking to "
                              "this port\\?\\)")));
  // A header announcing a 2 MiB value (refused before any of it is sent).
  EXPECT_TRUE(
      Matches(LastError(SendRaw(port, std::string("PCS1\x02", 5) + U32(3) + U32(2u << 20) + "key")),
              refusal("before its hello",
                      "a malformed frame: a value of 2097152 bytes \\(values are at most "
                      "1048576 bytes, 1 MiB\\)")));
  // A well-formed Set without a hello.
  EXPECT_TRUE(Matches(LastError(SendRaw(port, RawFrame(2, "k", "v"))),
                      refusal("before its hello", "a request before the hello")));
  // A hello (as rank 2), then an unknown operation: the hello's kOk, then the error.
  const std::string hello = RawFrame(1, "", U32(2) + U32(3));
  const std::string answer = SendRaw(port, hello + std::string("PCS1\x63", 5) + U32(0) + U32(0));
  EXPECT_EQ(answer.substr(0, 13), RawFrame(10, "", ""));
  EXPECT_TRUE(Matches(LastError(answer.substr(13)),
                      refusal("rank 2", "a malformed frame: unknown operation 99")));
  // The store serves on, and rank 2 (whose number the refused connection held) is free.
  ASSERT_TRUE(ranks[1]->Set("after", "fine").ok());
  EXPECT_EQ(*ranks[0]->Get("after", In(kLong)), "fine");
  std::unique_ptr<TcpStore> again = Connect(port, 2, 3);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(*again->Get("after", In(kLong)), "fine");
}

TEST(TcpStore, HelloMustFitTheWorld) {
  auto ranks = World(4);
  ASSERT_EQ(ranks.size(), 4u);
  const int port = ranks[0]->port();
  ranks[2].reset();  // rank 2's place is free again
  Result<std::unique_ptr<TcpStore>> wrong_world =
      TcpStore::Connect("127.0.0.1", port, 2, 8, In(kLong));
  EXPECT_EQ(wrong_world.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Matches(wrong_world.status().message(),
                      "rank 2, store 127\\.0\\.0\\.1:" + std::to_string(port) +
                          ": the store on port " + std::to_string(port) +
                          " refused 127\\.0\\.0\\.1:[0-9]+ \\(before its hello\\) and "
                          "closed that connection: rank 2 whose world has 8 ranks, where rank "
                          "0's has 4 \\(is the world size the same on every rank\\?\\)"))
      << wrong_world.status().message();
  Result<std::unique_ptr<TcpStore>> twice = TcpStore::Connect("127.0.0.1", port, 1, 4, In(kLong));
  EXPECT_EQ(twice.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Matches(twice.status().message(),
                      ".*closed that connection: a second rank 1 \\(the first is "
                      "127\\.0\\.0\\.1:[0-9]+\\): two processes have the same rank"))
      << twice.status().message();
  // Checked before connecting.
  EXPECT_EQ(TcpStore::Connect("127.0.0.1", port, 4, 4, In(kLong)).status().message(),
            "rank 4 is not in the world of 4 ranks (0 to 3)");
  EXPECT_EQ(TcpStore::Connect("127.0.0.1", 0, 1, 4, In(kLong)).status().message(),
            "rank 1 was given port 0 for the store: MASTER_PORT must be 1 to 65535 (only rank 0, "
            "serving the store, may ask for 0, any port)");
  // The store still serves the ranks it has.
  ASSERT_TRUE(ranks[3]->Set("k", "v").ok());
  EXPECT_EQ(*ranks[1]->Get("k", In(kLong)), "v");
}

TEST(TcpStore, ListeningOnAPortInUseNamesMasterPort) {
  auto ranks = World(1);
  ASSERT_NE(ranks[0], nullptr);
  const int port = ranks[0]->port();
  Result<std::unique_ptr<TcpStore>> second = TcpStore::Connect("127.0.0.1", port, 0, 1, In(kLong));
  EXPECT_EQ(second.status().code(), StatusCode::kIoError);
  EXPECT_EQ(second.status().message(),
            "cannot listen on port " + std::to_string(port) +
                ": Address already in use (another program, or the store of another job, "
                "listens there: choose another MASTER_PORT)");
}

TEST(TcpStore, ExchangeFromRank0GivesEveryRankRank0sValue) {
  auto ranks = World(4);
  ASSERT_EQ(ranks.size(), 4u);
  // Two exchanges in a row, of 128-byte ids (the size of an ncclUniqueId): the second never
  // returns the first's value, whatever the timing.
  std::string first(128, '\0');
  std::string second(128, '\0');
  for (int i = 0; i < 128; ++i) {
    first[i] = static_cast<char>(i);
    second[i] = static_cast<char>(255 - i);
  }
  OnEveryRank(4, [&](int rank) {
    for (const std::string& id : {first, second}) {
      Result<std::string> got =
          ExchangeFromRank0(*ranks[rank], rank, rank == 0 ? id : "not this", In(kLong));
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_TRUE(*got == id) << "rank " << rank;
    }
  });
  // Every rank has returned, so rank 0 may stop the store; the others see it closed.
  ranks[0].reset();
  EXPECT_EQ(ranks[1]->Get("nccl-id/1", In(kLong)).status().code(), StatusCode::kIoError);
}

TEST(TcpStore, StoppingTheStoreWakesItsWaiters) {
  auto ranks = World(2);
  ASSERT_EQ(ranks.size(), 2u);
  const Clock::time_point start = Clock::now();
  std::thread waiter([&] {
    Result<std::string> got = ranks[1]->Get("never", In(kLong));
    EXPECT_EQ(got.status().code(), StatusCode::kIoError);
    EXPECT_TRUE(Matches(got.status().message(),
                        ".*: the store closed the connection during Get\\('never'\\).*: rank 0 "
                        "ended or failed"))
        << got.status().message();
    // Nothing more is sent over a broken connection.
    EXPECT_TRUE(Matches(ranks[1]->Set("k", "v").message(),
                        ".*: an earlier error broke the connection to the store \\(Set\\('k'\\) "
                        "not sent\\)"));
  });
  std::this_thread::sleep_for(50ms);
  ranks[0].reset();
  waiter.join();
  EXPECT_LT(MillisSince(start), 1500.0);
}

TEST(ConnectStore, UsesTheLaunchEnvironmentsAddress) {
  LaunchEnv env;
  EXPECT_EQ(ConnectStore(env, In(kLong)).status().message(),
            "rank 0 has no store address: export MASTER_ADDR (rank 0's host name or address) and "
            "MASTER_PORT (a free port there, e.g. 29500)");
  env.master_addr = "127.0.0.1";
  env.master_port = FreePort();
  Result<std::unique_ptr<TcpStore>> store = ConnectStore(env, In(kLong));
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ((*store)->port(), env.master_port);
  EXPECT_TRUE((*store)->Barrier("alone", In(kLong)).ok());
  EXPECT_EQ(*ExchangeFromRank0(**store, 0, "id", In(kLong)), "id");
}

}  // namespace
}  // namespace pipecast::runtime
