#include "models/attention.h"

#include <cmath>

#include "common/check.h"
#include "models/eigen_maps.h"
#include "models/init.h"

namespace pipecast::models {
namespace {

// Saved::tensors after Forward: [x, qkv, probs, ctx]; probs stacks the S x S matrices P_j of
// every (sample, head) pair, sample-major. BackwardInput appends [dy, dqkv].
enum SavedIndex { kInput = 0, kQkv = 1, kProbs = 2, kContext = 3, kOutputGrad = 4, kQkvGrad = 5 };
constexpr size_t kForwardSaved = 4;
constexpr size_t kBackwardSaved = 6;

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
Matrix<T> CausalSelfAttention<T>::Forward(std::span<const T> params, const Matrix<T>& x,
                                          Saved<T>* saved) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(x.cols() == hidden_) << "attention expects " << hidden_ << " columns";
  PIPECAST_CHECK(x.rows() % sequence_ == 0)
      << "attention: " << x.rows() << " rows is not a multiple of sequence " << sequence_;
  const int64_t h = hidden_, s = sequence_, d = hidden_ / heads_;
  const int64_t samples = x.rows() / s;
  int64_t offset = 0;
  const auto w_qkv = TakeMatrix(params, 3 * h, h, &offset);
  const auto b_qkv = TakeRow(params, 3 * h, &offset);
  const auto w_o = TakeMatrix(params, h, h, &offset);
  const auto b_o = TakeRow(params, h, &offset);

  Matrix<T> qkv(x.rows(), 3 * h);
  qkv.noalias() = x * w_qkv.transpose();
  qkv.rowwise() += b_qkv;
  Matrix<T> probs(samples * heads_ * s, s);
  Matrix<T> ctx(x.rows(), h);
  const T scale = T(1) / std::sqrt(static_cast<T>(d));
  for (int64_t b = 0; b < samples; ++b) {
    for (int64_t j = 0; j < heads_; ++j) {
      const auto q = qkv.block(b * s, j * d, s, d);
      const auto k = qkv.block(b * s, h + j * d, s, d);
      const auto v = qkv.block(b * s, 2 * h + j * d, s, d);
      auto p = probs.block((b * heads_ + j) * s, 0, s, s);
      p.noalias() = (q * k.transpose()) * scale;
      CausalSoftmax<T>(p);
      ctx.block(b * s, j * d, s, d).noalias() = p * v;
    }
  }
  Matrix<T> y(x.rows(), h);
  y.noalias() = ctx * w_o.transpose();
  y.rowwise() += b_o;
  if (saved != nullptr) {
    // Moved in one by one: an initializer list would copy.
    saved->tensors.clear();
    saved->tensors.push_back(x);
    saved->tensors.push_back(std::move(qkv));
    saved->tensors.push_back(std::move(probs));
    saved->tensors.push_back(std::move(ctx));
    saved->children.clear();
  }
  return y;
}

template <typename T>
Matrix<T> CausalSelfAttention<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                                Saved<T>* saved) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(saved != nullptr && saved->tensors.size() >= kForwardSaved)
      << "attention: BackwardInput before Forward";
  const Matrix<T>& qkv = saved->tensors[kQkv];
  const Matrix<T>& probs = saved->tensors[kProbs];
  PIPECAST_CHECK(dy.rows() == qkv.rows() && dy.cols() == hidden_);
  const int64_t h = hidden_, s = sequence_, d = hidden_ / heads_;
  const int64_t samples = dy.rows() / s;
  int64_t offset = 0;
  const auto w_qkv = TakeMatrix(params, 3 * h, h, &offset);
  TakeRow(params, 3 * h, &offset);  // bqkv: not needed
  const auto w_o = TakeMatrix(params, h, h, &offset);

  Matrix<T> dctx(dy.rows(), h);
  dctx.noalias() = dy * w_o;
  Matrix<T> dqkv(dy.rows(), 3 * h);
  Matrix<T> dp(s, s);
  const T scale = T(1) / std::sqrt(static_cast<T>(d));
  for (int64_t b = 0; b < samples; ++b) {
    for (int64_t j = 0; j < heads_; ++j) {
      const auto q = qkv.block(b * s, j * d, s, d);
      const auto k = qkv.block(b * s, h + j * d, s, d);
      const auto v = qkv.block(b * s, 2 * h + j * d, s, d);
      const auto p = probs.block((b * heads_ + j) * s, 0, s, s);
      const auto dc = dctx.block(b * s, j * d, s, d);
      dqkv.block(b * s, 2 * h + j * d, s, d).noalias() = p.transpose() * dc;
      dp.noalias() = dc * v.transpose();
      // Softmax backward; masked entries have p = 0, so their dS is 0 too.
      const Matrix<T> row_dot = dp.cwiseProduct(p).rowwise().sum();
      dp = (p.array() * (dp.colwise() - row_dot.col(0)).array() * scale).matrix();
      dqkv.block(b * s, j * d, s, d).noalias() = dp * k;
      dqkv.block(b * s, h + j * d, s, d).noalias() = dp.transpose() * q;
    }
  }
  Matrix<T> dx(dy.rows(), h);
  dx.noalias() = dqkv * w_qkv;
  saved->tensors.resize(kForwardSaved);
  saved->tensors.push_back(dy);
  saved->tensors.push_back(std::move(dqkv));
  return dx;
}

template <typename T>
void CausalSelfAttention<T>::BackwardWeight(const Saved<T>& saved, std::span<T> grad) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params());
  PIPECAST_CHECK(saved.tensors.size() == kBackwardSaved)
      << "attention: BackwardWeight before BackwardInput";
  const Matrix<T>& x = saved.tensors[kInput];
  const Matrix<T>& ctx = saved.tensors[kContext];
  const Matrix<T>& dy = saved.tensors[kOutputGrad];
  const Matrix<T>& dqkv = saved.tensors[kQkvGrad];
  const int64_t h = hidden_;
  int64_t offset = 0;
  auto dw_qkv = TakeMatrix(grad, 3 * h, h, &offset);
  auto db_qkv = TakeRow(grad, 3 * h, &offset);
  auto dw_o = TakeMatrix(grad, h, h, &offset);
  auto db_o = TakeRow(grad, h, &offset);
  dw_qkv.noalias() += dqkv.transpose() * x;
  db_qkv += dqkv.colwise().sum();
  dw_o.noalias() += dy.transpose() * ctx;
  db_o += dy.colwise().sum();
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
