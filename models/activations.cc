#include "models/activations.h"

#include <cmath>
#include <numbers>

#include "common/check.h"

namespace pipecast::models {
namespace {

// Saved::tensors: [x] (from Forward); the backward passes record nothing.
constexpr size_t kForwardSaved = 1;

constexpr double kGeluCubic = 0.044715;
const double kSqrtTwoOverPi = std::sqrt(2.0 / std::numbers::pi);

template <typename T>
void SaveInput(const Matrix<T>& x, Saved<T>* saved) {
  if (saved == nullptr) return;
  saved->tensors = {x};
  saved->children.clear();
}

template <typename T>
const Matrix<T>& SavedInput(const Saved<T>* saved, const Matrix<T>& dy, const char* layer) {
  PIPECAST_CHECK(saved != nullptr && saved->tensors.size() == kForwardSaved)
      << layer << ": BackwardInput before Forward";
  const Matrix<T>& x = saved->tensors[0];
  PIPECAST_CHECK(dy.rows() == x.rows() && dy.cols() == x.cols()) << layer << ": dy shape";
  return x;
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
Matrix<T> Relu<T>::Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const {
  PIPECAST_CHECK(params.empty());
  PIPECAST_CHECK(x.cols() == features_) << "relu expects " << features_ << " columns";
  SaveInput(x, saved);
  return x.cwiseMax(T(0));
}

template <typename T>
Matrix<T> Relu<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                 Saved<T>* saved) const {
  PIPECAST_CHECK(params.empty());
  const Matrix<T>& x = SavedInput(saved, dy, "relu");
  return (x.array() > T(0)).select(dy, T(0));
}

template <typename T>
void Relu<T>::BackwardWeight(const Saved<T>&, std::span<T> grad) const {
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
Matrix<T> Gelu<T>::Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const {
  PIPECAST_CHECK(params.empty());
  PIPECAST_CHECK(x.cols() == features_) << "gelu expects " << features_ << " columns";
  SaveInput(x, saved);
  const T c = static_cast<T>(kSqrtTwoOverPi);
  const T a = static_cast<T>(kGeluCubic);
  return x.unaryExpr(
      [c, a](T v) { return T(0.5) * v * (T(1) + std::tanh(c * (v + a * v * v * v))); });
}

template <typename T>
Matrix<T> Gelu<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                 Saved<T>* saved) const {
  PIPECAST_CHECK(params.empty());
  const Matrix<T>& x = SavedInput(saved, dy, "gelu");
  const T c = static_cast<T>(kSqrtTwoOverPi);
  const T a = static_cast<T>(kGeluCubic);
  const Matrix<T> slope = x.unaryExpr([c, a](T v) {
    const T t = std::tanh(c * (v + a * v * v * v));
    return T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * c * (T(1) + T(3) * a * v * v);
  });
  return dy.cwiseProduct(slope);
}

template <typename T>
void Gelu<T>::BackwardWeight(const Saved<T>&, std::span<T> grad) const {
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
