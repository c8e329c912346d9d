// Deterministic random initialisation of parameter slices.
//
// The standard library's distributions are implementation-defined (libstdc++ and libc++ give
// different numbers for the same engine), so initial weights would depend on the toolchain.
// These helpers derive every value from the raw 64-bit output of Rng with fixed arithmetic, in
// double precision, and round to T last: a float model and a double model built from the same
// seed hold the same weights up to rounding, on every platform.
#pragma once

#include <span>

#include "models/layer.h"

namespace pipecast::models {

// A uniform double in [0, 1) from the top 53 bits of one draw.
double UniformUnit(Rng& rng);

// Fills `out` with U(lo, hi) values, in order.
template <typename T>
void FillUniform(std::span<T> out, double lo, double hi, Rng& rng);

// Fills `out` with N(0, stddev^2) values (Box-Muller, two draws per value), in order.
template <typename T>
void FillNormal(std::span<T> out, double stddev, Rng& rng);

}  // namespace pipecast::models
