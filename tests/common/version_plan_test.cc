// Version accounting: the hand-checked version tables at D = 4 (and PACI at D = 8) of
// docs/metrics.md, and the version rules of every asynchronous method (docs/methods.md).
#include "common/version_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "common/generators.h"

namespace pipecast::ir {
namespace {

Program Gen(const std::string& method, int32_t d, int32_t m, int32_t n,
            std::map<std::string, std::string> params = {}) {
  auto p = Generate({method, d, m, n, 1, std::move(params)});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? *p : Program{};
}

// Per stage, the maximum over microbatches of f(record).
template <typename Fn>
std::vector<int32_t> PerStageMax(const Program& p, const VersionPlan& t, Fn f) {
  std::vector<int32_t> out(p.num_stages, INT32_MIN);
  for (int32_t s = 0; s < p.num_stages; ++s)
    for (int32_t j = 0; j < p.total_microbatches(); ++j) out[s] = std::max(out[s], f(t.At(s, j)));
  return out;
}

using V = std::vector<int32_t>;

TEST(PipeDream, StashedVersionsAndStaleness) {
  const Program p = Gen("pipedream", 4, 4, 6);
  const VersionPlan t = BuildVersionPlan(p);
  EXPECT_EQ(t.live_versions_max, (V{4, 3, 2, 1}));
  EXPECT_EQ(PerStageMax(p, t, [](const VersionRecord& r) { return r.gradient_delay(); }),
            (V{3, 2, 1, 0}));
  EXPECT_EQ(PerStageMax(p, t, [](const VersionRecord& r) { return r.version_gap(); }),
            (V{3, 2, 1, 0}));
  // B uses exactly the F's weights.
  for (int32_t s = 0; s < 4; ++s)
    for (int32_t j = 0; j < 24; ++j) EXPECT_EQ(t.At(s, j).b_version, t.At(s, j).f_version);
  // Input 9 (0-based 8): F after 5, 6, 7, 8 updates on stages 0..3, B after 8 everywhere.
  for (int32_t s = 0; s < 4; ++s) {
    EXPECT_EQ(t.At(s, 8).f_counter, 5 + s);
    EXPECT_EQ(t.At(s, 8).b_counter, 8);
  }
}

TEST(PipeDream, VerticalSyncUsesStageZeroVersion) {
  const Program p = Gen("pipedream", 4, 4, 6, {{"vertical_sync", "true"}});
  const VersionPlan t = BuildVersionPlan(p);
  for (int32_t j = 0; j < 24; ++j)
    for (int32_t s = 1; s < 4; ++s) EXPECT_EQ(t.At(s, j).f_version, t.At(0, j).f_version);
  for (int32_t d = 0; d < 4; ++d) EXPECT_LE(t.live_versions_max[d], p.max_live_versions[d]);
}

TEST(PipeDream2BW, TwoVersionsAndDelayOne) {
  const Program p = Gen("pipedream-2bw", 4, 4, 8);
  const VersionPlan t = BuildVersionPlan(p);
  EXPECT_EQ(t.live_versions_max, (V{2, 2, 2, 2}));
  for (int32_t s = 0; s < 4; ++s) {
    for (int32_t j = 0; j < 32; ++j) {
      const VersionRecord& r = t.At(s, j);
      const int32_t batch = j / 4;
      EXPECT_EQ(r.f_version, std::max(0, batch - 1)) << "stage " << s << " mb " << j;
      EXPECT_EQ(r.b_version, r.f_version);
      EXPECT_EQ(r.applied_step, batch + 1);
      // W(t+1) = W(t) - lr grad(W(t-1)): one step stale once the pipeline is full.
      EXPECT_EQ(r.gradient_delay(), batch == 0 ? 0 : 1);
    }
  }
}

// WPipe at D = 4, M = 4, two minibatches, worked out by hand from the window rule
// (docs/methods.md): device k holds stage k (first group) and stage 4 + k (second group); window
// p holds both groups' forwards of minibatch p, the second group's backwards of minibatch p and
// the first group's of minibatch p - 1, and ends with Step p + 1. So on every device:
//   minibatch 0, second group: F after 0 Steps (version 0), B after 0 (version 0), Step 1;
//   minibatch 0, first group:  F after 0 (version 0), B in window 1 after 1 Step reading the
//                              older buffer (version 0), applied by Step 2;
//   minibatch 1, second group: F after 1 (version 1), B after 1 (version 1), Step 2;
//   minibatch 1, first group:  F after 1 (version 1), B after 2 (older: version 1), Step 3.
// Device version n holds the second group after n updates and the first after max(0, n - 1)
// (Step 1 has no gradient of the first group), so the first group is one update stale and the
// second is not. Two copies at most: the current weights and the older buffer.
TEST(WPipe, HandWorkedVersionTable) {
  const Program p = Gen("wpipe", 4, 4, 2);
  ASSERT_EQ(p.num_stages, 8);
  const VersionPlan t = BuildVersionPlan(p);
  struct Row {
    int32_t f_counter, f_version, b_counter, b_version, applied;
  };
  const Row first_group[2] = {{0, 0, 1, 0, 2}, {1, 1, 2, 1, 3}};
  const Row second_group[2] = {{0, 0, 0, 0, 1}, {1, 1, 1, 1, 2}};
  for (int32_t s = 0; s < 8; ++s) {
    EXPECT_EQ(p.device_of(s), s % 4);
    for (int32_t j = 0; j < 8; ++j) {
      const Row& want = (s < 4 ? first_group : second_group)[j / 4];
      const VersionRecord& r = t.At(s, j);
      EXPECT_EQ(r.f_counter, want.f_counter) << "stage " << s << " mb " << j;
      EXPECT_EQ(r.f_version, want.f_version) << "stage " << s << " mb " << j;
      EXPECT_EQ(r.b_counter, want.b_counter) << "stage " << s << " mb " << j;
      EXPECT_EQ(r.b_version, want.b_version) << "stage " << s << " mb " << j;
      EXPECT_EQ(r.applied_step, want.applied) << "stage " << s << " mb " << j;
      EXPECT_EQ(r.version_gap(), s < 4 ? 1 : 0);
      EXPECT_EQ(r.gradient_delay(), s < 4 ? 1 : 0);
      EXPECT_EQ(t.loss_divisor[j], 4);
    }
  }
  EXPECT_EQ(t.steps, (V{3, 3, 3, 3}));
  EXPECT_EQ(t.live_versions_max, (V{2, 2, 2, 2}));
  EXPECT_EQ(p.max_live_versions, (V{2, 2, 2, 2}));
  for (const std::vector<Action>& device : p.devices)
    for (const Action& a : device)
      if (UsesWeights(a.kind))
        EXPECT_EQ(a.weights.source, a.kind == ActionKind::kBackward && a.stage < 4
                                        ? WeightSource::kBufferOlder
                                        : WeightSource::kCurrent)
            << ActionToken(a, true);
}

TEST(PipeOptim, HorizonsAndFigureOne) {
  const Program paper = Gen("pipeoptim", 4, 4, 4);
  const VersionPlan t = BuildVersionPlan(paper);
  EXPECT_EQ(PerStageMax(paper, t, [](const VersionRecord& r) { return r.f_horizon; }),
            (V{3, 2, 1, 0}));
  // Fig. 1: minibatch 5 (0-based 4) runs F at W_2..W_5 (versions 1..4), predicts version 4
  // everywhere, and runs B at version 4.
  for (int32_t s = 0; s < 4; ++s) {
    EXPECT_EQ(t.At(s, 4).f_version, 1 + s);
    EXPECT_EQ(t.At(s, 4).f_effective(), 4);
    EXPECT_EQ(t.At(s, 4).b_version, 4);
    EXPECT_EQ(t.At(s, 4).gradient_delay(), 0);
  }
  EXPECT_EQ(t.live_versions_max, (V{2, 2, 2, 1}));
  const Program code = Gen("pipeoptim", 4, 4, 4, {{"horizon", "code"}});
  const VersionPlan tc = BuildVersionPlan(code);
  EXPECT_EQ(PerStageMax(code, tc, [](const VersionRecord& r) { return r.f_horizon; }),
            (V{4, 3, 2, 1}));
}

TEST(SpecTrain, PaperHorizons) {
  const Program v1 = Gen("spectrain", 4, 4, 4);
  const VersionPlan t = BuildVersionPlan(v1);
  EXPECT_EQ(PerStageMax(v1, t, [](const VersionRecord& r) { return r.f_horizon; }),
            (V{3, 2, 2, 1}));
  EXPECT_EQ(PerStageMax(v1, t, [](const VersionRecord& r) { return r.b_horizon; }),
            (V{0, 0, 1, 1}));
  const Program v2 = Gen("spectrain", 4, 4, 4, {{"variant", "v2"}});
  const VersionPlan t2 = BuildVersionPlan(v2);
  for (int32_t s = 0; s < 4; ++s) {
    for (int32_t j = 0; j < 16; ++j) {
      EXPECT_EQ(t2.At(s, j).f_horizon, 3 - s);
      EXPECT_EQ(t2.At(s, j).b_version, t2.At(s, j).f_version);  // B reuses F's prediction
      EXPECT_EQ(t2.At(s, j).b_horizon, t2.At(s, j).f_horizon);
    }
  }
  for (int32_t d = 0; d < 4; ++d) EXPECT_LE(t2.live_versions_max[d], v2.max_live_versions[d]);
}

// The default: the version the device has when the minibatch's T-th microbatch finishes its round
// trip on stage 0. Hand-worked at D = 4, T = 2 (async 1F1B, a step after every second backward):
// that round trip of minibatch b ends after b updates on stage 0 and b + 1 on stages 1-3 (their
// own update of b comes right after their backward), so the bellwether of b = 2 (microbatch 4,
// forwards after 0, 1, 1, 2 updates) predicts s = 2, 2, 2, 1, the seed's closed form, and its
// backward (after 2 updates everywhere) s = 0, 1, 1, 1.
TEST(XPipe, RoundTripHorizonIsTheSeedsDefinition) {
  const Program p = Gen("xpipe", 4, 2, 6);
  const VersionPlan t = BuildVersionPlan(p);
  EXPECT_EQ(
      (V{t.At(0, 4).f_horizon, t.At(1, 4).f_horizon, t.At(2, 4).f_horizon, t.At(3, 4).f_horizon}),
      (V{2, 2, 2, 1}));
  EXPECT_EQ(
      (V{t.At(0, 4).b_horizon, t.At(1, 4).b_horizon, t.At(2, 4).b_horizon, t.At(3, 4).b_horizon}),
      (V{0, 1, 1, 1}));
  EXPECT_EQ(PerStageMax(p, t, [](const VersionRecord& r) { return r.f_horizon; }), (V{2, 2, 2, 1}));
  // Every microbatch of a minibatch targets its bellwether's version: b on stage 0, b + 1 after.
  for (int32_t s = 0; s < 4; ++s) {
    for (int32_t j = 0; j < 12; ++j) {
      EXPECT_EQ(t.At(s, j).f_effective(), j / 2 + (s > 0 ? 1 : 0)) << "stage " << s << " mb " << j;
    }
  }
  auto old = Generate({"xpipe", 4, 2, 6, 1, {{"horizon", "schedule"}}});
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("the former default 'schedule' is now 'sequential'"),
            std::string::npos)
      << old.status().message();
}

TEST(XPipe, FormulaHorizonsAndRounding) {
  const Program even = Gen("xpipe", 4, 2, 6, {{"horizon", "formula"}});
  const VersionPlan te = BuildVersionPlan(even);
  EXPECT_EQ(PerStageMax(even, te, [](const VersionRecord& r) { return r.f_horizon; }),
            (V{2, 2, 2, 1}));
  EXPECT_EQ(PerStageMax(even, te, [](const VersionRecord& r) { return r.b_horizon; }),
            (V{0, 0, 1, 1}));
  const Program up = Gen("xpipe", 4, 2, 6, {{"horizon", "formula"}, {"rounding", "half_up"}});
  const VersionPlan tu = BuildVersionPlan(up);
  EXPECT_EQ(PerStageMax(up, tu, [](const VersionRecord& r) { return r.b_horizon; }),
            (V{1, 1, 1, 1}));
}

// The paper's T = 2, D = 4 figure: every GPU predicts the version a sequential run uses for
// minibatch {5, 6} (W_3, our version 2); microbatch 5's forward needs s = 2, 1, 1, 0. This is the
// horizon=sequential option (the default before round_trip).
TEST(XPipe, ScheduleHorizonReproducesFigure) {
  const Program p = Gen("xpipe", 4, 2, 6, {{"horizon", "sequential"}});
  const VersionPlan t = BuildVersionPlan(p);
  EXPECT_EQ(
      (V{t.At(0, 4).f_horizon, t.At(1, 4).f_horizon, t.At(2, 4).f_horizon, t.At(3, 4).f_horizon}),
      (V{2, 1, 1, 0}));
  for (int32_t s = 0; s < 4; ++s) {
    for (int32_t j = 0; j < 12; ++j) {
      EXPECT_EQ(t.At(s, j).f_effective(), j / 2) << "bellwether target, stage " << s;
      EXPECT_EQ(t.At(s, j).b_version + t.At(s, j).b_horizon, j / 2);
    }
  }
}

TEST(PipeMare, CorrectionGapEqualsDelay) {
  const Program p = Gen("pipemare", 4, 4, 4);
  const VersionPlan t = BuildVersionPlan(p);
  for (int32_t s = 0; s < 4; ++s)
    for (int32_t j = 0; j < 16; ++j)
      EXPECT_EQ(t.At(s, j).b_horizon, t.At(s, j).version_gap()) << s << " " << j;
  EXPECT_EQ(PerStageMax(p, t, [](const VersionRecord& r) { return r.version_gap(); }),
            (V{3, 2, 1, 0}));
}

// Section 13.2, PACI at D = 8: maximum forward/backward gap per stage, and the steady-state
// share of microbatches that cross an update.
TEST(Paci, GapBoundsAndCrossingShares) {
  struct Case {
    int32_t a;
    V max_gap;
    std::vector<double> share;
  };
  const std::vector<Case> cases = {
      {8, {1, 1, 1, 1, 1, 1, 1, 0}, {7 / 8., 6 / 8., 5 / 8., 4 / 8., 3 / 8., 2 / 8., 1 / 8., 0}},
      {4, {2, 2, 2, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 0.75, 0.5, 0.25, 0}},
      {16,
       {1, 1, 1, 1, 1, 1, 1, 0},
       {7 / 16., 6 / 16., 5 / 16., 4 / 16., 3 / 16., 2 / 16., 1 / 16., 0}},
  };
  for (const Case& c : cases) {
    const int32_t windows = 20;
    const Program p = Gen("paci", 8, c.a, windows, {{"accumulation", std::to_string(c.a)}});
    const VersionPlan t = BuildVersionPlan(p);
    EXPECT_EQ(PerStageMax(p, t, [](const VersionRecord& r) { return r.version_gap(); }), c.max_gap)
        << "a=" << c.a;
    for (int32_t k = 0; k < 8; ++k) {
      // Bound: ceil((D - k - 1) / a).
      EXPECT_LE(c.max_gap[k], (8 - k - 1 + c.a - 1) / c.a);
      // Steady state: whole accumulation windows away from the start and the end.
      int32_t crossing = 0, count = 0;
      for (int32_t j = 4 * c.a; j < (windows - 4) * c.a; ++j, ++count)
        crossing += t.At(k, j).version_gap() > 0;
      EXPECT_DOUBLE_EQ(static_cast<double>(crossing) / count, c.share[k])
          << "a=" << c.a << " stage " << k;
    }
    EXPECT_EQ(t.live_versions_max, V(8, 1));
  }
}

TEST(Synchronous, OneVersionNoDelay) {
  for (const char* method : {"gpipe", "1f1b", "zb-h1", "zb-h2"}) {
    const Program p = Gen(method, 4, 8, 3);
    const VersionPlan t = BuildVersionPlan(p);
    EXPECT_EQ(t.live_versions_max, V(4, 1)) << method;
    for (const VersionRecord& r : t.records) {
      EXPECT_EQ(r.version_gap(), 0) << method;
      EXPECT_EQ(r.gradient_delay(), 0) << method;
    }
  }
}

// Hand-built: explicit versions are retained until their last use, and a stash of a version
// that is no longer current costs a copy.
TEST(Versions, ExplicitVersionRetainedUntilLastUse) {
  Program p;
  p.num_devices = 1;
  p.num_stages = 1;
  p.placement = {0};
  p.microbatches = 3;
  p.devices = {{{ActionKind::kForward, 0, 0, {}},
                {ActionKind::kBackward, 0, 0, {}},
                {ActionKind::kStep, -1, -1, {}},
                {ActionKind::kForward, 0, 1, {WeightSource::kVersion, 0}},
                {ActionKind::kBackward, 0, 1, {WeightSource::kStashed, 0}},
                {ActionKind::kStep, -1, -1, {}},
                {ActionKind::kForward, 0, 2, {}},
                {ActionKind::kBackward, 0, 2, {}},
                {ActionKind::kStep, -1, -1, {}}}};
  const VersionPlan t = BuildVersionPlan(p, PlanDetail::kLivePerAction);
  EXPECT_EQ(t.At(0, 1).f_version, 0);
  EXPECT_EQ(t.At(0, 1).b_version, 0);
  EXPECT_EQ(t.At(0, 1).gradient_delay(), 1);
  EXPECT_EQ(t.live_during[0], (V{1, 1, 2, 2, 2, 1, 1, 1, 1}));
  EXPECT_EQ(t.live_versions_max[0], 2);
}

}  // namespace
}  // namespace pipecast::ir
