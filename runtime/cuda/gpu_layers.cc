// GPU layers (gpu_layers.h): Linear, ReLU, GELU, LayerNorm, Embedding, Sequential, Residual and
// the chain; attention is in gpu_attention.cc.
#include "runtime/cuda/gpu_layers.h"

#include <algorithm>
#include <mutex>
#include <vector>

#include "common/check.h"
#include "models/activations.h"
#include "models/attention.h"
#include "models/composite.h"
#include "models/embedding.h"
#include "models/layernorm.h"
#include "models/linear.h"
#include "runtime/cuda/gemm.h"
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/launch_check.h"

namespace pipecast::runtime::cuda {
namespace {

// y = x W^T + b; dx = dy W'; dW += dy^T x, db += column sums of dy (models/linear.h).
class GpuLinear final : public GpuLayer {
 public:
  GpuLinear(int64_t in, int64_t out) : in_(in), out_(out) {}
  int64_t num_params() const override { return out_ * in_ + out_; }
  int64_t input_width() const override { return in_; }
  int64_t output_width() const override { return out_; }
  models::LayerMemory Memory(int64_t) const override { return {}; }
  void Forward(const float* params, const float* x, float* y, float*, float*, int64_t rows,
               const GpuContext& ctx) const override {
    ctx.gemm->Multiply(Op::kNone, Op::kTranspose, rows, out_, in_, x, in_, params, in_, y, out_,
                       false, ctx.stream);
    LaunchAddBias(y, params + out_ * in_, rows, out_, ctx.stream);
  }
  void BackwardInput(const float* params, const float*, const float*, const float* dy, float* dx,
                     float*, float*, int64_t rows, const GpuContext& ctx) const override {
    if (dx == nullptr) return;
    ctx.gemm->Multiply(Op::kNone, Op::kNone, rows, in_, out_, dy, out_, params, in_, dx, in_, false,
                       ctx.stream);
  }
  void BackwardWeight(const float* x, const float*, const float* dy, const float*, float* grad,
                      float*, int64_t rows, const GpuContext& ctx) const override {
    ctx.gemm->Multiply(Op::kTranspose, Op::kNone, out_, in_, rows, dy, out_, x, in_, grad, in_,
                       true, ctx.stream);
    LaunchColumnSums(dy, nullptr, rows, out_, grad + out_ * in_, ctx.stream);
  }

 private:
  int64_t in_, out_;
};

// ReLU or GELU: no parameters, nothing saved beyond x.
class GpuActivation final : public GpuLayer {
 public:
  GpuActivation(int64_t features, bool gelu) : features_(features), gelu_(gelu) {}
  int64_t num_params() const override { return 0; }
  int64_t input_width() const override { return features_; }
  int64_t output_width() const override { return features_; }
  models::LayerMemory Memory(int64_t) const override { return {}; }
  void Forward(const float*, const float* x, float* y, float*, float*, int64_t rows,
               const GpuContext& ctx) const override {
    if (gelu_) {
      LaunchGelu(x, y, rows * features_, ctx.stream);
    } else {
      LaunchRelu(x, y, rows * features_, ctx.stream);
    }
  }
  void BackwardInput(const float*, const float* x, const float*, const float* dy, float* dx, float*,
                     float*, int64_t rows, const GpuContext& ctx) const override {
    if (dx == nullptr) return;
    if (gelu_) {
      LaunchGeluBackward(x, dy, dx, rows * features_, ctx.stream);
    } else {
      LaunchReluBackward(x, dy, dx, rows * features_, ctx.stream);
    }
  }
  void BackwardWeight(const float*, const float*, const float*, const float*, float*, float*,
                      int64_t, const GpuContext&) const override {}

 private:
  int64_t features_;
  bool gelu_;
};

// Saved: xhat [rows x features], then rstd [rows] (models/layernorm.h).
class GpuLayerNorm final : public GpuLayer {
 public:
  explicit GpuLayerNorm(int64_t features) : features_(features) {}
  int64_t num_params() const override { return 2 * features_; }
  int64_t input_width() const override { return features_; }
  int64_t output_width() const override { return features_; }
  models::LayerMemory Memory(int64_t rows) const override { return {rows * features_ + rows, 0}; }
  void Forward(const float* params, const float* x, float* y, float* saved, float*, int64_t rows,
               const GpuContext& ctx) const override {
    LaunchLayerNormForward(x, params, params + features_, static_cast<float>(models::kLayerNormEps),
                           y, saved, saved + rows * features_, rows, features_, ctx.stream);
  }
  void BackwardInput(const float* params, const float*, const float*, const float* dy, float* dx,
                     float* saved, float*, int64_t rows, const GpuContext& ctx) const override {
    if (dx == nullptr) return;
    LaunchLayerNormBackward(dy, params, saved, saved + rows * features_, dx, rows, features_,
                            ctx.stream);
  }
  void BackwardWeight(const float*, const float*, const float* dy, const float* saved, float* grad,
                      float*, int64_t rows, const GpuContext& ctx) const override {
    LaunchColumnSums(dy, saved, rows, features_, grad, ctx.stream);
    LaunchColumnSums(dy, nullptr, rows, features_, grad + features_, ctx.stream);
  }

