// Element-wise mathematics shared by every device: written once, as functions a CUDA kernel can
// call too (PIPECAST_HD), so the CPU tests check the very code the kernels run.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define PIPECAST_HD __host__ __device__
#else
#define PIPECAST_HD
#endif

namespace pipecast::models {

inline constexpr double kGeluCubic = 0.044715;
inline constexpr double kSqrtTwoOverPi = 0.79788456080286535588;  // sqrt(2 / pi)

// GELU with the tanh approximation (GPT-2, torch GELU(approximate="tanh")).
template <typename T>
PIPECAST_HD inline T GeluValue(T v) {
  const T c = static_cast<T>(kSqrtTwoOverPi);
  const T a = static_cast<T>(kGeluCubic);
  return T(0.5) * v * (T(1) + std::tanh(c * (v + a * v * v * v)));
}

// d gelu(v) / dv.
template <typename T>
PIPECAST_HD inline T GeluSlope(T v) {
  const T c = static_cast<T>(kSqrtTwoOverPi);
  const T a = static_cast<T>(kGeluCubic);
  const T t = std::tanh(c * (v + a * v * v * v));
  return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * c * (T(1) + T(3) * a * v * v);
}

}  // namespace pipecast::models
