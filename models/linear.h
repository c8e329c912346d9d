// Linear: the fully connected layer y = x W^T + b, with PyTorch's layout.
//
// Parameters (in this order in the layer's slice): W, [out x in] row-major, then b, [out].
// Init as torch.nn.Linear: W and b uniform in (-1/sqrt(in), 1/sqrt(in)).
// Saved: nothing beyond x and dy, which the caller keeps.
//   dx = dy W'            (W' = the weights given to BackwardInput)
//   dW += dy^T x, db += column sums of dy   (x from the forward)
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "models/layer.h"

namespace pipecast::models {

template <typename T>
class Linear final : public Layer<T> {
 public:
  // REQUIRES: in > 0, out > 0.
  Linear(int64_t in, int64_t out);

  int64_t in() const { return in_; }
  int64_t out() const { return out_; }

  std::string name() const override { return "linear"; }
  int64_t num_params() const override { return out_ * in_ + out_; }
  int64_t input_width() const override { return in_; }
  int64_t output_width() const override { return out_; }
  void Init(std::span<T> params, Rng& rng) const override;
  // 2 * in * out multiply-adds per row (the bias is not counted).
  double ForwardFlops(int64_t rows) const override;
  PIPECAST_LAYER_PASSES(T);

 private:
  int64_t in_;
  int64_t out_;
};

}  // namespace pipecast::models
