// The executor's tensor: a shape and a flat float buffer, plain data so that transports can move
// it between threads or processes (and later between GPU buffers) without knowing the model.
#pragma once

#include <cstdint>
#include <vector>

namespace pipecast::runtime {

struct Tensor {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> data;  // row-major, rows * cols values

  Tensor() = default;
  Tensor(int64_t r, int64_t c) : rows(r), cols(c), data(static_cast<size_t>(r * c), 0.0f) {}
  friend bool operator==(const Tensor&, const Tensor&) = default;
};

}  // namespace pipecast::runtime
