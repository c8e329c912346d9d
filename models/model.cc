#include "models/model.h"

#include <memory>
#include <string>
#include <utility>

#include "common/check.h"
#include "models/balance.h"
#include "models/composite.h"
#include "models/layers.h"

namespace pipecast::models {
namespace {

// A built layer and the widths it maps between.
template <typename T>
struct Built {
  LayerPtr<T> layer;
  int64_t in = 0;
  int64_t out = 0;
};

// A built chain of layers (consecutive widths already checked).
template <typename T>
struct BuiltChain {
  std::vector<LayerPtr<T>> layers;
  int64_t in = 0;
  int64_t out = 0;
};

constexpr const char* kKnownKinds =
    "linear, relu, gelu, layernorm, embedding, attention, residual, sequential";

std::string Label(const std::string& path, const LayerSpec& spec) {
  return "layer " + path + " (" + spec.kind + ")";
}

// Checks the number of dims, each in [1, kMaxLayerDim], and children only where allowed.
Status CheckDims(const std::string& path, const LayerSpec& spec, size_t count, const char* meaning,
                 bool takes_children) {
  if (spec.dims.size() != count) {
    return InvalidArgument(Label(path, spec) + ": takes " + std::to_string(count) + " dims " +
                           meaning + ", got " + std::to_string(spec.dims.size()));
  }
  for (int64_t d : spec.dims) {
    if (d < 1 || d > kMaxLayerDim) {
      return InvalidArgument(Label(path, spec) + ": size " + std::to_string(d) +
                             " is out of range [1, " + std::to_string(kMaxLayerDim) + "]");
    }
  }
  if (takes_children && spec.children.empty()) {
    return InvalidArgument(Label(path, spec) + ": needs at least one child layer");
  }
  if (!takes_children && !spec.children.empty()) {
    return InvalidArgument(Label(path, spec) + ": takes no child layers");
  }
  return Status::Ok();
}

template <typename T>
Result<BuiltChain<T>> BuildChain(const std::vector<LayerSpec>& specs, const std::string& prefix);

template <typename T>
Result<Built<T>> BuildLayer(const LayerSpec& spec, const std::string& path) {
  const std::vector<int64_t>& d = spec.dims;
  if (spec.kind == "linear") {
    PIPECAST_RETURN_IF_ERROR(CheckDims(path, spec, 2, "{in, out}", false));
    return Built<T>{std::make_shared<Linear<T>>(d[0], d[1]), d[0], d[1]};
  }
  if (spec.kind == "relu" || spec.kind == "gelu" || spec.kind == "layernorm") {
    PIPECAST_RETURN_IF_ERROR(CheckDims(path, spec, 1, "{features}", false));
    LayerPtr<T> layer;
    if (spec.kind == "relu") layer = std::make_shared<Relu<T>>(d[0]);
    if (spec.kind == "gelu") layer = std::make_shared<Gelu<T>>(d[0]);
    if (spec.kind == "layernorm") layer = std::make_shared<LayerNorm<T>>(d[0]);
    return Built<T>{std::move(layer), d[0], d[0]};
  }
  if (spec.kind == "embedding") {
    PIPECAST_RETURN_IF_ERROR(CheckDims(path, spec, 3, "{vocab, sequence, hidden}", false));
    return Built<T>{std::make_shared<Embedding<T>>(d[0], d[1], d[2]), 1, d[2]};
  }
  if (spec.kind == "attention") {
    PIPECAST_RETURN_IF_ERROR(CheckDims(path, spec, 3, "{hidden, heads, sequence}", false));
    if (d[0] % d[1] != 0) {
      return InvalidArgument(Label(path, spec) + ": hidden " + std::to_string(d[0]) +
                             " is not divisible by heads " + std::to_string(d[1]));
    }
    return Built<T>{std::make_shared<CausalSelfAttention<T>>(d[0], d[1], d[2]), d[0], d[0]};
  }
  if (spec.kind == "residual") {
    PIPECAST_RETURN_IF_ERROR(CheckDims(path, spec, 1, "{features}", true));
    Result<BuiltChain<T>> chain = BuildChain<T>(spec.children, path + ".");
    if (!chain.ok()) return chain.status();
    if (chain->in != d[0] || chain->out != d[0]) {
      return InvalidArgument(Label(path, spec) + ": has width " + std::to_string(d[0]) +
                             " but its children map " + std::to_string(chain->in) + " to " +
                             std::to_string(chain->out) + " columns");
    }
    return Built<T>{std::make_shared<Residual<T>>(d[0], std::move(chain->layers)), d[0], d[0]};
  }
  if (spec.kind == "sequential") {
    PIPECAST_RETURN_IF_ERROR(CheckDims(path, spec, 0, "", true));
    Result<BuiltChain<T>> chain = BuildChain<T>(spec.children, path + ".");
    if (!chain.ok()) return chain.status();
    return Built<T>{std::make_shared<Sequential<T>>(std::move(chain->layers)), chain->in,
                    chain->out};
  }
  return InvalidArgument("layer " + path + ": unknown kind '" + spec.kind +
                         "' (known: " + kKnownKinds + ")");
}

template <typename T>
Result<BuiltChain<T>> BuildChain(const std::vector<LayerSpec>& specs, const std::string& prefix) {
  BuiltChain<T> chain;
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string path = prefix + std::to_string(i);
    Result<Built<T>> built = BuildLayer<T>(specs[i], path);
    if (!built.ok()) return built.status();
    if (i == 0) {
      chain.in = built->in;
    } else if (built->in != chain.out) {
      return InvalidArgument(Label(path, specs[i]) + ": takes " + std::to_string(built->in) +
                             " columns but " + Label(prefix + std::to_string(i - 1), specs[i - 1]) +
                             " gives " + std::to_string(chain.out));
    }
    chain.out = built->out;
    chain.layers.push_back(std::move(built->layer));
  }
  return chain;
}

}  // namespace

