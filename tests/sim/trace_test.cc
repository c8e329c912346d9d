// Tests of the Perfetto / Chrome JSON trace export (sim/trace.h) on a hand-timed two-device run.
#include "sim/trace.h"
#include "sim/timed_run.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/version_plan.h"

namespace pipecast::sim {
namespace {

using ir::ActionKind;
using ir::WeightSource;
using Json = nlohmann::json;

using testing_runs::TimedRun;

std::vector<Json> EventsWithPh(const Json& doc, const std::string& ph) {
  std::vector<Json> out;
  for (const Json& e : doc["traceEvents"])
    if (e["ph"] == ph) out.push_back(e);
  return out;
}

const Json* FindX(const Json& doc, const std::string& name) {
  for (const Json& e : doc["traceEvents"])
    if (e["ph"] == "X" && e["name"] == name) return &e;
  return nullptr;
}

TEST(PerfettoTraceTest, IsValidJsonWithTraceEventsAndNsDisplayUnit) {
  const Json doc = Json::parse(FormatPerfettoTrace(TimedRun()));
  ASSERT_TRUE(doc.is_object());
  ASSERT_TRUE(doc["traceEvents"].is_array());
  EXPECT_EQ(doc["displayTimeUnit"], "ns");
  for (const Json& e : doc["traceEvents"]) {
    EXPECT_TRUE(e.contains("ph"));
    EXPECT_TRUE(e["pid"].is_number_integer());
    if (e["ph"] != "M") {
      EXPECT_TRUE(e["ts"].is_number()) << e.dump();
    }
  }
}

TEST(PerfettoTraceTest, NamesProcessesAndThreads) {
  const Json doc = Json::parse(FormatPerfettoTrace(TimedRun()));
  std::map<int, std::string> processes;
  std::map<std::pair<int, int>, std::string> threads;
  for (const Json& e : EventsWithPh(doc, "M")) {
    if (e["name"] == "process_name") processes[e["pid"]] = e["args"]["name"];
    if (e["name"] == "thread_name") threads[{e["pid"], e["tid"]}] = e["args"]["name"];
  }
  EXPECT_EQ(processes, (std::map<int, std::string>{{0, "device 0"}, {1, "device 1"}}));
  EXPECT_EQ(threads.size(), 4u);
  EXPECT_EQ((threads[{0, 0}]), "compute");
  EXPECT_EQ((threads[{0, 1}]), "communication");
  EXPECT_EQ((threads[{1, 0}]), "compute");
  EXPECT_EQ((threads[{1, 1}]), "communication");
}

TEST(PerfettoTraceTest, OneCompleteEventPerComputeActionAndTransfer) {
  const Json doc = Json::parse(FormatPerfettoTrace(TimedRun()));
  int compute = 0, comm = 0;
  for (const Json& e : EventsWithPh(doc, "X")) {
    if (e["tid"] == 0) ++compute;
    if (e["tid"] == 1) ++comm;
  }
  EXPECT_EQ(compute, 10);  // F, F, B, B, S on each device
  EXPECT_EQ(comm, 4);

  // Times are microseconds with nanosecond precision.
  const Json* f = FindX(doc, "0F1");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ((*f)["cat"], "forward");
  EXPECT_EQ((*f)["pid"], 0);
  EXPECT_DOUBLE_EQ((*f)["ts"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ((*f)["dur"].get<double>(), 2.0);
  EXPECT_EQ((*f)["args"]["stage"], 0);
  EXPECT_EQ((*f)["args"]["microbatch"], 1);
  EXPECT_EQ((*f)["args"]["weights"], "cur");
  EXPECT_EQ((*f)["args"]["version"], 0);

  const Json* pred = FindX(doc, "1F1@pred:1");
  ASSERT_NE(pred, nullptr);
  EXPECT_EQ((*pred)["args"]["weights"], "pred:1");
  EXPECT_EQ((*pred)["args"]["version"], 0);
  EXPECT_EQ((*pred)["args"]["horizon"], 1);

  const Json* stash = FindX(doc, "0B1@stash");
  ASSERT_NE(stash, nullptr);
  EXPECT_EQ((*stash)["cat"], "backward");
  EXPECT_EQ((*stash)["args"]["weights"], "stash");
  EXPECT_EQ((*stash)["args"]["applied_by_step"], 1);

  const Json* step = FindX(doc, "S");
  ASSERT_NE(step, nullptr);
  EXPECT_EQ((*step)["cat"], "step");
  EXPECT_EQ((*step)["args"]["version_after"], 1);

  const Json* send = FindX(doc, "SA0 \u2192 dev 1");
  ASSERT_NE(send, nullptr);
  EXPECT_EQ((*send)["cat"], "send_activation");
  EXPECT_EQ((*send)["pid"], 0);
  EXPECT_EQ((*send)["tid"], 1);
  EXPECT_DOUBLE_EQ((*send)["ts"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ((*send)["dur"].get<double>(), 1.0);  // start to arrival
  EXPECT_EQ((*send)["args"]["bytes"], 4096);
  EXPECT_NE(FindX(doc, "SG1 \u2192 dev 0"), nullptr);
}

TEST(PerfettoTraceTest, FlowsJoinSendsToTheirConsumers) {
  const Json doc = Json::parse(FormatPerfettoTrace(TimedRun()));
  const auto starts = EventsWithPh(doc, "s");
  const auto finishes = EventsWithPh(doc, "f");
  ASSERT_EQ(starts.size(), 4u);
  ASSERT_EQ(finishes.size(), 4u);
  std::map<int64_t, Json> start_by_id, finish_by_id;
  for (const Json& e : starts) start_by_id[e["id"]] = e;
  for (const Json& e : finishes) {
    finish_by_id[e["id"]] = e;
    EXPECT_EQ(e["bp"], "e");
  }
  ASSERT_EQ(start_by_id.size(), 4u);
  for (const auto& [id, s] : start_by_id) {
    ASSERT_TRUE(finish_by_id.count(id)) << id;
    EXPECT_EQ(s["name"], finish_by_id[id]["name"]);
    EXPECT_EQ(s["cat"], finish_by_id[id]["cat"]);
  }
  // The first transfer (dev 0 -> dev 1) ends inside 1F0 (3-5 µs) on the receiver's compute thread.
  const Json& f = finish_by_id.at(1);
  EXPECT_EQ(f["pid"], 1);
  EXPECT_EQ(f["tid"], 0);
  EXPECT_DOUBLE_EQ(f["ts"].get<double>(), 4.0);
  // The gradient of microbatch 1 ends inside 0B1@stash (16-20 µs) on device 0.
  const Json& g = finish_by_id.at(4);
  EXPECT_EQ(g["pid"], 0);
  EXPECT_DOUBLE_EQ(g["ts"].get<double>(), 18.0);
  // Starts sit inside their transfer slice on the sender's communication thread.
  const Json& s = start_by_id.at(1);
  EXPECT_EQ(s["pid"], 0);
  EXPECT_EQ(s["tid"], 1);
  EXPECT_DOUBLE_EQ(s["ts"].get<double>(), 2.5);
}

TEST(PerfettoTraceTest, MemoryCounters) {
  const Json doc = Json::parse(FormatPerfettoTrace(TimedRun()));
  const auto counters = EventsWithPh(doc, "C");
  ASSERT_EQ(counters.size(), 8u);
  EXPECT_EQ(counters[2]["name"], "memory");
  EXPECT_EQ(counters[2]["pid"], 0);
  EXPECT_DOUBLE_EQ(counters[2]["ts"].get<double>(), 4.0);
  EXPECT_EQ(counters[2]["args"]["bytes"], 300);
  EXPECT_EQ(counters[5]["pid"], 1);
}

TEST(PerfettoTraceTest, OverlappingTransfersGetAnotherThread) {
  MethodRun run = TimedRun();
  run.result.transfers[0].arrival = 4500;  // still in flight when the second send starts
  const Json doc = Json::parse(FormatPerfettoTrace(run));
  const Json* first = FindX(doc, "SA0 \u2192 dev 1");
  const Json* second = FindX(doc, "SA1 \u2192 dev 1");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ((*first)["tid"], 1);
  EXPECT_EQ((*second)["tid"], 2);
  bool named = false;
  for (const Json& e : EventsWithPh(doc, "M"))
    if (e["name"] == "thread_name" && e["pid"] == 0 && e["tid"] == 2)
      named = e["args"]["name"] == "communication 2";
  EXPECT_TRUE(named);
}

TEST(PerfettoTraceTest, WithoutTimelineOnlyMetadata) {
  MethodRun run = TimedRun();
  run.result.timing.clear();
  run.result.transfers.clear();
  run.result.memory.clear();
  const Json doc = Json::parse(FormatPerfettoTrace(run));
  EXPECT_TRUE(EventsWithPh(doc, "X").empty());
  EXPECT_FALSE(EventsWithPh(doc, "M").empty());
}

}  // namespace
}  // namespace pipecast::sim
