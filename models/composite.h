// Composite layers built from child layers: Sequential (f_n(...f_1(x))) and Residual
// (x + f(x), f a sequence of children), plus the chain helpers they share with Stage.
//
// A composite's parameter slice is its children's slices concatenated in order: child i reads
// num_params() values starting at the sum of the earlier children's sizes. Its Saved holds one
// child Saved per child, in `children`. Children are shared (LayerPtr), never copied.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/layer.h"

namespace pipecast::models {

// The total parameter count of `layers`.
template <typename T>
int64_t ChainParams(const std::vector<LayerPtr<T>>& layers);

// Initialises each layer's slice in order, all from the one `rng`.
template <typename T>
void ChainInit(const std::vector<LayerPtr<T>>& layers, std::span<T> params, Rng& rng);

// Runs the layers in order. `saved` (one entry per layer afterwards) may be null.
template <typename T>
Matrix<T> ChainForward(const std::vector<LayerPtr<T>>& layers, std::span<const T> params,
                       const Matrix<T>& x, std::vector<Saved<T>>* saved);

// Runs BackwardInput from the last layer to the first.
// REQUIRES: `saved` holds one entry per layer, from ChainForward.
template <typename T>
Matrix<T> ChainBackwardInput(const std::vector<LayerPtr<T>>& layers, std::span<const T> params,
                             const Matrix<T>& dy, std::vector<Saved<T>>* saved);

// Runs BackwardWeight of every layer into its slice of `grad` (accumulating).
template <typename T>
void ChainBackwardWeight(const std::vector<LayerPtr<T>>& layers, const std::vector<Saved<T>>& saved,
                         std::span<T> grad);

// The sum of the layers' ForwardFlops.
template <typename T>
double ChainForwardFlops(const std::vector<LayerPtr<T>>& layers, int64_t rows);

template <typename T>
class Sequential final : public Layer<T> {
 public:
  // REQUIRES: no null child. An empty list is the identity.
  explicit Sequential(std::vector<LayerPtr<T>> children);
  const std::vector<LayerPtr<T>>& children() const { return children_; }

  std::string name() const override { return "sequential"; }
  int64_t num_params() const override { return num_params_; }
  void Init(std::span<T> params, Rng& rng) const override;
  Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const override;
  Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                          Saved<T>* saved) const override;
  void BackwardWeight(const Saved<T>& saved, std::span<T> grad) const override;
  double ForwardFlops(int64_t rows) const override;

 private:
  std::vector<LayerPtr<T>> children_;
  int64_t num_params_;
};

// y = x + f(x) with f = children in order; dx = dy + df^T(dy). `features` is the row width,
// which f must preserve (checked when a model is built from specs, and at run time).
template <typename T>
class Residual final : public Layer<T> {
 public:
  // REQUIRES: features > 0; no null child.
  Residual(int64_t features, std::vector<LayerPtr<T>> children);
  int64_t features() const { return features_; }
  const std::vector<LayerPtr<T>>& children() const { return children_; }

  std::string name() const override { return "residual"; }
  int64_t num_params() const override { return num_params_; }
  void Init(std::span<T> params, Rng& rng) const override;
  Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const override;
  Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                          Saved<T>* saved) const override;
  void BackwardWeight(const Saved<T>& saved, std::span<T> grad) const override;
  // The children's FLOPs plus one addition per element.
  double ForwardFlops(int64_t rows) const override;

 private:
  int64_t features_;
  std::vector<LayerPtr<T>> children_;
  int64_t num_params_;
};

}  // namespace pipecast::models
