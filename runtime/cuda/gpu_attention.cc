// models::CausalSelfAttention on the device: the projections and the per-head score and
// context products are cuBLASLt GEMMs (batched over the heads of one sample), the causal
// softmax and its backward are row kernels (attention_kernels.cu). The products and their
// operands are exactly the CPU layer's (models/attention.cc), so only summation order and the
// exponential (CUDA's expf, not Eigen's) differ.
#include <cmath>

#include "common/check.h"
#include "runtime/cuda/gemm.h"
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/gpu_layers.h"

namespace pipecast::runtime::cuda {
namespace {

// Parameters: Wqkv [3h x h], bqkv [3h], Wo [h x h], bo [h]. Saved: qkv [rows x 3h], P
// [samples x heads x S x S], ctx [rows x h], dqkv [rows x 3h]. Scratch: dctx [rows x h], then
// one sample's dP [heads x S x S].
class GpuAttention final : public GpuLayer {
 public:
  GpuAttention(int64_t hidden, int64_t heads, int64_t sequence)
      : h_(hidden), heads_(heads), s_(sequence), d_(hidden / heads) {
    PIPECAST_CHECK(hidden > 0 && heads > 0 && sequence > 0 && hidden % heads == 0);
  }
  int64_t num_params() const override { return 4 * h_ * h_ + 4 * h_; }
  int64_t input_width() const override { return h_; }
  int64_t output_width() const override { return h_; }
  models::LayerMemory Memory(int64_t rows) const override {
    const int64_t samples = Samples(rows);
    return {rows * 3 * h_ + samples * heads_ * s_ * s_ + rows * h_ + rows * 3 * h_,
            rows * h_ + heads_ * s_ * s_};
  }
  void Forward(const float* params, const float* x, float* y, float* saved, float* scratch,
               int64_t rows, const GpuContext& ctx) const override;
  void BackwardInput(const float* params, const float* x, const float* y, const float* dy,
                     float* dx, float* saved, float* scratch, int64_t rows,
                     const GpuContext& ctx) const override;
  void BackwardWeight(const float* x, const float* y, const float* dy, const float* saved,
                      float* grad, float* scratch, int64_t rows,
                      const GpuContext& ctx) const override;

 private:
  int64_t Samples(int64_t rows) const {
    PIPECAST_CHECK(rows % s_ == 0)
        << "attention: " << rows << " rows is not a multiple of sequence " << s_;
    return rows / s_;
  }
  // The CPU layer's 1 / sqrt(d), in float.
  float Scale() const { return 1.0f / std::sqrt(static_cast<float>(d_)); }

