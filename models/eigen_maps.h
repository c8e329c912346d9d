// Views of a layer's slice of a flat parameter (or gradient) buffer as Eigen matrices, so that
// layers can read weights and accumulate gradients in place without copies. Internal to models/.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <span>

#include "common/check.h"
#include "models/layer.h"

namespace pipecast::models {

template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;

template <typename T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>>;
template <typename T>
using MatrixMap = Eigen::Map<Matrix<T>>;
template <typename T>
using ConstRowVectorMap = Eigen::Map<const RowVector<T>>;
template <typename T>
using RowVectorMap = Eigen::Map<RowVector<T>>;

// A [rows x cols] row-major view of `buffer`, starting at `*offset`; advances `*offset`.
// REQUIRES: the view fits inside the buffer.
template <typename T>
ConstMatrixMap<T> TakeMatrix(std::span<const T> buffer, int64_t rows, int64_t cols,
                             int64_t* offset) {
  PIPECAST_CHECK(*offset + rows * cols <= static_cast<int64_t>(buffer.size()))
      << "parameter view out of range";
  ConstMatrixMap<T> view(buffer.data() + *offset, rows, cols);
  *offset += rows * cols;
  return view;
}
template <typename T>
MatrixMap<T> TakeMatrix(std::span<T> buffer, int64_t rows, int64_t cols, int64_t* offset) {
  PIPECAST_CHECK(*offset + rows * cols <= static_cast<int64_t>(buffer.size()))
      << "parameter view out of range";
  MatrixMap<T> view(buffer.data() + *offset, rows, cols);
  *offset += rows * cols;
  return view;
}
template <typename T>
ConstRowVectorMap<T> TakeRow(std::span<const T> buffer, int64_t cols, int64_t* offset) {
  PIPECAST_CHECK(*offset + cols <= static_cast<int64_t>(buffer.size()))
      << "parameter view out of range";
  ConstRowVectorMap<T> view(buffer.data() + *offset, cols);
  *offset += cols;
  return view;
}
template <typename T>
RowVectorMap<T> TakeRow(std::span<T> buffer, int64_t cols, int64_t* offset) {
  PIPECAST_CHECK(*offset + cols <= static_cast<int64_t>(buffer.size()))
      << "parameter view out of range";
  RowVectorMap<T> view(buffer.data() + *offset, cols);
  *offset += cols;
  return view;
}

}  // namespace pipecast::models
