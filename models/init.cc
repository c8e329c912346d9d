#include "models/init.h"

#include <cmath>
#include <numbers>

namespace pipecast::models {

double UniformUnit(Rng& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;  // 53 random bits: exact in a double
}

template <typename T>
void FillUniform(std::span<T> out, double lo, double hi, Rng& rng) {
  for (T& v : out) v = static_cast<T>(lo + (hi - lo) * UniformUnit(rng));
}

template <typename T>
void FillNormal(std::span<T> out, double stddev, Rng& rng) {
  for (T& v : out) {
    // 1 - u is in (0, 1], so the logarithm is finite.
    const double u1 = 1.0 - UniformUnit(rng);
    const double u2 = UniformUnit(rng);
    v = static_cast<T>(stddev * std::sqrt(-2.0 * std::log(u1)) *
                       std::cos(2.0 * std::numbers::pi * u2));
  }
}

template void FillUniform<float>(std::span<float>, double, double, Rng&);
template void FillUniform<double>(std::span<double>, double, double, Rng&);
template void FillNormal<float>(std::span<float>, double, Rng&);
template void FillNormal<double>(std::span<double>, double, Rng&);

}  // namespace pipecast::models