  int64_t h_, heads_, s_, d_;
};

void GpuAttention::Forward(const float* params, const float* x, float* y, float* saved, float*,
                           int64_t rows, const GpuContext& ctx) const {
  const int64_t samples = Samples(rows), ss = s_ * s_, w = 3 * h_;
  const float* w_qkv = params;
  const float* b_qkv = w_qkv + 3 * h_ * h_;
  const float* w_o = b_qkv + 3 * h_;
  const float* b_o = w_o + h_ * h_;
  float* qkv = saved;
  float* probs = qkv + rows * w;
  float* context = probs + samples * heads_ * ss;
  Gemm& gemm = *ctx.gemm;
  gemm.Multiply(Op::kNone, Op::kTranspose, rows, w, h_, x, h_, w_qkv, h_, qkv, w, false,
                ctx.stream);
  LaunchAddBias(qkv, b_qkv, rows, w, ctx.stream);
  for (int64_t b = 0; b < samples; ++b) {  // P_j = q_j k_j^T for every head j of sample b
    const float* q = qkv + b * s_ * w;
    gemm.MultiplyBatched(Op::kNone, Op::kTranspose, s_, s_, d_, q, w, d_, q + h_, w, d_,
                         probs + b * heads_ * ss, s_, ss, heads_, false, ctx.stream);
  }
  LaunchCausalSoftmax(probs, samples * heads_, s_, Scale(), ctx.stream);
  for (int64_t b = 0; b < samples; ++b) {  // ctx_j = P_j v_j
    const float* v = qkv + b * s_ * w + 2 * h_;
    gemm.MultiplyBatched(Op::kNone, Op::kNone, s_, d_, s_, probs + b * heads_ * ss, s_, ss, v, w,
                         d_, context + b * s_ * h_, h_, d_, heads_, false, ctx.stream);
  }
  gemm.Multiply(Op::kNone, Op::kTranspose, rows, h_, h_, context, h_, w_o, h_, y, h_, false,
                ctx.stream);
  LaunchAddBias(y, b_o, rows, h_, ctx.stream);
}

void GpuAttention::BackwardInput(const float* params, const float*, const float*, const float* dy,
                                 float* dx, float* saved, float* scratch, int64_t rows,
                                 const GpuContext& ctx) const {
  const int64_t samples = Samples(rows), ss = s_ * s_, w = 3 * h_;
  const float* w_qkv = params;
  const float* w_o = w_qkv + 3 * h_ * h_ + 3 * h_;
  const float* qkv = saved;
  const float* probs = qkv + rows * w;
  float* dqkv = saved + rows * w + samples * heads_ * ss + rows * h_;
  float* dctx = scratch;
  float* dp = scratch + rows * h_;
  Gemm& gemm = *ctx.gemm;
  const cudaStream_t st = ctx.stream;
  gemm.Multiply(Op::kNone, Op::kNone, rows, h_, h_, dy, h_, w_o, h_, dctx, h_, false, st);
  for (int64_t b = 0; b < samples; ++b) {
    const float* q = qkv + b * s_ * w;
    const float* k = q + h_;
    const float* v = q + 2 * h_;
    const float* p = probs + b * heads_ * ss;
    const float* dc = dctx + b * s_ * h_;
    float* dq = dqkv + b * s_ * w;
    // dv_j = P_j^T dctx_j; dP_j = dctx_j v_j^T; dS_j = softmax backward; dq_j = dS_j k_j;
    // dk_j = dS_j^T q_j.
    gemm.MultiplyBatched(Op::kTranspose, Op::kNone, s_, d_, s_, p, s_, ss, dc, h_, d_, dq + 2 * h_,
                         w, d_, heads_, false, st);
    gemm.MultiplyBatched(Op::kNone, Op::kTranspose, s_, s_, d_, dc, h_, d_, v, w, d_, dp, s_, ss,
                         heads_, false, st);
    LaunchSoftmaxBackward(p, dp, heads_, s_, Scale(), st);
    gemm.MultiplyBatched(Op::kNone, Op::kNone, s_, d_, s_, dp, s_, ss, k, w, d_, dq, w, d_, heads_,
                         false, st);
    gemm.MultiplyBatched(Op::kTranspose, Op::kNone, s_, d_, s_, dp, s_, ss, q, w, d_, dq + h_, w,
                         d_, heads_, false, st);
  }
  if (dx == nullptr) return;
  gemm.Multiply(Op::kNone, Op::kNone, rows, h_, w, dqkv, w, w_qkv, h_, dx, h_, false, st);
}

void GpuAttention::BackwardWeight(const float* x, const float*, const float* dy, const float* saved,
                                  float* grad, float*, int64_t rows, const GpuContext& ctx) const {
  const int64_t samples = Samples(rows), w = 3 * h_;
  const float* context = saved + rows * w + samples * heads_ * s_ * s_;
  const float* dqkv = context + rows * h_;
  float* dw_qkv = grad;
  float* db_qkv = dw_qkv + 3 * h_ * h_;
  float* dw_o = db_qkv + 3 * h_;
  float* db_o = dw_o + h_ * h_;
  ctx.gemm->Multiply(Op::kTranspose, Op::kNone, w, h_, rows, dqkv, w, x, h_, dw_qkv, h_, true,
                     ctx.stream);
  ctx.gemm->Multiply(Op::kTranspose, Op::kNone, h_, h_, rows, dy, h_, context, h_, dw_o, h_, true,
                     ctx.stream);
  LaunchColumnSums(dqkv, nullptr, rows, w, db_qkv, ctx.stream);
  LaunchColumnSums(dy, nullptr, rows, h_, db_o, ctx.stream);
}

}  // namespace

GpuLayerPtr MakeGpuAttention(int64_t hidden, int64_t heads, int64_t sequence) {
  return std::make_shared<GpuAttention>(hidden, heads, sequence);
}

}  // namespace pipecast::runtime::cuda
