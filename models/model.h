// Model: an ordered list of layers whose parameters live in one flat buffer, the builders of
// the models pipecast trains (an MLP classifier and a GPT-style decoder), and the partitioning
// of a model into pipeline stages.
//
// Layer i's parameters are the slice [param_offset(i), param_offset(i) + num_params) of the
// buffer; Init(seed) fills the whole buffer deterministically (same seed, same numbers, on every
// platform; a float model equals the double one rounded). Models are built from LayerSpecs,
// which are checked (known kinds, dimension counts, positive sizes, heads dividing hidden, each
// layer's input width matching the previous layer's output width) before any layer exists.
// Thread-safety: const methods only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/layer.h"
#include "models/stage.h"

namespace pipecast::models {

// Upper bound on every dimension in a LayerSpec, so that parameter counts fit in int64_t.
inline constexpr int64_t kMaxLayerDim = int64_t{1} << 24;

// A layer described by kind and dimensions. Kinds and their `dims`:
//   linear {in, out};  relu {features};  gelu {features};  layernorm {features};
//   embedding {vocab, sequence, hidden} (input: one column of token ids);
//   attention {hidden, heads, sequence};
//   residual {features} with `children` (x + children(x); they must map features to features);
//   sequential {} with `children`.
struct LayerSpec {
  std::string kind;
  std::vector<int64_t> dims;
  std::vector<LayerSpec> children;
};

// A GPT-style decoder: Embedding, `layers` blocks of
//   Residual(LayerNorm, CausalSelfAttention),
//   Residual(LayerNorm, Linear(h, 4h), GELU, Linear(4h, h)),
// then LayerNorm and a Linear head to `vocab` logits per token.
struct GptConfig {
  int64_t vocab = 0;
  int64_t sequence = 0;
  int64_t hidden = 0;
  int64_t heads = 0;  // divides hidden
  int64_t layers = 0;
};

template <typename T>
class Model {
 public:
  // Builds and checks a model. Errors (kInvalidArgument) name the layer ("layer 3.1
  // (attention)") and the problem: an unknown kind, a wrong number of dims, a size out of
  // [1, kMaxLayerDim], heads not dividing hidden, an input width that does not match the
  // previous layer's output, a residual that does not preserve its width, no layers at all.
  static Result<Model<T>> FromSpecs(const std::vector<LayerSpec>& specs);

  const std::vector<LayerPtr<T>>& layers() const { return whole_.layers(); }
  int32_t num_layers() const { return whole_.num_layers(); }
  int64_t num_params() const { return whole_.num_params(); }
  // REQUIRES: 0 <= layer <= num_layers() (num_layers() gives num_params()).
  int64_t param_offset(int32_t layer) const;
  // Columns of the model's input (1 for token ids) and of its output.
  int64_t input_width() const { return input_width_; }
  int64_t output_width() const { return output_width_; }

  // A new buffer of num_params() values: each layer's Init in order, from Rng(seed).
  std::vector<T> Init(uint64_t seed) const;

  // The whole model as one stage (first layer 0, offset 0).
  const Stage<T>& whole() const { return whole_; }
  Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x, StageSaved<T>* saved) const {
    return whole_.Forward(params, x, saved);
  }
  Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                          StageSaved<T>* saved) const {
    return whole_.BackwardInput(params, dy, saved);
  }
  void BackwardWeight(const StageSaved<T>& saved, std::span<T> grad) const {
    whole_.BackwardWeight(saved, grad);
  }

 private:
  Model(std::vector<LayerPtr<T>> layers, int64_t input_width, int64_t output_width);

  Stage<T> whole_;
  std::vector<int64_t> offsets_;  // num_layers() + 1 entries
  int64_t input_width_;
  int64_t output_width_;
};

// The specs of the models below, for printing or editing before building.
std::vector<LayerSpec> MlpSpecs(int64_t input_dim, const std::vector<int64_t>& hidden_dims,
                                int64_t classes);
std::vector<LayerSpec> GptSpecs(const GptConfig& config);

// Linear(input_dim, h1), ReLU, Linear(h1, h2), ReLU, ..., Linear(hn, classes): for
// Fashion-MNIST, MakeMlp(784, {256, 128}, 10). Errors as Model::FromSpecs.
template <typename T>
Result<Model<T>> MakeMlp(int64_t input_dim, const std::vector<int64_t>& hidden_dims,
                         int64_t classes);

// Errors as Model::FromSpecs, plus layers < 0 (kInvalidArgument).
template <typename T>
Result<Model<T>> MakeGpt(const GptConfig& config);

// Cuts the model into `stages` contiguous, non-empty stages balanced by each layer's
// ForwardFlops (MinMaxPartition in models/balance.h: the most expensive stage is as cheap as
// possible; earliest splits on ties). Error (kInvalidArgument) when stages < 1 or there are more
// stages than layers ("model has 7 layers but 8 stages were asked for").
template <typename T>
Result<std::vector<Stage<T>>> Partition(const Model<T>& model, int32_t stages);

// The stages starting at the given layers (starts[0] == 0, strictly increasing, each below
// num_layers()), e.g. to follow a partition chosen elsewhere. Errors: kInvalidArgument.
template <typename T>
Result<std::vector<Stage<T>>> PartitionAt(const Model<T>& model, std::span<const int32_t> starts);

}  // namespace pipecast::models
