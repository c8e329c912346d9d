// CausalSelfAttention: GPT's multi-head self-attention with a causal mask.
//
// Rows are tokens, batch * sequence in order (row r is position r % sequence of sample
// r / sequence); each sample attends only within itself and only to positions <= its own.
// With h = hidden, a = heads, d = h / a, per sample (S = sequence rows):
//   qkv = x Wqkv^T + bqkv                [S x 3h]: q = cols [0, h), k = [h, 2h), v = [2h, 3h);
//                                        head j uses cols [j d, (j + 1) d) of each
//   P_j = softmax(q_j k_j^T / sqrt(d) + causal mask)   [S x S], row-wise, stable (max first)
//   ctx[:, head j] = P_j v_j             [S x h]
//   y = ctx Wo^T + bo
// Parameters, in order: Wqkv [3h x h], bqkv [3h], Wo [h x h], bo [h] (PyTorch layout).
// Init: like two torch.nn.Linear layers, U(-1/sqrt(h), 1/sqrt(h)).
// Saved: qkv, every P_j (sample-major, then head) and ctx from Forward, and dqkv from
// BackwardInput, which uses the projection weights it is given (Wo', Wqkv') with the forward's
// activations:
//   dctx = dy Wo';  dv_j = P_j^T dctx_j;  dP_j = dctx_j v_j^T;
//   dS_j = P_j * (dP_j - rowsum(dP_j * P_j)) / sqrt(d);  dq_j = dS_j k_j;  dk_j = dS_j^T q_j
//   dx = dqkv Wqkv'
// BackwardWeight: dWo += dy^T ctx, dbo += colsum(dy), dWqkv += dqkv^T x, dbqkv += colsum(dqkv).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "models/layer.h"

namespace pipecast::models {

template <typename T>
class CausalSelfAttention final : public Layer<T> {
 public:
  // REQUIRES: all positive; heads divides hidden.
  CausalSelfAttention(int64_t hidden, int64_t heads, int64_t sequence);
  int64_t hidden() const { return hidden_; }
  int64_t heads() const { return heads_; }
  int64_t sequence() const { return sequence_; }

  std::string name() const override { return "attention"; }
  int64_t num_params() const override { return 4 * hidden_ * hidden_ + 4 * hidden_; }
  int64_t input_width() const override { return hidden_; }
  int64_t output_width() const override { return hidden_; }
  void Init(std::span<T> params, Rng& rng) const override;
  // REQUIRES (every pass): x is rows x hidden(), rows a multiple of sequence().
  PIPECAST_LAYER_PASSES(T);
  // rows * (8 h^2 + 4 S h): the projections (6 h^2 + 2 h^2 per row) and the full (unmasked)
  // S x S score and context products, as Megatron-LM and the simulator's cost model count them.
  double ForwardFlops(int64_t rows) const override;

 private:
  // Offsets into `saved` and `scratch` for a microbatch of `rows` rows.
  struct Layout {
    int64_t qkv, probs, ctx, dqkv, saved;      // saved
    int64_t dctx, dp, row_dot, gemm, scratch;  // scratch
  };
  Layout LayoutFor(int64_t rows) const;

  int64_t hidden_;
  int64_t heads_;
  int64_t sequence_;
};

}  // namespace pipecast::models
