// Bubble filling as PipeFisher does it (Osawa et al., MLSys'23): extra work, such as K-FAC's
// curvature estimates, inversions and preconditioning, is assigned to the idle time of a
// simulated timeline, each item to the first bubble of its device that still has room for it
// (first fit, in the items' order, bubbles in time order), and what does not fit runs after the
// device's optimizer step, lengthening it. Simulation only: the executor does not run the work.
//
// A device's bubbles in its k-th step are the gaps between its compute actions (F, B, I, W) and
// optimizer steps from the end of its (k-1)-th step (time 0 for the first) to the start of its
// k-th; sends and receives are taken to cost the device nothing there (their LogP overheads, if
// the cost model has them, are not subtracted). An item is never split.
#pragma once

#include <cstdint>
#include <vector>

#include "common/ir.h"
#include "common/scenario.h"
#include "common/status.h"
#include "sim/result.h"

namespace pipecast::sim {

struct BubbleFillDevice {
  TimeNs work = 0;     // every item of the run
  TimeNs hidden = 0;   // placed in bubbles
  TimeNs exposed = 0;  // did not fit: after the device's steps
  int64_t items = 0;
  int64_t placed = 0;
};

struct BubbleFill {
  std::vector<BubbleFillDevice> devices;
  // The run's estimated extra time: for every step index k, the most work any device leaves
  // exposed in its k-th step, summed over k (a flushed step waits for its slowest device; for
  // asynchronous methods this is an estimate, their steps do not line up).
  TimeNs extra = 0;
  TimeNs makespan_with_work = 0;  // makespan + extra
  double HiddenFraction() const;  // sum hidden / sum work over devices (1 when there is none)
};

// Fills the bubbles of `r`'s timeline with `work` (durations per device of `p`). REQUIRES: `r`
// was simulated from `p` with SimOptions::record_timeline. Errors (kInvalidArgument): an item
// whose durations do not give one value per device, or a negative one.
Result<BubbleFill> FillBubbles(const ir::Program& p, const SimResult& r,
                               const std::vector<ir::BubbleWorkItem>& work);

}  // namespace pipecast::sim
