#include "models/embedding.h"

#include "common/check.h"
#include "models/eigen_maps.h"
#include "models/init.h"

namespace pipecast::models {
template <typename T>
Embedding<T>::Embedding(int64_t vocab, int64_t sequence, int64_t hidden)
    : vocab_(vocab), sequence_(sequence), hidden_(hidden) {
  PIPECAST_CHECK(vocab > 0 && sequence > 0 && hidden > 0);
}

template <typename T>
int64_t Embedding<T>::TokenId(T value) const {
  // The range test comes first: converting NaN or a huge value to an integer is undefined.
  const bool in_range = value >= T(0) && value < static_cast<T>(vocab_);
  PIPECAST_CHECK(in_range && static_cast<T>(static_cast<int64_t>(value)) == value)
      << "embedding: token id " << value << " is not an integer in [0, " << vocab_ << ")";
  return static_cast<int64_t>(value);
}

template <typename T>
void Embedding<T>::Init(std::span<T> params, Rng& rng) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  FillNormal(params, kEmbeddingInitStddev, rng);
}

template <typename T>
LayerMemory Embedding<T>::Memory(int64_t) const {
  return {};
}

template <typename T>
void Embedding<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T>,
                               std::span<T>) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(x.cols() == 1) << "embedding expects one column of token ids";
  PIPECAST_CHECK(x.rows() % sequence_ == 0)
      << "embedding: " << x.rows() << " rows is not a multiple of sequence " << sequence_;
  PIPECAST_CHECK(y.rows() == x.rows() && y.cols() == hidden_);
  int64_t offset = 0;
  const auto tokens = TakeMatrix(params, vocab_, hidden_, &offset);
  const auto positions = TakeMatrix(params, sequence_, hidden_, &offset);
  for (int64_t r = 0; r < x.rows(); ++r) {
    y.row(r) = tokens.row(TokenId(x(r, 0))) + positions.row(r % sequence_);
  }
}

template <typename T>
void Embedding<T>::BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T>,
                                     ConstView<T> dy, View<T> dx, std::span<T>,
                                     std::span<T>) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params());
  PIPECAST_CHECK(dy.rows() == x.rows() && dy.cols() == hidden_);
  if (!IsEmpty(dx)) dx.setZero();
}

template <typename T>
void Embedding<T>::BackwardWeightInto(ConstView<T> x, ConstView<T>, ConstView<T> dy,
                                      std::span<const T>, std::span<T> grad, std::span<T>) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params());
  PIPECAST_CHECK(dy.rows() == x.rows() && dy.cols() == hidden_);
  int64_t offset = 0;
  auto tokens = TakeMatrix(grad, vocab_, hidden_, &offset);
  auto positions = TakeMatrix(grad, sequence_, hidden_, &offset);
  for (int64_t r = 0; r < dy.rows(); ++r) {
    tokens.row(TokenId(x(r, 0))) += dy.row(r);
    positions.row(r % sequence_) += dy.row(r);
  }
}

template <typename T>
double Embedding<T>::ForwardFlops(int64_t rows) const {
  return static_cast<double>(rows) * static_cast<double>(hidden_);
}

template class Embedding<float>;
template class Embedding<double>;

}  // namespace pipecast::models
