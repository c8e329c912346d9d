// A hand-timed run shared by the output-writer tests (trace, SVG): 2 devices, 2 microbatches,
// makespan 22 us, with transfers and memory samples.
#pragma once

#include "common/version_plan.h"
#include "sim/report.h"

namespace pipecast::sim::testing_runs {

using ir::ActionKind;
using ir::WeightSource;

// Two stages on two devices, two microbatches, one step per device; F = 2 µs, B = 4 µs, step
// 2 µs, transfers take 1 µs of latency (infinite bandwidth). Device 1's second F uses weights
// predicted one step ahead, device 0's second B the stash. Makespan 22 µs.
inline MethodRun TimedRun() {
  ir::Program p;
  p.method = "custom";
  p.num_devices = 2;
  p.num_stages = 2;
  p.placement = {0, 1};
  p.microbatches = 2;
  p.devices = {{
                   {ActionKind::kForward, 0, 0, {}},                            // 0: 0-2000
                   {ActionKind::kSendActivation, 0, 0, {}},                     // 1
                   {ActionKind::kForward, 0, 1, {}},                            // 2: 2000-4000
                   {ActionKind::kSendActivation, 0, 1, {}},                     // 3
                   {ActionKind::kRecvGradient, 0, 0, {}},                       // 4
                   {ActionKind::kBackward, 0, 0, {}},                           // 5: 10000-14000
                   {ActionKind::kRecvGradient, 0, 1, {}},                       // 6
                   {ActionKind::kBackward, 0, 1, {WeightSource::kStashed, 0}},  // 7: 16000-20000
                   {ActionKind::kStep, -1, -1, {}},                             // 8: 20000-22000
               },
               {
                   {ActionKind::kRecvActivation, 1, 0, {}},                      // 0
                   {ActionKind::kForward, 1, 0, {}},                             // 1: 3000-5000
                   {ActionKind::kBackward, 1, 0, {}},                            // 2: 5000-9000
                   {ActionKind::kSendGradient, 1, 0, {}},                        // 3
                   {ActionKind::kRecvActivation, 1, 1, {}},                      // 4
                   {ActionKind::kForward, 1, 1, {WeightSource::kPredicted, 1}},  // 5: 9000-11000
                   {ActionKind::kBackward, 1, 1, {}},                            // 6: 11000-15000
                   {ActionKind::kSendGradient, 1, 1, {}},                        // 7
                   {ActionKind::kStep, -1, -1, {}},                              // 8: 15000-17000
               }};
  SimResult r;
  r.makespan = 22'000;
  r.bubble.idle_fraction = 0.3636;
  r.timing = {{{0, 2000},
               {2000, 2000},
               {2000, 4000},
               {4000, 4000},
               {10000, 10000},
               {10000, 14000},
               {16000, 16000},
               {16000, 20000},
               {20000, 22000}},
              {{3000, 3000},
               {3000, 5000},
               {5000, 9000},
               {9000, 9000},
               {9000, 9000},
               {9000, 11000},
               {11000, 15000},
               {15000, 15000},
               {15000, 17000}}};
  r.transfers = {{0, 1, 1, 0, 2000, 2000, 3000, 4096},
                 {0, 1, 3, 4, 4000, 4000, 5000, 4096},
                 {1, 0, 3, 4, 9000, 9000, 10000, 4096},
                 {1, 0, 7, 6, 15000, 15000, 16000, 4096}};
  r.memory = {{{0, 100}, {2000, 200}, {4000, 300}, {14000, 200}, {20000, 100}},
              {{3000, 100}, {9000, 50}, {11000, 100}}};
  r.plan = ir::BuildVersionPlan(p);
  MethodRun run;
  run.method = p.method;
  run.program = std::move(p);
  run.result = std::move(r);
  return run;
}

}  // namespace pipecast::sim::testing_runs
