// Element-wise activations without parameters: ReLU and GELU.
//
// GELU uses the tanh approximation that GPT-2 uses (and PyTorch's GELU(approximate="tanh")):
//   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
// Neither layer saves anything beyond its input x (which the caller keeps); BackwardInput reads x
// and BackwardWeight does nothing. `features` (the row width) is fixed so that shapes can be
// checked when a model is built and FLOPs counted.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "models/layer.h"

namespace pipecast::models {

template <typename T>
class Relu final : public Layer<T> {
 public:
  // REQUIRES: features > 0.
  explicit Relu(int64_t features);
  int64_t features() const { return features_; }

  std::string name() const override { return "relu"; }
  int64_t num_params() const override { return 0; }
  int64_t input_width() const override { return features_; }
  int64_t output_width() const override { return features_; }
  void Init(std::span<T> params, Rng& rng) const override;
  // dx = dy where x > 0, else 0.
  PIPECAST_LAYER_PASSES(T);
  // One comparison per element.
  double ForwardFlops(int64_t rows) const override;

 private:
  int64_t features_;
};

template <typename T>
class Gelu final : public Layer<T> {
 public:
  // REQUIRES: features > 0.
  explicit Gelu(int64_t features);
  int64_t features() const { return features_; }

  std::string name() const override { return "gelu"; }
  int64_t num_params() const override { return 0; }
  int64_t input_width() const override { return features_; }
  int64_t output_width() const override { return features_; }
  void Init(std::span<T> params, Rng& rng) const override;
  PIPECAST_LAYER_PASSES(T);
  // 9 per element, counting tanh as one operation.
  double ForwardFlops(int64_t rows) const override;

 private:
  int64_t features_;
};

}  // namespace pipecast::models
