#include "models/linear.h"

#include <cmath>

#include "common/check.h"
#include "models/eigen_maps.h"
#include "models/init.h"

namespace pipecast::models {
namespace {
// Saved::tensors: [x] after Forward, [x, dy] after BackwardInput.
enum SavedIndex { kInput = 0, kOutputGrad = 1 };
constexpr size_t kForwardSaved = 1;
constexpr size_t kBackwardSaved = 2;
}  // namespace

template <typename T>
Linear<T>::Linear(int64_t in, int64_t out) : in_(in), out_(out) {
  PIPECAST_CHECK(in > 0 && out > 0) << "linear " << in << " -> " << out;
}

template <typename T>
void Linear<T>::Init(std::span<T> params, Rng& rng) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  FillUniform(params, -bound, bound, rng);  // W then b, both U(-bound, bound)
}

template <typename T>
Matrix<T> Linear<T>::Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(x.cols() == in_) << "linear expects " << in_ << " columns, got " << x.cols();
  int64_t offset = 0;
  const auto w = TakeMatrix(params, out_, in_, &offset);
  const auto b = TakeRow(params, out_, &offset);
  Matrix<T> y(x.rows(), out_);
  y.noalias() = x * w.transpose();
  y.rowwise() += b;
  if (saved != nullptr) {
    saved->tensors = {x};
    saved->children.clear();
  }
  return y;
}

template <typename T>
Matrix<T> Linear<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                   Saved<T>* saved) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(saved != nullptr && saved->tensors.size() >= kForwardSaved)
      << "linear: BackwardInput before Forward";
  PIPECAST_CHECK(dy.cols() == out_ && dy.rows() == saved->tensors[kInput].rows());
  int64_t offset = 0;
  const auto w = TakeMatrix(params, out_, in_, &offset);
  Matrix<T> dx(dy.rows(), in_);
  dx.noalias() = dy * w;
  saved->tensors.resize(kForwardSaved);
  saved->tensors.push_back(dy);
  return dx;
}

template <typename T>
void Linear<T>::BackwardWeight(const Saved<T>& saved, std::span<T> grad) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params());
  PIPECAST_CHECK(saved.tensors.size() == kBackwardSaved)
      << "linear: BackwardWeight before BackwardInput";
  const Matrix<T>& x = saved.tensors[kInput];
  const Matrix<T>& dy = saved.tensors[kOutputGrad];
  int64_t offset = 0;
  auto dw = TakeMatrix(grad, out_, in_, &offset);
  auto db = TakeRow(grad, out_, &offset);
  dw.noalias() += dy.transpose() * x;
  db += dy.colwise().sum();
}

template <typename T>
double Linear<T>::ForwardFlops(int64_t rows) const {
  return 2.0 * static_cast<double>(in_) * static_cast<double>(out_) * static_cast<double>(rows);
}

template class Linear<float>;
template class Linear<double>;

}  // namespace pipecast::models