 private:
  int64_t features_;
};

// Token plus position embedding; scratch: the backward's sort buffers (models/embedding.h).
class GpuEmbedding final : public GpuLayer {
 public:
  GpuEmbedding(int64_t vocab, int64_t sequence, int64_t hidden)
      : vocab_(vocab), sequence_(sequence), hidden_(hidden) {}
  int64_t num_params() const override { return (vocab_ + sequence_) * hidden_; }
  int64_t input_width() const override { return 1; }
  int64_t output_width() const override { return hidden_; }
  // The scratch size comes from CUB's sort for the current device; it is asked once per row
  // count, since chains call Memory in every pass.
  models::LayerMemory Memory(int64_t rows) const override {
    PIPECAST_CHECK(rows % sequence_ == 0)
        << "embedding: " << rows << " rows is not a multiple of sequence " << sequence_;
    std::lock_guard<std::mutex> lock(mutex_);
    if (rows != cached_rows_) {
      cached_bytes_ = EmbeddingBackwardScratchBytes(rows, vocab_);
      cached_rows_ = rows;
    }
    return {0, (cached_bytes_ + 3) / 4};
  }
  void Forward(const float* params, const float* x, float* y, float*, float*, int64_t rows,
               const GpuContext& ctx) const override {
    LaunchEmbeddingForward(x, params, params + vocab_ * hidden_, y, rows, vocab_, sequence_,
                           hidden_, ctx.stream);
  }
  void BackwardInput(const float*, const float*, const float*, const float*, float* dx, float*,
                     float*, int64_t rows, const GpuContext& ctx) const override {
    if (dx != nullptr)
      CheckEnqueued(cudaMemsetAsync(dx, 0, sizeof(float) * rows, ctx.stream),
                    "embedding input gradient");
  }
  void BackwardWeight(const float* x, const float*, const float* dy, const float*, float* grad,
                      float* scratch, int64_t rows, const GpuContext& ctx) const override {
    LaunchEmbeddingBackward(x, dy, grad, grad + vocab_ * hidden_, rows, vocab_, sequence_, hidden_,
                            scratch, ctx.stream);
  }

 private:
  int64_t vocab_, sequence_, hidden_;
  mutable std::mutex mutex_;
  mutable int64_t cached_rows_ = -1, cached_bytes_ = 0;
};

class GpuSequential final : public GpuLayer {
 public:
  GpuSequential(std::vector<GpuLayerPtr> children, int64_t identity_width)
      : children_(std::move(children)), identity_width_(identity_width) {}
  int64_t num_params() const override { return ChainParams(children_); }
  int64_t input_width() const override {
    return children_.empty() ? identity_width_ : children_.front()->input_width();
  }
  int64_t output_width() const override {
    return children_.empty() ? identity_width_ : children_.back()->output_width();
  }
  models::LayerMemory Memory(int64_t rows) const override { return ChainMemory(children_, rows); }
  void Forward(const float* params, const float* x, float* y, float* saved, float* scratch,
               int64_t rows, const GpuContext& ctx) const override {
    ChainForward(children_, identity_width_, params, x, y, saved, scratch, rows, ctx);
  }
  void BackwardInput(const float* params, const float* x, const float* y, const float* dy,
                     float* dx, float* saved, float* scratch, int64_t rows,
                     const GpuContext& ctx) const override {
    ChainBackwardInput(children_, identity_width_, params, x, y, dy, dx, saved, scratch, rows, ctx);
  }
  void BackwardWeight(const float* x, const float* y, const float* dy, const float* saved,
                      float* grad, float* scratch, int64_t rows,
                      const GpuContext& ctx) const override {
    ChainBackwardWeight(children_, x, y, dy, saved, grad, scratch, rows, ctx);
  }

