// Physical quantities with units, as written in scenario files and on the command line:
// durations ("1.5ms"), sizes ("64MiB"), bandwidths ("25GB/s", "100Gbit/s") and compute
// throughputs ("312TFLOPS"). A plain number means the base unit: seconds, bytes, bytes/s, FLOP/s.
//
// Parsed values use the simulator's representations: durations are integer nanoseconds (rounded
// to the nearest), sizes integer bytes (rounded to the nearest), bandwidths and throughputs
// doubles. Every parser rejects negative, NaN, infinite and out-of-range values, and its error
// message says what was expected, e.g.
//   expected a duration such as 1.5ms or 200us, got '3 parsecs'
// The full list of accepted unit spellings is in docs/scenarios.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace pipecast::ir {

// Units: s, ms, us (or µs), ns; a plain number is seconds. Result in nanoseconds, which must fit
// in int64 (about 292 years).
Result<int64_t> ParseDuration(std::string_view text);

// Units: B; kB/KB, MB, GB, TB, PB (powers of 1000); KiB, MiB, GiB, TiB, PiB (powers of 1024).
// A plain number is bytes. Result in bytes, which must fit in int64.
Result<int64_t> ParseBytes(std::string_view text);

// Units: any size unit of ParseBytes followed by "/s" (bytes per second), or bit/s, kbit/s,
// Mbit/s, Gbit/s, Tbit/s (also written bps, kbps, Mbps, Gbps, Tbps; powers of 1000, 8 bits a
// byte). A plain number is bytes/s. Result in bytes per second.
Result<double> ParseBandwidth(std::string_view text);

// Units: FLOPS or FLOP/s with an optional k, M, G, T, P or E prefix (powers of 1000; the unit is
// case-insensitive: "312TFLOPS", "312 Tflop/s"). A plain number is FLOP/s.
Result<double> ParseFlops(std::string_view text);

// Short human-readable forms for reports and messages, using the largest unit that keeps the
// number >= 1 and at most 4 significant digits: "1.5ms", "200us", "0s", "64MiB", "1.5GB/s".
std::string FormatDuration(int64_t ns);
std::string FormatBytes(int64_t bytes);                // binary units (KiB, MiB, GiB, TiB)
std::string FormatBandwidth(double bytes_per_second);  // decimal units (kB/s ... TB/s)
std::string FormatFlops(double flops);                 // decimal prefixes (GFLOPS, TFLOPS, ...)

}  // namespace pipecast::ir
