#include "models/attention.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"
#include "models/eigen_maps.h"
#include "models/gemm.h"
#include "models/init.h"

namespace pipecast::models {
namespace {

// Row-wise softmax of `scores` in place, keeping only columns <= row (the causal mask); masked
// entries become exactly 0. Subtracting the row maximum keeps exp() from overflowing.
template <typename T, typename Block>
void CausalSoftmax(Block&& scores) {
  const int64_t s = scores.rows();
  for (int64_t t = 0; t < s; ++t) {
    auto visible = scores.row(t).head(t + 1);
    const T max = visible.maxCoeff();
    visible = (visible.array() - max).exp().matrix();
    visible /= visible.sum();
    scores.row(t).tail(s - t - 1).setZero();
  }
}

}  // namespace

template <typename T>
CausalSelfAttention<T>::CausalSelfAttention(int64_t hidden, int64_t heads, int64_t sequence)
    : hidden_(hidden), heads_(heads), sequence_(sequence) {
  PIPECAST_CHECK(hidden > 0 && heads > 0 && sequence > 0 && hidden % heads == 0)
      << "attention hidden " << hidden << " heads " << heads << " sequence " << sequence;
}

template <typename T>
void CausalSelfAttention<T>::Init(std::span<T> params, Rng& rng) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  const double bound = 1.0 / std::sqrt(static_cast<double>(hidden_));
  FillUniform(params, -bound, bound, rng);  // both projections have fan-in h
}

template <typename T>
typename CausalSelfAttention<T>::Layout CausalSelfAttention<T>::LayoutFor(int64_t rows) const {
  PIPECAST_CHECK(rows % sequence_ == 0)
      << "attention: " << rows << " rows is not a multiple of sequence " << sequence_;
  const int64_t h = hidden_, s = sequence_, d = hidden_ / heads_;
  const int64_t samples = rows / s;
  Layout l;
  l.qkv = 0;
  l.probs = l.qkv + rows * 3 * h;
  l.ctx = l.probs + samples * heads_ * s * s;
  l.dqkv = l.ctx + rows * h;
  l.saved = l.dqkv + rows * 3 * h;
  l.dctx = 0;
  l.dp = l.dctx + rows * h;
  l.row_dot = l.dp + s * s;
  l.gemm = l.row_dot + s;
  const int64_t gemm =
      std::max({GemmScratch<T>(rows, 3 * h, h), GemmScratch<T>(rows, h, h),
                GemmScratch<T>(rows, h, 3 * h), GemmScratch<T>(h, h, rows),
                GemmScratch<T>(3 * h, h, rows), GemmScratch<T>(s, s, d), GemmScratch<T>(s, d, s)});
  l.scratch = l.gemm + gemm;
  return l;
}

template <typename T>
LayerMemory CausalSelfAttention<T>::Memory(int64_t rows) const {
  const Layout l = LayoutFor(rows);
  return {l.saved, l.scratch};
}

template <typename T>
void CausalSelfAttention<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y,
                                         std::span<T> saved, std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(x.cols() == hidden_ && y.cols() == hidden_ && y.rows() == x.rows())
      << "attention expects " << hidden_ << " columns";
  const int64_t rows = x.rows(), h = hidden_, s = sequence_, d = hidden_ / heads_;
  const Layout l = LayoutFor(rows);
  const int64_t samples = rows / s;
  int64_t offset = 0;
  const auto w_qkv = TakeMatrix(params, 3 * h, h, &offset);
  const auto b_qkv = TakeRow(params, 3 * h, &offset);
  const auto w_o = TakeMatrix(params, h, h, &offset);
  const auto b_o = TakeRow(params, h, &offset);
  const std::span<T> gemm = scratch.subspan(l.gemm);

  View<T> qkv = MakeView(saved.data() + l.qkv, rows, 3 * h);
  View<T> ctx = MakeView(saved.data() + l.ctx, rows, h);
  T* probs = saved.data() + l.probs;
  Gemm<T>(Op::kNone, Op::kTranspose, rows, 3 * h, h, x.data(), h, w_qkv.data(), h, qkv.data(),
          3 * h, false, gemm);
  qkv.rowwise() += b_qkv;
  const T scale = T(1) / std::sqrt(static_cast<T>(d));
  for (int64_t b = 0; b < samples; ++b) {
    for (int64_t j = 0; j < heads_; ++j) {
      const T* q = qkv.data() + b * s * 3 * h + j * d;
      const T* k = q + h;
      const T* v = q + 2 * h;
      View<T> p = MakeView(probs + (b * heads_ + j) * s * s, s, s);
      Gemm<T>(Op::kNone, Op::kTranspose, s, s, d, q, 3 * h, k, 3 * h, p.data(), s, false, gemm);
      p *= scale;
      CausalSoftmax<T>(p);
      Gemm<T>(Op::kNone, Op::kNone, s, d, s, p.data(), s, v, 3 * h, ctx.data() + b * s * h + j * d,
              h, false, gemm);
    }
  }
  Gemm<T>(Op::kNone, Op::kTranspose, rows, h, h, ctx.data(), h, w_o.data(), h, y.data(), h, false,
          gemm);
  y.rowwise() += b_o;
}