template <typename T>
Model<T>::Model(std::vector<LayerPtr<T>> layers, int64_t input_width, int64_t output_width)
    : whole_(std::move(layers), 0, 0), input_width_(input_width), output_width_(output_width) {
  offsets_.push_back(0);
  for (const LayerPtr<T>& layer : whole_.layers()) {
    offsets_.push_back(offsets_.back() + layer->num_params());
  }
}

template <typename T>
Result<Model<T>> Model<T>::FromSpecs(const std::vector<LayerSpec>& specs) {
  if (specs.empty()) return InvalidArgument("a model needs at least one layer");
  Result<BuiltChain<T>> chain = BuildChain<T>(specs, "");
  if (!chain.ok()) return chain.status();
  return Model<T>(std::move(chain->layers), chain->in, chain->out);
}

template <typename T>
int64_t Model<T>::param_offset(int32_t layer) const {
  PIPECAST_CHECK(layer >= 0 && layer <= num_layers()) << "layer " << layer;
  return offsets_[layer];
}

template <typename T>
std::vector<T> Model<T>::Init(uint64_t seed) const {
  std::vector<T> params(num_params());
  Rng rng(seed);
  Chain<T>(layers()).Init(std::span<T>(params), rng);
  return params;
}

std::vector<LayerSpec> MlpSpecs(int64_t input_dim, const std::vector<int64_t>& hidden_dims,
                                int64_t classes) {
  std::vector<LayerSpec> specs;
  int64_t width = input_dim;
  for (int64_t h : hidden_dims) {
    specs.push_back({"linear", {width, h}, {}});
    specs.push_back({"relu", {h}, {}});
    width = h;
  }
  specs.push_back({"linear", {width, classes}, {}});
  return specs;
}

