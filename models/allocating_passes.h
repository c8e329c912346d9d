// The allocating forms of the *Into passes, for anything that has them (a Layer, a Stage): they
// run exactly the same code over Matrix values, keeping x, y, dy and the saved memory in a
// Saved. Tests and the sequential references use them; devices use the *Into passes.
#pragma once

#include <vector>

#include "common/check.h"
#include "models/layer.h"

namespace pipecast::models::internal {

template <typename T, typename Passes>
Matrix<T> ForwardAllocating(const Passes& p, std::span<const T> params, const Matrix<T>& x,
                            Saved<T>* saved, const char* what) {
  PIPECAST_CHECK(x.cols() == p.input_width())
      << what << " expects " << p.input_width() << " columns, got " << x.cols();
  const LayerMemory m = p.Memory(x.rows());
  Matrix<T> y(x.rows(), p.output_width());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  std::vector<T> local;
  std::vector<T>& kept = saved != nullptr ? saved->saved : local;
  kept.assign(static_cast<size_t>(m.saved), T(0));
  p.ForwardInto(params, MakeConstView<T>(x.data(), x.rows(), x.cols()),
                MakeView(y.data(), y.rows(), y.cols()), kept, scratch);
  if (saved != nullptr) {
    saved->x = x;
    saved->y = y;
    saved->dy.resize(0, 0);
  }
  return y;
}

template <typename T, typename Passes>
Matrix<T> BackwardInputAllocating(const Passes& p, std::span<const T> params, const Matrix<T>& dy,
                                  Saved<T>* saved, const char* what) {
  PIPECAST_CHECK(saved != nullptr && saved->x.rows() == dy.rows() && dy.cols() == p.output_width())
      << what << ": BackwardInput needs the forward's record and a gradient of its output's shape";
  const LayerMemory m = p.Memory(dy.rows());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  saved->dy = dy;
  Matrix<T> dx(dy.rows(), p.input_width());
  p.BackwardInputInto(params, MakeConstView<T>(saved->x.data(), saved->x.rows(), saved->x.cols()),
                      MakeConstView<T>(saved->y.data(), saved->y.rows(), saved->y.cols()),
                      MakeConstView<T>(saved->dy.data(), dy.rows(), dy.cols()),
                      MakeView(dx.data(), dx.rows(), dx.cols()), saved->saved, scratch);
  return dx;
}

template <typename T, typename Passes>
void BackwardWeightAllocating(const Passes& p, const Saved<T>& saved, std::span<T> grad,
                              const char* what) {
  PIPECAST_CHECK(saved.dy.rows() == saved.x.rows() && saved.dy.cols() == p.output_width())
      << what << ": BackwardWeight before BackwardInput";
  const LayerMemory m = p.Memory(saved.x.rows());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  p.BackwardWeightInto(MakeConstView<T>(saved.x.data(), saved.x.rows(), saved.x.cols()),
                       MakeConstView<T>(saved.y.data(), saved.y.rows(), saved.y.cols()),
                       MakeConstView<T>(saved.dy.data(), saved.dy.rows(), saved.dy.cols()),
                       saved.saved, grad, scratch);
}

}  // namespace pipecast::models::internal
