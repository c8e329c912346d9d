// LayerNorm over the last dimension (each row), with a learned scale and shift.
//
// Parameters: gamma [features], then beta [features]. Init: gamma = 1, beta = 0 (as PyTorch).
// Forward, per row x of width d (biased variance, as PyTorch; eps = kLayerNormEps):
//   mu = mean(x), var = mean((x - mu)^2), rstd = 1 / sqrt(var + eps)
//   xhat = (x - mu) * rstd,  y = gamma * xhat + beta
// Saved: xhat [rows x features], then rstd [rows]. Scratch: one row of g.
//   g = dy * gamma'   (gamma' = the scale given to BackwardInput)
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
//   dgamma += column sums of dy * xhat, dbeta += column sums of dy
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "models/layer.h"

namespace pipecast::models {

inline constexpr double kLayerNormEps = 1e-5;  // PyTorch's default

template <typename T>
class LayerNorm final : public Layer<T> {
 public:
  // REQUIRES: features > 0.
  explicit LayerNorm(int64_t features);
  int64_t features() const { return features_; }

  std::string name() const override { return "layernorm"; }
  int64_t num_params() const override { return 2 * features_; }
  int64_t input_width() const override { return features_; }
  int64_t output_width() const override { return features_; }
  void Init(std::span<T> params, Rng& rng) const override;
  PIPECAST_LAYER_PASSES(T);
  // 7 per element: mean, subtract, square and sum, normalise, scale, shift.
  double ForwardFlops(int64_t rows) const override;

 private:
  int64_t features_;
};

}  // namespace pipecast::models