std::vector<LayerSpec> GptSpecs(const GptConfig& c) {
  const int64_t h = c.hidden;
  std::vector<LayerSpec> specs;
  specs.push_back({"embedding", {c.vocab, c.sequence, h}, {}});
  for (int64_t i = 0; i < c.layers; ++i) {
    specs.push_back(
        {"residual", {h}, {{"layernorm", {h}, {}}, {"attention", {h, c.heads, c.sequence}, {}}}});
    specs.push_back({"residual",
                     {h},
                     {{"layernorm", {h}, {}},
                      {"linear", {h, 4 * h}, {}},
                      {"gelu", {4 * h}, {}},
                      {"linear", {4 * h, h}, {}}}});
  }
  specs.push_back({"layernorm", {h}, {}});
  specs.push_back({"linear", {h, c.vocab}, {}});
  return specs;
}

template <typename T>
Result<Model<T>> MakeMlp(int64_t input_dim, const std::vector<int64_t>& hidden_dims,
                         int64_t classes) {
  return Model<T>::FromSpecs(MlpSpecs(input_dim, hidden_dims, classes));
}

template <typename T>
Result<Model<T>> MakeGpt(const GptConfig& config) {
  if (config.layers < 0 || config.layers > kMaxLayerDim) {
    return InvalidArgument("gpt: layers must be in [0, " + std::to_string(kMaxLayerDim) +
                           "], got " + std::to_string(config.layers));
  }
  return Model<T>::FromSpecs(GptSpecs(config));
}

template <typename T>
Result<std::vector<Stage<T>>> PartitionAt(const Model<T>& model, std::span<const int32_t> starts) {
  const int32_t n = model.num_layers();
  if (starts.empty() || starts[0] != 0) {
    return InvalidArgument("stage starts must begin with layer 0");
  }
  for (size_t p = 0; p < starts.size(); ++p) {
    const bool increasing = p == 0 || starts[p] > starts[p - 1];
    if (!increasing || starts[p] >= n) {
      return InvalidArgument(
          "stage " + std::to_string(p) + " starts at layer " + std::to_string(starts[p]) +
          "; starts must increase and be below the model's " + std::to_string(n) + " layers");
    }
  }
  std::vector<Stage<T>> stages;
  for (size_t p = 0; p < starts.size(); ++p) {
    const int32_t begin = starts[p];
    const int32_t end = p + 1 < starts.size() ? starts[p + 1] : n;
    std::vector<LayerPtr<T>> layers(model.layers().begin() + begin, model.layers().begin() + end);
    stages.emplace_back(std::move(layers), begin, model.param_offset(begin));
  }
  return stages;
}

template <typename T>
Result<std::vector<Stage<T>>> Partition(const Model<T>& model, int32_t stages) {
  const int32_t n = model.num_layers();
  if (stages < 1) {
    return InvalidArgument("cannot partition a model into " + std::to_string(stages) + " stages");
  }
  if (stages > n) {
    return InvalidArgument("model has " + std::to_string(n) + " layers but " +
                           std::to_string(stages) + " stages were asked for");
  }
  // Every layer's FLOPs are proportional to the rows, so one row is enough to compare them.
  std::vector<double> costs;
  for (const LayerPtr<T>& layer : model.layers()) costs.push_back(layer->ForwardFlops(1));
  Result<std::vector<int32_t>> starts = MinMaxPartition(costs, stages);
  if (!starts.ok()) return starts.status();
  return PartitionAt(model, std::span<const int32_t>(*starts));
}

template class Model<float>;
template class Model<double>;
template Result<Model<float>> MakeMlp<float>(int64_t, const std::vector<int64_t>&, int64_t);
template Result<Model<double>> MakeMlp<double>(int64_t, const std::vector<int64_t>&, int64_t);
template Result<Model<float>> MakeGpt<float>(const GptConfig&);
template Result<Model<double>> MakeGpt<double>(const GptConfig&);
template Result<std::vector<Stage<float>>> Partition<float>(const Model<float>&, int32_t);
template Result<std::vector<Stage<double>>> Partition<double>(const Model<double>&, int32_t);
template Result<std::vector<Stage<float>>> PartitionAt<float>(const Model<float>&,
                                                              std::span<const int32_t>);
template Result<std::vector<Stage<double>>> PartitionAt<double>(const Model<double>&,
                                                                std::span<const int32_t>);

}  // namespace pipecast::models