 private:
  std::vector<GpuLayerPtr> children_;
  int64_t identity_width_;
};

// y = x + f(x); saved: f's chain memory, then f(x) (models::Residual).
class GpuResidual final : public GpuLayer {
 public:
  GpuResidual(int64_t features, std::vector<GpuLayerPtr> children)
      : features_(features), children_(std::move(children)) {}
  int64_t num_params() const override { return ChainParams(children_); }
  int64_t input_width() const override { return features_; }
  int64_t output_width() const override { return features_; }
  models::LayerMemory Memory(int64_t rows) const override {
    models::LayerMemory m = ChainMemory(children_, rows);
    m.saved += rows * features_;
    return m;
  }
  void Forward(const float* params, const float* x, float* y, float* saved, float* scratch,
               int64_t rows, const GpuContext& ctx) const override {
    float* fx = saved + ChainMemory(children_, rows).saved;
    ChainForward(children_, features_, params, x, fx, saved, scratch, rows, ctx);
    LaunchAdd(fx, x, y, rows * features_, ctx.stream);
  }
  void BackwardInput(const float* params, const float* x, const float*, const float* dy, float* dx,
                     float* saved, float* scratch, int64_t rows,
                     const GpuContext& ctx) const override {
    const float* fx = saved + ChainMemory(children_, rows).saved;
    ChainBackwardInput(children_, features_, params, x, fx, dy, dx, saved, scratch, rows, ctx);
    if (dx != nullptr) LaunchAdd(dx, dy, dx, rows * features_, ctx.stream);
  }
  void BackwardWeight(const float* x, const float*, const float* dy, const float* saved,
                      float* grad, float* scratch, int64_t rows,
                      const GpuContext& ctx) const override {
    const float* fx = saved + ChainMemory(children_, rows).saved;
    ChainBackwardWeight(children_, x, fx, dy, saved, grad, scratch, rows, ctx);
  }

