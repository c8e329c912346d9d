#include "models/activations.h"

#include "common/check.h"
#include "models/elementwise.h"

namespace pipecast::models {
namespace {

template <typename T>
void CheckShapes(const char* layer, int64_t features, ConstView<T> x, int64_t rows, int64_t cols) {
  PIPECAST_CHECK(x.cols() == features && cols == features && rows == x.rows())
      << layer << " expects " << features << " columns, got " << x.cols() << " -> " << cols;
}

}  // namespace

template <typename T>
Relu<T>::Relu(int64_t features) : features_(features) {
  PIPECAST_CHECK(features > 0);
}

template <typename T>
void Relu<T>::Init(std::span<T> params, Rng&) const {
  PIPECAST_CHECK(params.empty());
}

template <typename T>
LayerMemory Relu<T>::Memory(int64_t) const {
  return {};
}

template <typename T>
void Relu<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T>,
                          std::span<T>) const {
  PIPECAST_CHECK(params.empty());
  CheckShapes<T>("relu", features_, x, y.rows(), y.cols());
  y = x.cwiseMax(T(0));
}

template <typename T>
void Relu<T>::BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T>,
                                ConstView<T> dy, View<T> dx, std::span<T>, std::span<T>) const {
  PIPECAST_CHECK(params.empty());
  if (IsEmpty(dx)) return;
  CheckShapes<T>("relu", features_, x, dy.rows(), dy.cols());
  dx = (x.array() > T(0)).select(dy, T(0));
}

template <typename T>
void Relu<T>::BackwardWeightInto(ConstView<T>, ConstView<T>, ConstView<T>, std::span<const T>,
                                 std::span<T> grad, std::span<T>) const {
  PIPECAST_CHECK(grad.empty());
}

template <typename T>
double Relu<T>::ForwardFlops(int64_t rows) const {
  return static_cast<double>(rows) * static_cast<double>(features_);
}

template <typename T>
Gelu<T>::Gelu(int64_t features) : features_(features) {
  PIPECAST_CHECK(features > 0);
}

template <typename T>
void Gelu<T>::Init(std::span<T> params, Rng&) const {
  PIPECAST_CHECK(params.empty());
}

template <typename T>
LayerMemory Gelu<T>::Memory(int64_t) const {
  return {};
}

template <typename T>
void Gelu<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T>,
                          std::span<T>) const {
  PIPECAST_CHECK(params.empty());
  CheckShapes<T>("gelu", features_, x, y.rows(), y.cols());
  y = x.unaryExpr([](T v) { return GeluValue<T>(v); });
}

template <typename T>
void Gelu<T>::BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T>,
                                ConstView<T> dy, View<T> dx, std::span<T>, std::span<T>) const {
  PIPECAST_CHECK(params.empty());
  if (IsEmpty(dx)) return;
  CheckShapes<T>("gelu", features_, x, dy.rows(), dy.cols());
  dx = dy.cwiseProduct(x.unaryExpr([](T v) { return GeluSlope<T>(v); }));
}

template <typename T>
void Gelu<T>::BackwardWeightInto(ConstView<T>, ConstView<T>, ConstView<T>, std::span<const T>,
                                 std::span<T> grad, std::span<T>) const {
  PIPECAST_CHECK(grad.empty());
}

template <typename T>
double Gelu<T>::ForwardFlops(int64_t rows) const {
  return 9.0 * static_cast<double>(rows) * static_cast<double>(features_);
}

template class Relu<float>;
template class Relu<double>;
template class Gelu<float>;
template class Gelu<double>;

}  // namespace pipecast::models
