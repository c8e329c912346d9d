// The executor's buffer plan (PlanDetail::kExecution): hand-counted buffer sizes per method, a
// hand-written op sequence, and a property test that replays every generated program on a
// symbolic device (tags instead of weights) written here from the rules in version_plan.h: every
// action must find in its buffer exactly the version the plan's records say, no slot is used
// while free or taken while in use, and the sizes bound every slot index.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/generators.h"
#include "common/lower.h"
#include "common/version_plan.h"

namespace pipecast::ir {
namespace {

Program Lowered(const std::string& method, int32_t d, int32_t m, int32_t n,
                std::map<std::string, std::string> params = {}) {
  auto p = Generate({method, d, m, n, 1, std::move(params)});
  EXPECT_TRUE(p.ok()) << method << ": " << p.status().message();
  return p.ok() ? InsertCommunication(*p) : Program{};
}

std::vector<int32_t> Copies(const VersionPlan& plan) {
  std::vector<int32_t> v;
  for (const StageBuffers& b : plan.buffers) v.push_back(b.weight_copies);
  return v;
}
std::vector<int32_t> Records(const VersionPlan& plan) {
  std::vector<int32_t> v;
  for (const StageBuffers& b : plan.buffers) v.push_back(b.records);
  return v;
}

using V = std::vector<int32_t>;

// A stage's buffers as tags: what version (and horizon) each holds.
struct Tag {
  int32_t version = -1;
  int32_t horizon = 0;
  bool used = false;
};

// Replays the plan of device `d` and checks it; returns the number of actions checked.
int64_t Replay(const Program& p, const VersionPlan& plan, int32_t d) {
  const std::vector<Action>& prog = p.devices[d];
  const DevicePlan& dp = plan.devices[d];
  EXPECT_EQ(dp.actions.size(), prog.size());
  std::map<int32_t, int32_t> current;               // stage -> current version
  std::map<int32_t, std::vector<Tag>> copies;       // stage -> slots
  std::map<int32_t, std::vector<int32_t>> records;  // stage -> slot -> microbatch or -1
  for (int32_t s = 0; s < p.num_stages; ++s) {
    if (p.device_of(s) != d) continue;
    current[s] = 0;
    copies[s].assign(plan.buffers[s].weight_copies, Tag{});
    records[s].assign(plan.buffers[s].records, -1);
  }
  auto apply = [&](const WeightOp& op) {
    std::vector<Tag>& slots = copies.at(op.stage);
    EXPECT_GE(op.slot, 0);
    EXPECT_LT(op.slot, static_cast<int32_t>(slots.size()));
    if (op.slot < 0 || op.slot >= static_cast<int32_t>(slots.size())) return;
    Tag& t = slots[op.slot];
    if (op.kind == WeightOpKind::kRelease) {
      EXPECT_TRUE(t.used) << "release of a free slot";
      t = Tag{};
      return;
    }
    EXPECT_FALSE(t.used) << "slot " << op.slot << " of stage " << op.stage << " taken twice";
    t = {current.at(op.stage), op.kind == WeightOpKind::kSaveCurrent ? 0 : op.value, true};
  };
  auto open = [&](int32_t stage, int32_t slot, bool opens, int32_t mb) {
    std::vector<int32_t>& r = records.at(stage);
    ASSERT_GE(slot, 0);
    ASSERT_LT(slot, static_cast<int32_t>(r.size()));
    if (opens) {
      EXPECT_EQ(r[slot], -1) << "record slot " << slot << " of stage " << stage << " in use";
      r[slot] = mb;
    } else {
      EXPECT_EQ(r[slot], mb) << "record slot " << slot << " of stage " << stage;
    }
  };
  int64_t checked = 0;
  for (size_t i = 0; i < prog.size(); ++i) {
    const Action& a = prog[i];
    const PlannedAction& pa = dp.actions[i];
    for (uint32_t k = pa.before_begin; k < pa.before_end; ++k) apply(dp.ops[k]);
    if (a.kind == ActionKind::kStep) {
      for (auto& [s, v] : current) ++v;
      continue;
    }
    open(a.stage, pa.record, pa.opens_record, a.microbatch);
    if (pa.handoff_record >= 0) {
      const int32_t next = a.kind == ActionKind::kForward ? a.stage + 1 : a.stage - 1;
      open(next, pa.handoff_record, pa.opens_handoff, a.microbatch);
    }
    if (UsesWeights(a.kind)) {
      const Tag served = pa.weights.slot == kCurrentWeights
                             ? Tag{current.at(a.stage), 0, true}
                             : copies.at(a.stage).at(pa.weights.slot);
      EXPECT_TRUE(served.used) << "device " << d << " action " << i << " reads a free slot";
      const VersionRecord& r = plan.At(a.stage, a.microbatch);
      const bool fwd = a.kind == ActionKind::kForward;
      EXPECT_EQ(served.version, fwd ? r.f_version : r.b_version)
          << p.method << " device " << d << " action " << i << " " << ActionToken(a, true);
      EXPECT_EQ(served.horizon, fwd ? r.f_horizon : r.b_horizon)
          << p.method << " device " << d << " action " << i << " " << ActionToken(a, true);
      EXPECT_EQ(pa.weights.version, served.version);
      EXPECT_EQ(pa.weights.horizon, served.horizon);
      ++checked;
    }
    for (uint32_t k = pa.after_begin; k < pa.after_end; ++k) apply(dp.ops[k]);
    if (pa.closes_record) records.at(a.stage)[pa.record] = -1;
  }
  // Everything is released at the end.
  for (const auto& [s, slots] : copies)
    for (const Tag& t : slots) EXPECT_FALSE(t.used) << "stage " << s << " leaks a copy";
  for (const auto& [s, r] : records)
    for (int32_t mb : r) EXPECT_EQ(mb, -1) << "stage " << s << " leaks a record";
  return checked;
}

int64_t ReplayAll(const Program& p) {
  const VersionPlan plan = BuildVersionPlan(p, PlanDetail::kExecution);
  int64_t checked = 0;
  for (int32_t d = 0; d < p.num_devices; ++d) checked += Replay(p, plan, d);
  return checked;
}

TEST(ExecutionPlan, BufferSizesPerMethod) {
  // PipeDream: stage k holds D - k versions (current + D-k-1 saved copies), D - k in flight.
  const VersionPlan pd = BuildVersionPlan(Lowered("pipedream", 4, 4, 4), PlanDetail::kExecution);
  EXPECT_EQ(Copies(pd), (V{3, 2, 1, 0}));
  EXPECT_EQ(Records(pd), (V{4, 3, 2, 1}));
  // 2BW: one older buffer on every stage.
  EXPECT_EQ(Copies(BuildVersionPlan(Lowered("pipedream-2bw", 4, 4, 4), PlanDetail::kExecution)),
            (V{1, 1, 1, 1}));
  // PipeOptim: one scratch prediction, none on the last stage (s = 0 there).
  EXPECT_EQ(Copies(BuildVersionPlan(Lowered("pipeoptim", 4, 4, 4), PlanDetail::kExecution)),
            (V{1, 1, 1, 0}));
  // SpecTrain v2: every in-flight microbatch keeps its predicted copy until its backward; the
  // last stage predicts nothing (s = D - k - 1 = 0).
  EXPECT_EQ(Copies(BuildVersionPlan(Lowered("spectrain", 4, 4, 4, {{"variant", "v2"}}),
                                    PlanDetail::kExecution)),
            (V{4, 3, 2, 0}));
  // PipeMare: one corrected copy and a velocity, except on the last stage (gap 0).
  const VersionPlan pm = BuildVersionPlan(Lowered("pipemare", 4, 4, 4), PlanDetail::kExecution);
  EXPECT_EQ(Copies(pm), (V{1, 1, 1, 0}));
  EXPECT_TRUE(pm.buffers[0].velocity);
  EXPECT_FALSE(pm.buffers[3].velocity);
  // Flush schedules: no copies; GPipe keeps all M activations, 1F1B min(M, D - k).
  EXPECT_EQ(Records(BuildVersionPlan(Lowered("gpipe", 4, 8, 2), PlanDetail::kExecution)),
            (V{8, 8, 8, 8}));
  const VersionPlan f = BuildVersionPlan(Lowered("1f1b", 4, 8, 2), PlanDetail::kExecution);
  EXPECT_EQ(Copies(f), (V{0, 0, 0, 0}));
  EXPECT_EQ(Records(f), (V{4, 3, 2, 1}));
}

// PipeDream at D = 2, stage 0: F0 F1 (warm-up), then F2 B0 S, ...; B of microbatch j uses the
// version its F used, so a Step that replaces a stashed version saves it first.
TEST(ExecutionPlan, PipeDreamOpsByHand) {
  const Program p = Lowered("pipedream", 2, 3, 1);
  const VersionPlan plan = BuildVersionPlan(p, PlanDetail::kExecution);
  // Device 0: F0 SA0 F1 SA1 RG0 B0 S F2 SA2 RG1 B1 S RG2 B2 S.
  std::string tokens;
  for (const Action& a : p.devices[0]) tokens += ActionToken(a, false) + " ";
  EXPECT_EQ(tokens, "F0 SA0 F1 SA1 RG0 B0@stash S F2 SA2 RG1 B1@stash S RG2 B2@stash S ");
  const DevicePlan& dp = plan.devices[0];
  auto ops = [&](size_t i, bool before) {
    std::vector<WeightOp> out;
    const PlannedAction& pa = dp.actions[i];
    for (uint32_t k = before ? pa.before_begin : pa.after_begin;
         k < (before ? pa.before_end : pa.after_end); ++k)
      out.push_back(dp.ops[k]);
    return out;
  };
  // The first S replaces version 0, which F1's backward still needs: saved into slot 0.
  EXPECT_EQ(ops(6, true), (std::vector<WeightOp>{{WeightOpKind::kSaveCurrent, 0, 0, 0}}));
  // B1 uses slot 0 and releases it.
  EXPECT_EQ(dp.actions[10].weights, (WeightKey{0, 0, WeightOrigin::kStash, 0}));
  EXPECT_EQ(ops(10, false), (std::vector<WeightOp>{{WeightOpKind::kRelease, 0, 0, 0}}));
  // F2 ran at version 1 and the second S replaces it: saved (into the free slot 0 again).
  EXPECT_EQ(ops(11, true), (std::vector<WeightOp>{{WeightOpKind::kSaveCurrent, 0, 0, 0}}));
  EXPECT_EQ(plan.buffers[0].weight_copies, 1);
  // Records: F0 opens slot 0, F1 slot 1; B0 closes slot 0 (no SG from stage 0), F2 reuses it.
  EXPECT_TRUE(dp.actions[0].opens_record);
  EXPECT_EQ(dp.actions[2].record, 1);
  EXPECT_TRUE(dp.actions[5].closes_record);
  EXPECT_EQ(dp.actions[7].record, 0);
  EXPECT_EQ(Replay(p, plan, 0), 6);
}

// Interleaved: a device hands its chunk's output into the record of its next chunk.
TEST(ExecutionPlan, InterleavedHandsOverOnTheDevice) {
  const Program p = Lowered("interleaved", 1, 2, 1, {{"chunks", "2"}});
  const VersionPlan plan = BuildVersionPlan(p, PlanDetail::kExecution);
  // One device, stages 0 and 1: F(0,j) opens record (1, j) for its output.
  const DevicePlan& dp = plan.devices[0];
  bool found = false;
  for (size_t i = 0; i < p.devices[0].size(); ++i) {
    const Action& a = p.devices[0][i];
    if (a.kind == ActionKind::kForward && a.stage == 0) {
      EXPECT_GE(dp.actions[i].handoff_record, 0);
      EXPECT_TRUE(dp.actions[i].opens_handoff);
      found = true;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_GT(ReplayAll(p), 0);
}

// Every method, random sizes and parameters: the symbolic replay agrees with the records.
TEST(ExecutionPlan, SymbolicReplayServesThePlannedVersions) {
  std::mt19937 rng(17);
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> cases = {
      {"gpipe", {}},
      {"1f1b", {}},
      {"interleaved", {{"chunks", "2"}}},
      {"zb-h1", {}},
      {"zb-h2", {}},
      {"pipedream", {}},
      {"pipedream", {{"vertical_sync", "true"}}},
      {"pipedream-2bw", {}},
      {"spectrain", {}},
      {"spectrain", {{"variant", "v2"}}},
      {"xpipe", {}},
      {"xpipe", {{"horizon", "formula"}}},
      {"pipemare", {}},
      {"pipeoptim", {}},
      {"pipeoptim", {{"horizon", "code"}}},
      {"paci", {{"accumulation", "2"}}},
      {"paci", {{"allowed_lagging", "1"}}},
  };
  for (const auto& [method, params] : cases) {
    for (int trial = 0; trial < 6; ++trial) {
      const int32_t d = 1 + static_cast<int32_t>(rng() % 5);
      int32_t m = d + static_cast<int32_t>(rng() % 4);
      if (method == "interleaved") m = d * (1 + static_cast<int32_t>(rng() % 2));
      const int32_t n = 1 + static_cast<int32_t>(rng() % 3);
      const Program p = Lowered(method, d, m, n, params);
      SCOPED_TRACE(method + " D=" + std::to_string(d) + " M=" + std::to_string(m) +
                   " N=" + std::to_string(n));
      EXPECT_EQ(ReplayAll(p), static_cast<int64_t>(p.num_stages) * p.total_microbatches() * 2);
    }
  }
}

}  // namespace
}  // namespace pipecast::ir