template <typename T>
void CausalSelfAttention<T>::BackwardInputInto(std::span<const T> params, ConstView<T> x,
                                               ConstView<T>, ConstView<T> dy, View<T> dx,
                                               std::span<T> saved, std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(dy.rows() == x.rows() && dy.cols() == hidden_);
  const int64_t rows = x.rows(), h = hidden_, s = sequence_, d = hidden_ / heads_;
  const Layout l = LayoutFor(rows);
  const int64_t samples = rows / s;
  int64_t offset = 0;
  const auto w_qkv = TakeMatrix(params, 3 * h, h, &offset);
  TakeRow(params, 3 * h, &offset);  // bqkv: not needed
  const auto w_o = TakeMatrix(params, h, h, &offset);
  const std::span<T> gemm = scratch.subspan(l.gemm);

  const T* qkv = saved.data() + l.qkv;
  const T* probs = saved.data() + l.probs;
  T* dqkv = saved.data() + l.dqkv;
  View<T> dctx = MakeView(scratch.data() + l.dctx, rows, h);
  View<T> dp = MakeView(scratch.data() + l.dp, s, s);
  auto row_dot = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(scratch.data() + l.row_dot, s);
  Gemm<T>(Op::kNone, Op::kNone, rows, h, h, dy.data(), h, w_o.data(), h, dctx.data(), h, false,
          gemm);
  const T scale = T(1) / std::sqrt(static_cast<T>(d));
  for (int64_t b = 0; b < samples; ++b) {
    for (int64_t j = 0; j < heads_; ++j) {
      const int64_t at = b * s * 3 * h + j * d;
      const T* q = qkv + at;
      const T* k = q + h;
      const T* v = q + 2 * h;
      ConstView<T> p = MakeView(probs + (b * heads_ + j) * s * s, s, s);
      const T* dc = dctx.data() + b * s * h + j * d;
      Gemm<T>(Op::kTranspose, Op::kNone, s, d, s, p.data(), s, dc, h, dqkv + at + 2 * h, 3 * h,
              false, gemm);
      Gemm<T>(Op::kNone, Op::kTranspose, s, s, d, dc, h, v, 3 * h, dp.data(), s, false, gemm);
      // Softmax backward; masked entries have p = 0, so their dS is 0 too.
      row_dot = dp.cwiseProduct(p).rowwise().sum();
      dp = (p.array() * (dp.colwise() - row_dot).array() * scale).matrix();
      Gemm<T>(Op::kNone, Op::kNone, s, d, s, dp.data(), s, k, 3 * h, dqkv + at, 3 * h, false, gemm);
      Gemm<T>(Op::kTranspose, Op::kNone, s, d, s, dp.data(), s, q, 3 * h, dqkv + at + h, 3 * h,
              false, gemm);
    }
  }
  if (IsEmpty(dx)) return;
  Gemm<T>(Op::kNone, Op::kNone, rows, h, 3 * h, dqkv, 3 * h, w_qkv.data(), h, dx.data(), h, false,
          gemm);
}

template <typename T>
void CausalSelfAttention<T>::BackwardWeightInto(ConstView<T> x, ConstView<T>, ConstView<T> dy,
                                                std::span<const T> saved, std::span<T> grad,
                                                std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params());
  PIPECAST_CHECK(dy.rows() == x.rows() && dy.cols() == hidden_);
  const int64_t rows = x.rows(), h = hidden_;
  const Layout l = LayoutFor(rows);
  const std::span<T> gemm = scratch.subspan(l.gemm);
  ConstView<T> ctx = MakeView(saved.data() + l.ctx, rows, h);
  ConstView<T> dqkv = MakeView(saved.data() + l.dqkv, rows, 3 * h);
  int64_t offset = 0;
  auto dw_qkv = TakeMatrix(grad, 3 * h, h, &offset);
  auto db_qkv = TakeRow(grad, 3 * h, &offset);
  auto dw_o = TakeMatrix(grad, h, h, &offset);
  auto db_o = TakeRow(grad, h, &offset);
  Gemm<T>(Op::kTranspose, Op::kNone, 3 * h, h, rows, dqkv.data(), 3 * h, x.data(), h, dw_qkv.data(),
          h, true, gemm);
  Gemm<T>(Op::kTranspose, Op::kNone, h, h, rows, dy.data(), h, ctx.data(), h, dw_o.data(), h, true,
          gemm);
  for (int64_t r = 0; r < rows; ++r) {
    db_qkv += dqkv.row(r);
    db_o += dy.row(r);
  }
}

template <typename T>
double CausalSelfAttention<T>::ForwardFlops(int64_t rows) const {
  const auto h = static_cast<double>(hidden_);
  const auto s = static_cast<double>(sequence_);
  return static_cast<double>(rows) * (8.0 * h * h + 4.0 * s * h);
}

template class CausalSelfAttention<float>;
template class CausalSelfAttention<double>;

}  // namespace pipecast::models
