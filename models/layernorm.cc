#include "models/layernorm.h"

#include <cmath>

#include "common/check.h"
#include "models/eigen_maps.h"

namespace pipecast::models {

template <typename T>
LayerNorm<T>::LayerNorm(int64_t features) : features_(features) {
  PIPECAST_CHECK(features > 0);
}

template <typename T>
void LayerNorm<T>::Init(std::span<T> params, Rng&) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  int64_t offset = 0;
  TakeRow(params, features_, &offset).setOnes();
  TakeRow(params, features_, &offset).setZero();
}

template <typename T>
LayerMemory LayerNorm<T>::Memory(int64_t rows) const {
  return {rows * features_ + rows, features_};
}

template <typename T>
void LayerNorm<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y,
                               std::span<T> saved, std::span<T> /*scratch*/) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(x.cols() == features_ && y.cols() == features_ && y.rows() == x.rows())
      << "layernorm expects " << features_ << " columns";
  const int64_t rows = x.rows();
  int64_t offset = 0;
  const auto gamma = TakeRow(params, features_, &offset);
  const auto beta = TakeRow(params, features_, &offset);
  View<T> xhat = MakeView(saved.data(), rows, features_);
  T* rstd = saved.data() + rows * features_;
  const T inv_d = T(1) / static_cast<T>(features_);
  for (int64_t r = 0; r < rows; ++r) {
    const T mean = x.row(r).sum() * inv_d;
    xhat.row(r) = x.row(r).array() - mean;
    const T var = xhat.row(r).squaredNorm() * inv_d;
    rstd[r] = T(1) / std::sqrt(var + static_cast<T>(kLayerNormEps));
    xhat.row(r) *= rstd[r];
    y.row(r) = (xhat.row(r).array() * gamma.array() + beta.array()).matrix();
  }
}

template <typename T>
void LayerNorm<T>::BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T>,
                                     ConstView<T> dy, View<T> dx, std::span<T> saved,
                                     std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(dy.rows() == x.rows() && dy.cols() == features_);
  if (IsEmpty(dx)) return;
  const int64_t rows = x.rows();
  int64_t offset = 0;
  const auto gamma = TakeRow(params, features_, &offset);
  ConstView<T> xhat = MakeConstView<T>(saved.data(), rows, features_);
  const T* rstd = saved.data() + rows * features_;
  auto g = RowVectorMap<T>(scratch.data(), features_);
  const T inv_d = T(1) / static_cast<T>(features_);
  for (int64_t r = 0; r < rows; ++r) {
    g = (dy.row(r).array() * gamma.array()).matrix();
    const T mean_g = g.sum() * inv_d;
    const T mean_gx = g.dot(xhat.row(r)) * inv_d;
    dx.row(r) = ((g - xhat.row(r) * mean_gx).array() - mean_g) * rstd[r];
  }
}

template <typename T>
void LayerNorm<T>::BackwardWeightInto(ConstView<T> x, ConstView<T>, ConstView<T> dy,
                                      std::span<const T> saved, std::span<T> grad,
                                      std::span<T>) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params());
  PIPECAST_CHECK(dy.rows() == x.rows() && dy.cols() == features_);
  const int64_t rows = x.rows();
  ConstView<T> xhat = MakeView(saved.data(), rows, features_);
  int64_t offset = 0;
  auto dgamma = TakeRow(grad, features_, &offset);
  auto dbeta = TakeRow(grad, features_, &offset);
  for (int64_t r = 0; r < rows; ++r) {
    dgamma += dy.row(r).cwiseProduct(xhat.row(r));
    dbeta += dy.row(r);
  }
}

template <typename T>
double LayerNorm<T>::ForwardFlops(int64_t rows) const {
  return 7.0 * static_cast<double>(rows) * static_cast<double>(features_);
}

template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace pipecast::models