 private:
  int64_t features_;
  std::vector<GpuLayerPtr> children_;
};

Result<std::vector<GpuLayerPtr>> MakeChildren(const std::vector<models::LayerPtr<float>>& layers,
                                              const std::string& where) {
  std::vector<GpuLayerPtr> children;
  for (size_t i = 0; i < layers.size(); ++i) {
    Result<GpuLayerPtr> child = MakeGpuLayer(*layers[i], where + "." + std::to_string(i));
    if (!child.ok()) return child.status();
    children.push_back(std::move(child).value());
  }
  return children;
}

// Offset of activation a_i (i >= 1; the input of layer i) in a chain's saved memory, in rows:
// the input widths of layers 1 .. i-1 (models::Chain's width_before_).
int64_t WidthBefore(std::span<const GpuLayerPtr> layers, size_t i) {
  int64_t width = 0;
  for (size_t j = 1; j < i; ++j) width += layers[j]->input_width();
  return width;
}

}  // namespace

Result<GpuLayerPtr> MakeGpuLayer(const models::Layer<float>& layer, const std::string& where) {
  using namespace models;  // NOLINT: the layer types below
  if (const auto* l = dynamic_cast<const Linear<float>*>(&layer))
    return GpuLayerPtr(std::make_shared<GpuLinear>(l->in(), l->out()));
  if (const auto* l = dynamic_cast<const Relu<float>*>(&layer))
    return GpuLayerPtr(std::make_shared<GpuActivation>(l->features(), false));
  if (const auto* l = dynamic_cast<const Gelu<float>*>(&layer))
    return GpuLayerPtr(std::make_shared<GpuActivation>(l->features(), true));
  if (const auto* l = dynamic_cast<const LayerNorm<float>*>(&layer))
    return GpuLayerPtr(std::make_shared<GpuLayerNorm>(l->features()));
  if (const auto* l = dynamic_cast<const CausalSelfAttention<float>*>(&layer))
    return MakeGpuAttention(l->hidden(), l->heads(), l->sequence());
  if (const auto* l = dynamic_cast<const Embedding<float>*>(&layer))
    return GpuLayerPtr(std::make_shared<GpuEmbedding>(l->vocab(), l->sequence(), l->hidden()));
  if (const auto* l = dynamic_cast<const Sequential<float>*>(&layer)) {
    Result<std::vector<GpuLayerPtr>> children = MakeChildren(l->children(), where);
    if (!children.ok()) return children.status();
    return GpuLayerPtr(
        std::make_shared<GpuSequential>(std::move(children).value(), l->input_width()));
  }
  if (const auto* l = dynamic_cast<const Residual<float>*>(&layer)) {
    Result<std::vector<GpuLayerPtr>> children = MakeChildren(l->children(), where);
    if (!children.ok()) return children.status();
    return GpuLayerPtr(std::make_shared<GpuResidual>(l->features(), std::move(children).value()));
  }
  return InvalidArgument(where + " (" + layer.name() +
                         "): the CUDA device has no implementation of this layer; run the "
                         "model with --device cpu, or use the layers of docs/models.md");
}

int64_t ChainParams(std::span<const GpuLayerPtr> layers) {
  int64_t total = 0;
  for (const GpuLayerPtr& layer : layers) total += layer->num_params();
  return total;
}

models::LayerMemory ChainMemory(std::span<const GpuLayerPtr> layers, int64_t rows) {
  models::LayerMemory m;
  m.saved = 2 * rows * WidthBefore(layers, layers.size());
  for (const GpuLayerPtr& layer : layers) {
    const models::LayerMemory lm = layer->Memory(rows);
    m.saved += lm.saved;
    m.scratch = std::max(m.scratch, lm.scratch);
  }
  return m;
}

void ChainForward(std::span<const GpuLayerPtr> layers, int64_t identity_width, const float* params,
                  const float* x, float* y, float* saved, float* scratch, int64_t rows,
                  const GpuContext& ctx) {
  const size_t n = layers.size();
  if (n == 0) {
    CheckEnqueued(cudaMemcpyAsync(y, x, sizeof(float) * rows * identity_width,
                                  cudaMemcpyDeviceToDevice, ctx.stream),
                  "empty chain forward");
    return;
  }
  int64_t own = 2 * rows * WidthBefore(layers, n);
  int64_t param = 0;
  for (size_t i = 0; i < n; ++i) {
    const GpuLayer& layer = *layers[i];
    const float* in = i == 0 ? x : saved + rows * WidthBefore(layers, i);
    float* out = i + 1 == n ? y : saved + rows * WidthBefore(layers, i + 1);
    layer.Forward(params + param, in, out, saved + own, scratch, rows, ctx);
    own += layer.Memory(rows).saved;
    param += layer.num_params();
  }
}

void ChainBackwardInput(std::span<const GpuLayerPtr> layers, int64_t identity_width,
                        const float* params, const float* x, const float* y, const float* dy,
                        float* dx, float* saved, float* scratch, int64_t rows,
                        const GpuContext& ctx) {
  const size_t n = layers.size();
  if (n == 0) {
    if (dx != nullptr)
      CheckEnqueued(cudaMemcpyAsync(dx, dy, sizeof(float) * rows * identity_width,
                                    cudaMemcpyDeviceToDevice, ctx.stream),
                    "empty chain backward");
    return;
  }
  const int64_t internal = WidthBefore(layers, n);
  int64_t own = ChainMemory(layers, rows).saved;  // end of layer i's record, walking down
  int64_t param = ChainParams(layers);
  for (size_t i = n; i-- > 0;) {
    const GpuLayer& layer = *layers[i];
    own -= layer.Memory(rows).saved;
    param -= layer.num_params();
    const int64_t before_in = rows * WidthBefore(layers, i);
    const int64_t before_out = rows * WidthBefore(layers, i + 1);
    const float* in = i == 0 ? x : saved + before_in;
    const float* out = i + 1 == n ? y : saved + before_out;
    const float* g_out = i + 1 == n ? dy : saved + rows * internal + before_out;
    float* g_in = i == 0 ? dx : saved + rows * internal + before_in;
    layer.BackwardInput(params + param, in, out, g_out, g_in, saved + own, scratch, rows, ctx);
  }
}

void ChainBackwardWeight(std::span<const GpuLayerPtr> layers, const float* x, const float* y,
                         const float* dy, const float* saved, float* grad, float* scratch,
                         int64_t rows, const GpuContext& ctx) {
  const size_t n = layers.size();
  if (n == 0) return;
  const int64_t internal = WidthBefore(layers, n);
  int64_t own = 2 * rows * internal;
  int64_t param = 0;
  for (size_t i = 0; i < n; ++i) {
    const GpuLayer& layer = *layers[i];
    const int64_t before_in = rows * WidthBefore(layers, i);
    const int64_t before_out = rows * WidthBefore(layers, i + 1);
    const float* in = i == 0 ? x : saved + before_in;
    const float* out = i + 1 == n ? y : saved + before_out;
    const float* g_out = i + 1 == n ? dy : saved + rows * internal + before_out;
    layer.BackwardWeight(in, out, g_out, saved + own, grad + param, scratch, rows, ctx);
    own += layer.Memory(rows).saved;
    param += layer.num_params();
  }
}

}  // namespace pipecast::runtime::cuda
