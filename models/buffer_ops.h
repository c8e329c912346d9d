// Element-wise operations on flat parameter and gradient buffers, used by the executor's weight
// store (copies between versions, gradient accumulation) and its NaN/Inf guard.
#pragma once

#include <cstdint>
#include <span>

namespace pipecast::models {

// y += a * x. REQUIRES: x.size() == y.size().
void Axpy(float a, std::span<const float> x, std::span<float> y);
// y = x. REQUIRES: x.size() == y.size().
void Copy(std::span<const float> x, std::span<float> y);
// x *= a.
void Scale(float a, std::span<float> x);
// Index of the first NaN or Inf in x, or -1 if every value is finite.
int64_t FirstNonFinite(std::span<const float> x);

}  // namespace pipecast::models
