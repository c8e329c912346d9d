// Helpers for simulator tests: generate, lower and simulate one method with simple costs.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "common/generators.h"
#include "common/lower.h"
#include "sim/cost_model.h"
#include "sim/engine.h"

namespace pipecast::sim::testing {

// One time unit of the reference's closed forms, in ns (divisible by the chunk counts used).
constexpr TimeNs kUnit = 12000;

struct Run {
  ir::Program program;
  SimResult result;
};

// Uniform per-device costs t_F, t_B (and t_W when split), divided evenly over chunks.
inline CostModel UnitCosts(const ir::Program& p, double tf, double tb, double tw = 0) {
  const int32_t chunks = p.num_stages / p.num_devices;
  const auto scale = [&](double t) { return static_cast<TimeNs>(t * kUnit / chunks); };
  return UniformCostModel(p.num_stages, scale(tf), scale(tb + tw), scale(tb), scale(tw));
}

inline Run Simulated(const std::string& method, int32_t d, int32_t m, int32_t n,
                     std::map<std::string, std::string> params, double tf = 1, double tb = 1,
                     double tw = 0) {
  ir::GenerateOptions o;
  o.method = method;
  o.devices = d;
  o.microbatches = m;
  o.minibatches = n;
  o.params = std::move(params);
  auto program = ir::Generate(o);
  EXPECT_TRUE(program.ok()) << program.status().message();
  Run run;
  run.program = ir::InsertCommunication(*program);
  auto result = Simulate(run.program, UnitCosts(run.program, tf, tb, tw));
  EXPECT_TRUE(result.ok()) << result.status().message();
  run.result = std::move(*result);
  return run;
}

inline double Units(TimeNs t) { return static_cast<double>(t) / kUnit; }

// Random per-stage times (1..1000 ns) and sizes (up to 1 MiB), a 1e12 B/s memory, a 1e10 B/s
// link with random latency and, when `overheads`, random LogP send/receive overheads.
inline CostModel RandomCosts(const ir::Program& p, std::mt19937_64& rng, bool overheads = false) {
  std::uniform_int_distribution<TimeNs> t(1, 1000);
  std::uniform_int_distribution<int64_t> bytes(0, 1 << 20);
  CostModel c;
  for (int32_t s = 0; s < p.num_stages; ++s) {
    StageCost sc;
    sc.forward = t(rng);
    sc.backward_input = t(rng);
    sc.backward_weight = t(rng);
    sc.backward = sc.backward_input + sc.backward_weight;
    sc.optimizer_step = s % 2 == 0 ? t(rng) / 10 : -1;
    sc.message_bytes = bytes(rng);
    sc.activation_bytes = bytes(rng);
    sc.activation_bytes_after_input_grad = bytes(rng) / 2;
    sc.weight_bytes = bytes(rng);
    sc.optimizer_state_bytes = bytes(rng);
    c.stages.push_back(sc);
  }
  c.devices.assign(1, DeviceSpec{0, 1e12});
  c.link = {t(rng), 1e10, overheads ? t(rng) / 4 : 0, overheads ? t(rng) / 4 : 0};
  return c;
}

}  // namespace pipecast::sim::testing
