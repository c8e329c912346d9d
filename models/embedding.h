// Embedding: GPT's token embedding plus learned position embedding.
//
// Input: one column of token ids stored as values of T (exact in float up to 2^24), one row per
// token, rows = batch * sequence in order (row r is position r % sequence of sample
// r / sequence). Output: rows x hidden, y[r] = token[id_r] + position[r % sequence].
// Parameters: the token table [vocab x hidden], then the position table [sequence x hidden].
// Init: N(0, 0.02^2) for both tables, as GPT-2.
// Token ids have no gradient: BackwardInput returns zeros (rows x 1) and records dy;
// BackwardWeight adds each dy row to its token's and its position's row.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "models/layer.h"

namespace pipecast::models {

inline constexpr double kEmbeddingInitStddev = 0.02;  // GPT-2's initializer_range

template <typename T>
class Embedding final : public Layer<T> {
 public:
  // REQUIRES: all positive.
  Embedding(int64_t vocab, int64_t sequence, int64_t hidden);
  int64_t vocab() const { return vocab_; }
  int64_t sequence() const { return sequence_; }
  int64_t hidden() const { return hidden_; }

  std::string name() const override { return "embedding"; }
  int64_t num_params() const override { return (vocab_ + sequence_) * hidden_; }
  void Init(std::span<T> params, Rng& rng) const override;
  // REQUIRES: x has one column; x.rows() is a multiple of sequence(); every value is an integer
  // in [0, vocab()).
  Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const override;
  Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                          Saved<T>* saved) const override;
  void BackwardWeight(const Saved<T>& saved, std::span<T> grad) const override;
  // One addition per output element (the position embedding); the lookup is not counted.
  double ForwardFlops(int64_t rows) const override;

 private:
  int64_t TokenId(T value) const;

  int64_t vocab_;
  int64_t sequence_;
  int64_t hidden_;
};

}  // namespace pipecast::models
