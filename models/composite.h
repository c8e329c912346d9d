// Chains of layers and the composite layers built from them: Sequential (f_n(...f_1(x))) and
// Residual (x + f(x), f a chain of children). Stage (stage.h) is a chain too.
//
// A chain's parameter slice is its layers' slices concatenated in order. For a microbatch of R
// rows its `saved` memory holds, in order: the activations between consecutive layers
// (a_1 .. a_{L-1}, a_i = output of layer i-1 = input of layer i), their gradients
// (g_1 .. g_{L-1}), then each layer's own saved memory; the chain's input a_0, output a_L and
// output gradient g_L are the caller's, like any layer's x, y and dy. Scratch is shared: the
// largest any layer needs. Children are shared (LayerPtr), never copied.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/layer.h"

namespace pipecast::models {

template <typename T>
class Chain {
 public:
  // REQUIRES: no null layer; consecutive widths match (checked). An empty chain is the
  // identity on rows of `identity_width` columns.
  explicit Chain(std::vector<LayerPtr<T>> layers, int64_t identity_width = 0);

  const std::vector<LayerPtr<T>>& layers() const { return layers_; }
  int64_t num_params() const { return num_params_; }
  int64_t input_width() const;
  int64_t output_width() const;
  void Init(std::span<T> params, Rng& rng) const;
  double ForwardFlops(int64_t rows) const;
  LayerMemory Memory(int64_t rows) const;

  // The Layer passes for the whole chain (same contracts as layer.h).
  void Forward(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T> saved,
               std::span<T> scratch) const;
  void BackwardInput(std::span<const T> params, ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                     View<T> dx, std::span<T> saved, std::span<T> scratch) const;
  void BackwardWeight(ConstView<T> x, ConstView<T> y, ConstView<T> dy, std::span<const T> saved,
                      std::span<T> grad, std::span<T> scratch) const;

 private:
  // Offsets into a saved buffer of a microbatch of `rows` rows: a_i, g_i (i = 1 .. L-1), and
  // where the layers' own saved memory starts. Computed without allocating.
  int64_t ActOffset(size_t i, int64_t rows) const { return rows * width_before_[i]; }
  int64_t GradOffset(size_t i, int64_t rows) const {
    return rows * (internal_width_ + width_before_[i]);
  }
  int64_t LayersSaved(int64_t rows) const { return 2 * rows * internal_width_; }

  std::vector<LayerPtr<T>> layers_;
  std::vector<int64_t> param_offsets_;  // layers + 1 entries
  // width_before_[i]: sum of the input widths of layers 1 .. i-1 (the a_j stored before a_i).
  std::vector<int64_t> width_before_;
  int64_t internal_width_ = 0;  // sum of the input widths of layers 1 .. L-1
  int64_t num_params_ = 0;
  int64_t identity_width_ = 0;
};

template <typename T>
class Sequential final : public Layer<T> {
 public:
  // REQUIRES: no null child; consecutive widths match. An empty list is the identity on
  // `identity_width` columns.
  explicit Sequential(std::vector<LayerPtr<T>> children, int64_t identity_width = 0);
  const std::vector<LayerPtr<T>>& children() const { return chain_.layers(); }

  std::string name() const override { return "sequential"; }
  int64_t num_params() const override { return chain_.num_params(); }
  int64_t input_width() const override { return chain_.input_width(); }
  int64_t output_width() const override { return chain_.output_width(); }
  void Init(std::span<T> params, Rng& rng) const override { chain_.Init(params, rng); }
  double ForwardFlops(int64_t rows) const override { return chain_.ForwardFlops(rows); }
  LayerMemory Memory(int64_t rows) const override { return chain_.Memory(rows); }
  void ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T> saved,
                   std::span<T> scratch) const override;
  void BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                         View<T> dx, std::span<T> saved, std::span<T> scratch) const override;
  void BackwardWeightInto(ConstView<T> x, ConstView<T> y, ConstView<T> dy, std::span<const T> saved,
                          std::span<T> grad, std::span<T> scratch) const override;

 private:
  Chain<T> chain_;
};

// y = x + f(x) with f = children in order; dx = dy + df^T(dy). `features` is the row width,
// which f must preserve. Saved: f's chain memory, then f(x) itself (f's output, which y is not).
template <typename T>
class Residual final : public Layer<T> {
 public:
  // REQUIRES: features > 0; no null child; the children map features to features.
  Residual(int64_t features, std::vector<LayerPtr<T>> children);
  int64_t features() const { return features_; }
  const std::vector<LayerPtr<T>>& children() const { return chain_.layers(); }

  std::string name() const override { return "residual"; }
  int64_t num_params() const override { return chain_.num_params(); }
  int64_t input_width() const override { return features_; }
  int64_t output_width() const override { return features_; }
  void Init(std::span<T> params, Rng& rng) const override { chain_.Init(params, rng); }
  // The children's FLOPs plus one addition per element.
  double ForwardFlops(int64_t rows) const override;
  LayerMemory Memory(int64_t rows) const override;
  void ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T> saved,
                   std::span<T> scratch) const override;
  void BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                         View<T> dx, std::span<T> saved, std::span<T> scratch) const override;
  void BackwardWeightInto(ConstView<T> x, ConstView<T> y, ConstView<T> dy, std::span<const T> saved,
                          std::span<T> grad, std::span<T> scratch) const override;

 private:
  int64_t features_;
  Chain<T> chain_;
};

}  // namespace pipecast::models
