// Generators: exact orders from the reference, structure of every method, and errors.
#include "common/generators.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/lower.h"
#include "common/validate.h"
#include "common/version_plan.h"

namespace pipecast::ir {
namespace {

std::string Order(const Program& p, int32_t device) {
  std::string s;
  for (const Action& a : p.devices[device]) {
    if (!s.empty()) s += ' ';
    Action shown = a;
    if (shown.microbatch >= 0) shown.microbatch += 1;  // the reference counts from 1
    s += ActionToken(shown, p.stages_on_device(device) > 1);
  }
  return s;
}

Program Gen(const std::string& method, int32_t d, int32_t m, int32_t n = 1,
            std::map<std::string, std::string> params = {}) {
  auto p = Generate({method, d, m, n, 1, std::move(params)});
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? *p : Program{};
}

// Section 9.2: ZB-H1 device 1 and device 4, p = 4, m = 8 (B there is our I).
TEST(Orders, ZbH1MatchesPaperFigure) {
  const Program p = Gen("zb-h1", 4, 8);
  EXPECT_EQ(Order(p, 0),
            "F1 F2 F3 F4 I1 W1 F5 I2 W2 F6 I3 W3 F7 I4 W4 F8 I5 W5 I6 W6 I7 W7 I8 W8 S");
  EXPECT_EQ(Order(p, 3),
            "F1 I1 F2 I2 F3 I3 F4 I4 W1 F5 I5 W2 F6 I6 W3 F7 I7 W4 F8 I8 W5 W6 W7 W8 S");
}

TEST(Orders, ZbH2MatchesPaperFigure) {
  const Program p = Gen("zb-h2", 4, 8);
  EXPECT_EQ(Order(p, 0),
            "F1 F2 F3 F4 F5 F6 F7 I1 W1 F8 I2 W2 I3 W3 I4 W4 I5 W5 I6 W6 I7 W7 I8 W8 S");
  EXPECT_EQ(Order(p, 1).substr(0, 53), "F1 F2 F3 F4 F5 I1 F6 I2 F7 I3 W1 F8 I4 W2 I5 W3 I6 W4");
}

TEST(Orders, OneFOneBWarmupAndGpipe) {
  const Program p = Gen("1f1b", 4, 6);
  EXPECT_EQ(Order(p, 0), "F1 F2 F3 F4 B1 F5 B2 F6 B3 B4 B5 B6 S");
  EXPECT_EQ(Order(p, 3), "F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 F6 B6 S");
  EXPECT_EQ(Order(Gen("gpipe", 2, 3), 1), "F1 F2 F3 B1 B2 B3 S");
}

// With T_F = T_B = T_W (the default planning costs) and 1F1B's memory, the greedy ZB-1p finds
// ZB-H1's order once M > D: the paper's Table 5 gives ZB-1p and ZB-H1 the same bubble rate at
// every m it reports (m = 3p, 4p, 8p). At M = D the greedy's order differs (its bubble is the
// same, tests/sim/closed_form_test.cc).
TEST(Orders, ZbOnePIsZbH1AtUniformCosts) {
  for (int32_t d = 1; d <= 6; ++d) {
    for (int32_t m = d + 1; m <= 3 * d + 2; ++m) {
      const Program one_p = Gen("zb-1p", d, m, 2);
      const Program h1 = Gen("zb-h1", d, m, 2);
      EXPECT_EQ(one_p.devices, h1.devices) << "D=" << d << " M=" << m;
      EXPECT_EQ(one_p.placement, h1.placement);
    }
  }
}

// No stage of zb-1p / zb-2p holds more microbatches between F and W than memory_limit (auto: D
// and 2D), counted along each device's order.
TEST(Orders, ZbGreedyKeepsItsMemoryLimit) {
  auto peak = [](const Program& p, int32_t dev) {
    int32_t held = 0, most = 0;
    for (const Action& a : p.devices[dev]) {
      held += a.kind == ActionKind::kForward ? 1 : a.kind == ActionKind::kWeightGrad ? -1 : 0;
      most = std::max(most, held);
    }
    return most;
  };
  for (int32_t d : {2, 4, 7}) {
    const int32_t m = 3 * d;
    for (int32_t dev = 0; dev < d; ++dev) {
      EXPECT_LE(peak(Gen("zb-1p", d, m), dev), d);
      EXPECT_LE(peak(Gen("zb-2p", d, m), dev), 2 * d);
      EXPECT_LE(peak(Gen("zb-2p", d, m, 1, {{"memory_limit", "3"}}), dev), 3);
    }
    EXPECT_EQ(peak(Gen("zb-2p", d, m), 0), 2 * d);  // ZB-2p uses its room on stage 0
  }
}

// ZB-V as the paper describes its schedule: 2D virtual stages in a V, device k holding stage k
// and 2D - 1 - k; before its first backward, worker i (1-based) runs 2p - i forwards of its first
// chunk and i - 1 of its second, plus the F that opens its first F-B-W group; then p - i groups
// of the second chunk, and groups alternating from the second chunk to the first.
TEST(Orders, ZbVPlacementWarmUpAndGroups) {
  for (int32_t d : {2, 4, 6}) {
    const int32_t m = 3 * d;
    const Program p = Gen("zb-v", d, m);
    ASSERT_EQ(p.num_stages, 2 * d);
    for (int32_t k = 0; k < d; ++k) {
      EXPECT_EQ(p.device_of(k), k);
      EXPECT_EQ(p.device_of(2 * d - 1 - k), k);
    }
    for (int32_t k = 0; k < d; ++k) {
      int32_t down = 0, back = 0;
      for (const Action& a : p.devices[k]) {
        if (a.kind != ActionKind::kForward) break;
        (a.stage == k ? down : back) += 1;
      }
      EXPECT_EQ(down, 2 * d - (k + 1)) << "D=" << d << " device " << k;
      EXPECT_EQ(back, k + 1) << "D=" << d << " device " << k;
      // From the last warm-up F: p - i groups of the second chunk, then alternating groups
      // (second, first, second), each an F, an I and a W of one stage.
      std::vector<int32_t> expected(static_cast<size_t>(d - (k + 1)), 2 * d - 1 - k);
      for (int32_t g : {2 * d - 1 - k, k, 2 * d - 1 - k}) expected.push_back(g);
      size_t i = static_cast<size_t>(down + back - 1);
      for (int32_t stage : expected) {
        ASSERT_LT(i + 2, p.devices[k].size());
        const Action& f = p.devices[k][i];
        EXPECT_EQ(f.kind, ActionKind::kForward) << "D=" << d << " device " << k << " at " << i;
        EXPECT_EQ(f.stage, stage) << "D=" << d << " device " << k << " at " << i;
        EXPECT_EQ(p.devices[k][i + 1].kind, ActionKind::kBackwardInput);
        EXPECT_EQ(p.devices[k][i + 2].kind, ActionKind::kWeightGrad);
        EXPECT_EQ(p.devices[k][i + 1].stage, stage);
        EXPECT_EQ(p.devices[k][i + 2].stage, stage);
        i += 3;
      }
    }
  }
}

TEST(Orders, ZbFamilyParametersAreChecked) {
  const auto error = [](const std::string& method, std::map<std::string, std::string> params) {
    auto p = Generate({method, 4, 8, 1, 1, std::move(params)});
    return p.ok() ? std::string() : p.status().message();
  };
  EXPECT_NE(error("zb-1p", {{"memory_limit", "0"}}).find("memory_limit"), std::string::npos);
  EXPECT_NE(error("zb-2p", {{"memory_limit", "lots"}}).find("positive integer or auto"),
            std::string::npos);
  EXPECT_NE(error("zb-v", {{"cost_w", "0"}}).find("cost_w"), std::string::npos);
  EXPECT_NE(error("zb-v", {{"memory_limit", "4"}}).find("has no parameter"), std::string::npos);
  EXPECT_EQ(error("zb-1p", {{"memory_limit", "1"}, {"cost_comm", "0"}}), "");
  const MethodInfo* v = FindMethod("zb-v");
  ASSERT_NE(v, nullptr);
  EXPECT_FALSE(v->asynchronous);
}

// Megatron's interleaved order for D = 2, v = 2, M = 4 on device 0: warm-up
// (D-k-1)*2 + (v-1)*D = 4 forwards over chunks 0,0,1,1.
TEST(Orders, InterleavedMegatron) {
  const Program p = Gen("interleaved", 2, 4, 1, {{"chunks", "2"}});
  EXPECT_EQ(Order(p, 0), "0F1 0F2 2F1 2F2 0F3 2B1 0F4 2B2 2F3 0B1 2F4 0B2 2B3 2B4 0B3 0B4 S");
  EXPECT_EQ(Order(p, 1), "1F1 1F2 3F1 3B1 3F2 3B2 1F3 1B1 1F4 1B2 3F3 3B3 3F4 3B4 1B3 1B4 S");
}

// Every method: each (stage, microbatch) has exactly one F, one backward, a W iff split; the
// Step counts follow each method's cadence.
// WPipe at D = 2, M = 2, N = 2, traced tick by tick from the list schedule of
// common/generators_wpipe.cc (stages 0, 1 are the first group, 2, 3 the second; microbatches
// from 1). Device 1 starts the second window with the first group's backwards of minibatch 1,
// whose gradients came back at the end of the first, so it sends those gradients to device 0
// before the activations 1F3, 1F4; the FIFO link makes device 0 take them (0B1, 0B2) before
// 2F3, 2F4.
TEST(Orders, WPipeTwoDevices) {
  const Program p = Gen("wpipe", 2, 2, 2);
  EXPECT_EQ(
      Order(p, 0),
      "0F1 0F2 2F1 2F2 2B1 2B2 S 0F3 0F4 0B1@old 0B2@old 2F3 2F4 2B3 2B4 S 0B3@old 0B4@old S");
  EXPECT_EQ(
      Order(p, 1),
      "1F1 1F2 3F1 3B1 3F2 3B2 S 1B1@old 1B2@old 1F3 1F4 3F3 3B3 3F4 3B4 S 1B3@old 1B4@old S");
}

// WPipe's list schedule ends and is valid (FIFO links included, unlowered and lowered) on every
// shape of a grid, with N + 1 steps per device and at most the two copies it declares.
TEST(Structure, WPipeValidOverAGrid) {
  for (int32_t d = 1; d <= 8; ++d) {
    for (int32_t m = 1; m <= 12; ++m) {
      for (int32_t n : {1, 2, 3}) {
        const Program p = Gen("wpipe", d, m, n);
        ValidateOptions links;
        links.implicit_link_order = true;
        EXPECT_TRUE(ValidateProgram(p, links).empty()) << "D=" << d << " M=" << m << " N=" << n;
        EXPECT_TRUE(ValidateProgram(InsertCommunication(p)).empty()) << "D=" << d << " M=" << m;
        const VersionPlan plan = BuildVersionPlan(p);
        for (int32_t k = 0; k < d; ++k) {
          EXPECT_EQ(plan.steps[k], n + 1);
          EXPECT_LE(plan.live_versions_max[k], p.max_live_versions[k]);
        }
      }
    }
  }
}

TEST(Structure, EveryMethodCoversEveryMicrobatchOnce) {
  for (const MethodInfo& info : Methods()) {
    for (int32_t d : {1, 2, 4, 5}) {
      // Their directions pair devices.
      if ((info.name == "chimera" || info.name == "gems") && d % 2 != 0) continue;
      for (int32_t n : {1, 3}) {
        const int32_t m = info.name == "interleaved" ? 2 * d : d + 3;
        // One AvgPipe pipeline on d devices (its copies: tests/sim/replicas_test.cc).
        std::map<std::string, std::string> params;
        if (info.name == "avgpipe") params["pipelines"] = "1";
        const Program p = Gen(info.name, d, m, n, params);
        ASSERT_EQ(static_cast<int32_t>(p.devices.size()), d) << info.name;
        std::set<std::tuple<int, int, int>> seen;
        for (int32_t dev = 0; dev < d; ++dev) {
          int32_t steps = 0;
          for (const Action& a : p.devices[dev]) {
            if (a.kind == ActionKind::kStep) {
              ++steps;
              continue;
            }
            if (a.kind == ActionKind::kAllReduce) {  // one per copy of the stage
              EXPECT_TRUE(p.holds(dev, a.stage)) << info.name;
              continue;
            }
            EXPECT_EQ(p.device_of(a.stage, a.microbatch), dev);
            const int kind = a.kind == ActionKind::kBackwardInput ? 1 : static_cast<int>(a.kind);
            EXPECT_TRUE(seen.insert({kind, a.stage, a.microbatch}).second)
                << info.name << " duplicates " << ActionToken(a, true);
          }
          const int32_t t = m * n;
          int32_t expected_steps = n;
          if (info.name == "pipedream" || info.name == "spectrain" || info.name == "pipemare" ||
              info.name == "pipeoptim")
            expected_steps = t;
          if (info.name == "wpipe") expected_steps = n + 1;  // the first group's last gradients
          EXPECT_EQ(steps, expected_steps) << info.name << " device " << dev;
        }
        const bool split = info.name == "zb-h1" || info.name == "zb-h2" || info.name == "zb-1p" ||
                           info.name == "zb-2p" || info.name == "zb-v";
        EXPECT_EQ(seen.size(), static_cast<size_t>(p.num_stages) * m * n * (split ? 3 : 2))
            << info.name;
      }
    }
  }
}

// Every generator's program is valid (docs/architecture.md: generated programs are checked here,
// over a grid, rather than on every run), unlowered and lowered, and SizeOf predicts its size.
TEST(Structure, EveryMethodIsValidAndSizedAsPredicted) {
  for (const MethodInfo& info : Methods()) {
    for (const auto& [d, m, n] : {std::tuple{1, 1, 1}, {2, 4, 3}, {4, 8, 2}, {5, 10, 1}}) {
      GenerateOptions o{info.name, d, m, n, 1, {}};
      if (info.name == "interleaved") o.params.emplace("chunks", "3");
      if (info.name == "paci") o.params.emplace("accumulation", "3");
      Result<Program> p = Generate(o);
      if (!p.ok()) continue;  // a method's own precondition (2BW's M >= D)
      ValidateOptions links;
      links.implicit_link_order = true;
      EXPECT_TRUE(ValidateProgram(*p, links).empty()) << info.name << " D=" << d;
      EXPECT_TRUE(ValidateProgram(InsertCommunication(*p)).empty()) << info.name << " D=" << d;
      Result<ProgramSize> size = SizeOf(o);
      ASSERT_TRUE(size.ok()) << size.status().message();
      int64_t compute = 0, steps = 0;
      bool stashes = false, tracked = false;
      for (const auto& dev : p->devices) {
        for (const Action& a : dev) {
          compute += IsCompute(a.kind) ? 1 : 0;
          steps += a.kind == ActionKind::kStep ? 1 : 0;
          stashes = stashes || a.weights.source == WeightSource::kStashed;
          tracked = tracked || (a.weights.source != WeightSource::kCurrent &&
                                a.weights.source != WeightSource::kPredicted);
        }
      }
      if (p->num_devices > 1) {  // on one device PipeMare has no gap to correct
        EXPECT_EQ(size->tracked_copies, tracked) << info.name;
      }
      EXPECT_EQ(size->compute_actions, compute) << info.name << " D=" << d;
      EXPECT_EQ(size->steps, steps) << info.name << " D=" << d << " M=" << m << " N=" << n;
      EXPECT_EQ(size->stashes, stashes) << info.name;
      EXPECT_EQ(size->cells(), static_cast<int64_t>(p->num_stages) * p->total_microbatches());
    }
  }
}

TEST(Structure, PaciStepsEveryABackwards) {
  const Program p = Gen("paci", 8, 8, 3, {{"accumulation", "5"}});
  int32_t steps = 0;
  for (const Action& a : p.devices[2]) steps += a.kind == ActionKind::kStep;
  EXPECT_EQ(steps, 5);  // ceil(24 / 5): four full windows and the remainder
}

TEST(Errors, UnknownMethodSuggestsTheClosest) {
  auto p = Generate({"pipedrem", 4, 8, 1, 1, {}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("unknown method 'pipedrem' (did you mean 'pipedream'?)"),
            std::string::npos)
      << p.status().message();
}

TEST(Errors, UnknownParameterSuggestsTheClosest) {
  auto p = Generate({"interleaved", 4, 8, 1, 1, {{"chunk", "2"}}});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("has no parameter 'chunk' (did you mean 'chunks'?)"),
            std::string::npos)
      << p.status().message();
  auto q = Generate({"gpipe", 4, 8, 1, 1, {{"chunks", "2"}}});
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("it takes no parameters"), std::string::npos);
}

TEST(Errors, BadParameterValues) {
  auto a = Generate({"spectrain", 4, 8, 1, 1, {{"variant", "v3"}}});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("must be one of v1 v2, got 'v3'"), std::string::npos);
  auto b = Generate({"interleaved", 4, 8, 1, 1, {{"chunks", "two"}}});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("must be a positive integer, got 'two'"), std::string::npos);
  auto c = Generate({"paci", 4, 8, 1, 1, {{"accumulation", "0"}}});
  EXPECT_FALSE(c.ok());
  auto d = Generate({"pipemare", 4, 8, 1, 1, {{"decay", "1.5"}}});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("'decay' of method 'pipemare' must be a number in [0, 1)"),
            std::string::npos);
  auto e = Generate({"pipemare", 4, 8, 1, 1, {{"lr_warmup_steps", "-3"}}});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("must be a non-negative integer, got '-3'"),
            std::string::npos);
  EXPECT_TRUE(Generate({"paci", 4, 8, 1, 1, {{"allowed_lagging", "auto"}}}).ok());
  EXPECT_TRUE(Generate({"paci", 4, 8, 1, 1, {{"allowed_lagging", "2"}}}).ok());
  auto f = Generate({"paci", 4, 8, 1, 1, {{"allowed_lagging", "many"}}});
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("must be a positive integer or auto, got 'many'"),
            std::string::npos);
}

TEST(Errors, Preconditions) {
  auto a = Generate({"pipedream-2bw", 4, 3, 1, 1, {}});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("needs microbatches >= stages (got 3 microbatches for 4"),
            std::string::npos)
      << a.status().message();
  auto b = Generate({"interleaved", 4, 6, 1, 1, {}});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("multiple of stages"), std::string::npos);
  auto c = Generate({"1f1b", 0, 6, 1, 1, {}});
  EXPECT_FALSE(c.ok());
}

}  // namespace
}  // namespace pipecast::ir
