// Embedding: GPT's token embedding plus learned position embedding.
//
// Input: one column of token ids stored as values of T (exact in float up to 2^24), one row per
// token, rows = batch * sequence in order (row r is position r % sequence of sample
// r / sequence). Output: rows x hidden, y[r] = token[id_r] + position[r % sequence].
// Parameters: the token table [vocab x hidden], then the position table [sequence x hidden].
// Init: N(0, 0.02^2) for both tables, as GPT-2.
// Token ids have no gradient: BackwardInput writes zeros (rows x 1); BackwardWeight adds each dy
// row to its token's and its position's row, in row order. Saved: nothing (x holds the ids).
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
  int64_t input_width() const override { return 1; }
  int64_t output_width() const override { return hidden_; }
  void Init(std::span<T> params, Rng& rng) const override;
  // The input has one column of token ids: integers in [0, vocab()); rows is a multiple of
  // sequence().
  PIPECAST_LAYER_PASSES(T);
  // One addition per output element (the position embedding); the lookup is not counted.
  double ForwardFlops(int64_t rows) const override;

 private:
  int64_t TokenId(T value) const;

  int64_t vocab_;
  int64_t sequence_;
  int64_t hidden_;
};

}  // namespace pipecast::models
