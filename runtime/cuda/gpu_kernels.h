// Launch functions of the GPU layers' kernels (the kernels are in the .cu files named below).
// Every function enqueues its work on `stream` and returns at once; pointers are device memory,
// matrices row-major with `cols` columns. None uses floating-point atomics: sums run in a fixed
// order (one thread's sequential sum, then a fixed tree), so a launch gives the same bits every
// time. A launch that fails to start (a bug: bad configuration) aborts; faults inside kernels
// surface at the caller's next synchronisation (launch_check.h).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace pipecast::runtime::cuda {

// --- elementwise_kernels.cu -------------------------------------------------------------------
// y = std::max(x, 0) (x < 0 ? 0 : x, as the CPU layer's cwiseMax: a NaN stays NaN, -0 stays -0,
// where fmaxf would give 0); dx = dy where x > 0, else 0. (n elements; y may be x.)
void LaunchRelu(const float* x, float* y, int64_t n, cudaStream_t stream);
void LaunchReluBackward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t stream);
// y = GeluValue(x); dx = dy * GeluSlope(x) (models/elementwise.h, the CPU's own functions).
void LaunchGelu(const float* x, float* y, int64_t n, cudaStream_t stream);
// y[i] = x[i] rounded to bfloat16 (nearest, ties to even); y holds n 2-byte values.
void LaunchToBfloat16(const float* x, void* y, int64_t n, cudaStream_t stream);
void LaunchGeluBackward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t stream);
// y[r, c] += bias[c] for a rows x cols matrix.
void LaunchAddBias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);
// out = a + b (n elements; out may be a or b).
void LaunchAdd(const float* a, const float* b, float* out, int64_t n, cudaStream_t stream);
// out[c] += sum over r of a[r, c] (times b[r, c] when b is not null), for rows x cols matrices:
// thread (c, j) sums rows j, j + 32, ... in order, then the 32 partial sums are added in order
// of j and the result added to out[c]. REQUIRES: out overlaps neither a nor b.
void LaunchColumnSums(const float* a, const float* b, int64_t rows, int64_t cols, float* out,
                      cudaStream_t stream);

// --- layernorm_kernels.cu ---------------------------------------------------------------------
// models::LayerNorm per row of width `features` (eps: models::kLayerNormEps as a float): writes
// y, xhat (rows x features) and rstd (rows). Backward: dx from dy, gamma and the forward's xhat
// and rstd.
void LaunchLayerNormForward(const float* x, const float* gamma, const float* beta, float eps,
                            float* y, float* xhat, float* rstd, int64_t rows, int64_t features,
                            cudaStream_t stream);
void LaunchLayerNormBackward(const float* dy, const float* gamma, const float* xhat,
                             const float* rstd, float* dx, int64_t rows, int64_t features,
                             cudaStream_t stream);

// --- attention_kernels.cu ---------------------------------------------------------------------
// `count` consecutive S x S score matrices (S = sequence), in place: row t of each becomes
// softmax(scale * row[0..t]) (the maximum subtracted first) and 0 beyond t, as
// models::CausalSelfAttention's forward computes it.
void LaunchCausalSoftmax(float* scores, int64_t count, int64_t sequence, float scale,
                         cudaStream_t stream);
// In place over `count` S x S matrices: dp becomes p * (dp - rowsum(dp * p)) * scale (the
// softmax backward of the CPU layer; masked entries, where p = 0, become 0).
void LaunchSoftmaxBackward(const float* probs, float* dp, int64_t count, int64_t sequence,
                           float scale, cudaStream_t stream);

// --- embedding_kernels.cu ---------------------------------------------------------------------
// y[r] = tokens[id_r] + positions[r % sequence], id_r = x[r] (token ids stored as floats). A row
// whose id is not an integer in [0, vocab) gets NaNs (the CPU layer aborts there; the device
// cannot, so the loss shows it).
void LaunchEmbeddingForward(const float* ids, const float* tokens, const float* positions, float* y,
                            int64_t rows, int64_t vocab, int64_t sequence, int64_t hidden,
                            cudaStream_t stream);
// Bytes of scratch LaunchEmbeddingBackward needs for `rows` rows (its sort buffers and CUB's
// temporary storage for the current device). Aborts when no device can be queried.
int64_t EmbeddingBackwardScratchBytes(int64_t rows, int64_t vocab);
// grad_tokens[id_r] += dy[r] and grad_positions[r % sequence] += dy[r], each gradient row
// receiving its dy rows in increasing r, like the CPU layer (so the sums are bit-identical):
// the rows are stably sorted by id (cub::DeviceRadixSort), and each run of equal ids is summed
// by one block in order. Rows with invalid ids are skipped. `scratch` holds
// EmbeddingBackwardScratchBytes(rows, vocab) bytes, 256-byte aligned.
void LaunchEmbeddingBackward(const float* ids, const float* dy, float* grad_tokens,
                             float* grad_positions, int64_t rows, int64_t vocab, int64_t sequence,
                             int64_t hidden, void* scratch, cudaStream_t stream);

// --- loss_kernels.cu --------------------------------------------------------------------------
// See SoftmaxCrossEntropy in gpu_stage.h; `row_scratch` holds 2 * rows doubles.
void LaunchSoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t rows,
                               int64_t classes, double scale, float* dlogits, double* loss,
                               long long* correct, double* row_scratch, cudaStream_t stream);

}  // namespace pipecast::runtime::cuda
