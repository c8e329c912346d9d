// Perfetto / chrome://tracing export of one simulated run (Chrome JSON trace event format).
//
// Layout (docs/outputs.md): one process per device ("device d", pid = d); thread 0 "compute"
// holds one complete event per F/B/I/W/S; thread 1 "communication" holds one complete event per
// transfer on the sender's device, from the link start to the arrival (transfers that overlap in
// time on one device spill onto threads 2, 3, ... "communication 2", ... because complete events
// on one thread must nest); flow arrows join each transfer to the compute action that consumes it
// on the receiver; a "memory" counter per device follows SimResult::memory.
#pragma once

#include <string>

#include "sim/report.h"

namespace pipecast::sim {

// The trace as a JSON object {"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}.
// Timestamps and durations are microseconds (the format's unit) as doubles, exact to the
// nanosecond. Needs run.result.timing (SimOptions::record_timeline); without it only the
// metadata and memory counters are written.
std::string FormatPerfettoTrace(const MethodRun& run);

}  // namespace pipecast::sim
