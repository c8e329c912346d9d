#include "models/linear.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "models/eigen_maps.h"
#include "models/gemm.h"
#include "models/init.h"

namespace pipecast::models {

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
LayerMemory Linear<T>::Memory(int64_t rows) const {
  return {0, std::max({GemmScratch<T>(rows, out_, in_), GemmScratch<T>(rows, in_, out_),
                       GemmScratch<T>(out_, in_, rows)})};
}

template <typename T>
void Linear<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y,
                            std::span<T> /*saved*/, std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(x.cols() == in_ && y.cols() == out_ && y.rows() == x.rows())
      << "linear " << in_ << " -> " << out_ << " got " << x.cols() << " columns";
  int64_t offset = 0;
  const auto w = TakeMatrix(params, out_, in_, &offset);
  const auto b = TakeRow(params, out_, &offset);
  Gemm<T>(Op::kNone, Op::kTranspose, x.rows(), out_, in_, x.data(), in_, w.data(), in_, y.data(),
          out_, false, scratch);
  y.rowwise() += b;
}

template <typename T>
void Linear<T>::BackwardInputInto(std::span<const T> params, ConstView<T> /*x*/, ConstView<T> /*y*/,
                                  ConstView<T> dy, View<T> dx, std::span<T> /*saved*/,
                                  std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(dy.cols() == out_);
  if (IsEmpty(dx)) return;
  PIPECAST_CHECK(dx.cols() == in_ && dx.rows() == dy.rows());
  int64_t offset = 0;
  const auto w = TakeMatrix(params, out_, in_, &offset);
  Gemm<T>(Op::kNone, Op::kNone, dy.rows(), in_, out_, dy.data(), out_, w.data(), in_, dx.data(),
          in_, false, scratch);
}

template <typename T>
void Linear<T>::BackwardWeightInto(ConstView<T> x, ConstView<T> /*y*/, ConstView<T> dy,
                                   std::span<const T> /*saved*/, std::span<T> grad,
                                   std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params());
  PIPECAST_CHECK(x.rows() == dy.rows() && x.cols() == in_ && dy.cols() == out_);
  int64_t offset = 0;
  auto dw = TakeMatrix(grad, out_, in_, &offset);
  auto db = TakeRow(grad, out_, &offset);
  Gemm<T>(Op::kTranspose, Op::kNone, out_, in_, x.rows(), dy.data(), out_, x.data(), in_, dw.data(),
          in_, true, scratch);
  db += dy.colwise().sum();
}

template <typename T>
double Linear<T>::ForwardFlops(int64_t rows) const {
  return 2.0 * static_cast<double>(in_) * static_cast<double>(out_) * static_cast<double>(rows);
}

template class Linear<float>;
template class Linear<double>;

}  // namespace pipecast::models
