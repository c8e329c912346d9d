// The layer interface of pipecast's CPU models, and the tensor type they use.
//
// Parameters are not owned by layers: every stage keeps all its parameters in one flat buffer,
// so that a weight version (current, stashed, predicted, one of 2BW's buffers) is just another
// buffer, and the executor can hand any version to any pass. A layer reads its slice of that
// buffer (`params`, num_params() values) and writes its gradient into the same slice of a
// gradient buffer.
//
// A backward pass is split the way zero-bubble schedules split it: BackwardInput computes the
// input gradient with the weights it is given (for PipeOptim and PACI, the current weights) and
// records what BackwardWeight needs; BackwardWeight accumulates the weight gradient from the
// activations saved by Forward (computed with the forward's weights) and that record. A full
// backward is BackwardInput followed by BackwardWeight.
//
// Layers are templates on the scalar type: float for training, double for the finite-difference
// checks in the tests. Thread-safety: const methods only; a layer may be shared by threads.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace pipecast::models {

// Activations: one row per example (or per token), row-major.
template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// What a layer keeps between its passes for one microbatch (opaque to the caller).
template <typename T>
struct Saved {
  std::vector<Matrix<T>> tensors;
  std::vector<Saved<T>> children;  // for composite layers
};

using Rng = std::mt19937_64;

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string name() const = 0;
  virtual int64_t num_params() const = 0;
  // Deterministic initialisation of this layer's parameters from `rng`.
  virtual void Init(std::span<T> params, Rng& rng) const = 0;
  // y = f(x; params). Saves into `saved` what the backward passes need.
  virtual Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x,
                            Saved<T>* saved) const = 0;
  // dx from dy, with `params` (which may differ from the forward's). Records dy (or whatever
  // BackwardWeight needs) in `saved`.
  virtual Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                  Saved<T>* saved) const = 0;
  // grad += dL/dparams, from the forward's saved activations and the recorded dy.
  virtual void BackwardWeight(const Saved<T>& saved, std::span<T> grad) const = 0;
  // Forward FLOPs for `rows` input rows (for balancing stages and for cost estimates).
  virtual double ForwardFlops(int64_t rows) const = 0;
};

template <typename T>
using LayerPtr = std::shared_ptr<const Layer<T>>;

}  // namespace pipecast::models
