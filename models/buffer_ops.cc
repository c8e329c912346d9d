#include "models/buffer_ops.h"

#include <cmath>
#include <cstring>

#include "common/check.h"

namespace pipecast::models {

void Axpy(float a, std::span<const float> x, std::span<float> y) {
  PIPECAST_CHECK(x.size() == y.size()) << x.size() << " vs " << y.size();
  for (size_t i = 0; i < x.size(); ++i) y[i] += a * x[i];
}

void Copy(std::span<const float> x, std::span<float> y) {
  PIPECAST_CHECK(x.size() == y.size()) << x.size() << " vs " << y.size();
  if (!x.empty()) std::memcpy(y.data(), x.data(), x.size() * sizeof(float));
}

void Scale(float a, std::span<float> x) {
  for (float& v : x) v *= a;
}

int64_t FirstNonFinite(std::span<const float> x) {
  for (size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i])) return static_cast<int64_t>(i);
  return -1;
}

}  // namespace pipecast::models
