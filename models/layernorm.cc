#include "models/layernorm.h"

#include <cmath>

#include "common/check.h"
#include "models/eigen_maps.h"

namespace pipecast::models {
namespace {
// Saved::tensors: [xhat, rstd (rows x 1)] after Forward, [xhat, rstd, dy] after BackwardInput.
enum SavedIndex { kNormalized = 0, kRstd = 1, kOutputGrad = 2 };
constexpr size_t kForwardSaved = 2;
constexpr size_t kBackwardSaved = 3;
}  // namespace

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
Matrix<T> LayerNorm<T>::Forward(std::span<const T> params, const Matrix<T>& x,
                                Saved<T>* saved) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(x.cols() == features_) << "layernorm expects " << features_ << " columns";
  int64_t offset = 0;
  const auto gamma = TakeRow(params, features_, &offset);
  const auto beta = TakeRow(params, features_, &offset);
  const T inv_d = T(1) / static_cast<T>(features_);
  Matrix<T> xhat = x.colwise() - x.rowwise().sum() * inv_d;
  Matrix<T> rstd =
      ((xhat.array().square().rowwise().sum() * inv_d + static_cast<T>(kLayerNormEps)).rsqrt())
          .matrix();
  xhat.array().colwise() *= rstd.col(0).array();
  Matrix<T> y = (xhat.array().rowwise() * gamma.array()).rowwise() + beta.array();
  if (saved != nullptr) {
    saved->tensors.clear();  // moved in one by one: an initializer list would copy
    saved->tensors.push_back(std::move(xhat));
    saved->tensors.push_back(std::move(rstd));
    saved->children.clear();
  }
  return y;
}

template <typename T>
Matrix<T> LayerNorm<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                      Saved<T>* saved) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(saved != nullptr && saved->tensors.size() >= kForwardSaved)
      << "layernorm: BackwardInput before Forward";
  const Matrix<T>& xhat = saved->tensors[kNormalized];
  const Matrix<T>& rstd = saved->tensors[kRstd];
  PIPECAST_CHECK(dy.rows() == xhat.rows() && dy.cols() == features_);
  int64_t offset = 0;
  const auto gamma = TakeRow(params, features_, &offset);
  const T inv_d = T(1) / static_cast<T>(features_);
  const Matrix<T> g = dy.array().rowwise() * gamma.array();
  const Matrix<T> mean_g = g.rowwise().sum() * inv_d;                      // rows x 1
  const Matrix<T> mean_gx = g.cwiseProduct(xhat).rowwise().sum() * inv_d;  // rows x 1
  Matrix<T> dx = g - xhat.cwiseProduct(mean_gx.replicate(1, features_));
  dx.colwise() -= mean_g.col(0);
  dx.array().colwise() *= rstd.col(0).array();
  saved->tensors.resize(kForwardSaved);
  saved->tensors.push_back(dy);
  return dx;
}

template <typename T>
void LayerNorm<T>::BackwardWeight(const Saved<T>& saved, std::span<T> grad) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params());
  PIPECAST_CHECK(saved.tensors.size() == kBackwardSaved)
      << "layernorm: BackwardWeight before BackwardInput";
  const Matrix<T>& xhat = saved.tensors[kNormalized];
  const Matrix<T>& dy = saved.tensors[kOutputGrad];
  int64_t offset = 0;
  auto dgamma = TakeRow(grad, features_, &offset);
  auto dbeta = TakeRow(grad, features_, &offset);
  dgamma += dy.cwiseProduct(xhat).colwise().sum();
  dbeta += dy.colwise().sum();
}

template <typename T>
double LayerNorm<T>::ForwardFlops(int64_t rows) const {
  return 7.0 * static_cast<double>(rows) * static_cast<double>(features_);
}

template class LayerNorm<float>;
template class LayerNorm<double>;

}  // namespace pipecast::models
