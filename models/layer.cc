// The allocating wrappers of Layer (layer.h): the same passes over Matrix values.
#include "models/layer.h"

#include "common/check.h"

namespace pipecast::models {

template <typename T>
Matrix<T> Layer<T>::Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const {
  PIPECAST_CHECK(x.cols() == input_width())
      << name() << " expects " << input_width() << " columns, got " << x.cols();
  const LayerMemory m = Memory(x.rows());
  Matrix<T> y(x.rows(), output_width());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  std::vector<T> local;
  std::vector<T>& kept = saved != nullptr ? saved->saved : local;
  kept.assign(static_cast<size_t>(m.saved), T(0));
  ForwardInto(params, MakeConstView<T>(x.data(), x.rows(), x.cols()),
              MakeView(y.data(), y.rows(), y.cols()), kept, scratch);
  if (saved != nullptr) {
    saved->x = x;
    saved->y = y;
    saved->dy.resize(0, 0);
  }
  return y;
}

template <typename T>
Matrix<T> Layer<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                  Saved<T>* saved) const {
  PIPECAST_CHECK(saved != nullptr && saved->x.rows() == dy.rows() && dy.cols() == output_width())
      << name()
      << ": BackwardInput needs the forward's record and a gradient of its output's "
         "shape";
  const LayerMemory m = Memory(dy.rows());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  saved->dy = dy;
  Matrix<T> dx(dy.rows(), input_width());
  BackwardInputInto(params, MakeConstView<T>(saved->x.data(), saved->x.rows(), saved->x.cols()),
                    MakeConstView<T>(saved->y.data(), saved->y.rows(), saved->y.cols()),
                    MakeConstView<T>(saved->dy.data(), dy.rows(), dy.cols()),
                    MakeView(dx.data(), dx.rows(), dx.cols()), saved->saved, scratch);
  return dx;
}

template <typename T>
void Layer<T>::BackwardWeight(const Saved<T>& saved, std::span<T> grad) const {
  PIPECAST_CHECK(saved.dy.rows() == saved.x.rows() && saved.dy.cols() == output_width())
      << name() << ": BackwardWeight before BackwardInput";
  const LayerMemory m = Memory(saved.x.rows());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  BackwardWeightInto(MakeConstView<T>(saved.x.data(), saved.x.rows(), saved.x.cols()),
                     MakeConstView<T>(saved.y.data(), saved.y.rows(), saved.y.cols()),
                     MakeConstView<T>(saved.dy.data(), saved.dy.rows(), saved.dy.cols()),
                     saved.saved, grad, scratch);
}

template class Layer<float>;
template class Layer<double>;

}  // namespace pipecast::models
