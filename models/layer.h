// The layer interface of pipecast's CPU models, and the tensor types they use.
//
// Parameters are not owned by layers: every stage keeps all its parameters in one flat buffer,
// so that a weight version (current, stashed, predicted, one of 2BW's buffers) is just another
// buffer, and the executor can hand any version to any pass. A layer reads its slice of that
// buffer (`params`, num_params() values) and writes its gradient into the same slice of a
// gradient buffer.
//
// Memory is the caller's too: a layer computes into views of memory it is given and allocates
// nothing. Per microbatch the caller keeps the layer's input x, output y and output gradient dy,
// plus `saved` elements (Memory(rows).saved) that the forward writes for the backward passes;
// `scratch` (Memory(rows).scratch elements) is temporary and may be shared by every pass of
// every layer. This is what lets a device size every buffer before a run and allocate nothing
// while it runs (docs/executor.md).
//
// A backward pass is split the way zero-bubble schedules split it: BackwardInputInto computes
// the input gradient with the weights it is given (for PipeOptim and PACI, the current weights)
// and records in `saved` what BackwardWeightInto needs; BackwardWeightInto accumulates the
// weight gradient from the forward's activations (computed with the forward's weights) and that
// record. A full backward is BackwardInputInto followed by BackwardWeightInto.
//
// The allocating Forward/BackwardInput/BackwardWeight wrappers over Matrix values run exactly
// the same code; tests and references use them.
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

// Row-major views of caller-owned memory. An empty view (null data) means "not wanted".
template <typename T>
using View = Eigen::Map<Matrix<T>>;
template <typename T>
using ConstView = Eigen::Map<const Matrix<T>>;

template <typename T>
View<T> MakeView(T* data, int64_t rows, int64_t cols) {
  return View<T>(data, rows, cols);
}
template <typename T>
ConstView<T> MakeView(const T* data, int64_t rows, int64_t cols) {
  return ConstView<T>(data, rows, cols);
}
template <typename T>
ConstView<T> MakeConstView(const T* data, int64_t rows, int64_t cols) {
  return ConstView<T>(data, rows, cols);
}
template <typename T>
bool IsEmpty(const View<T>& v) {
  return v.data() == nullptr;
}

// Elements of T a layer needs for one microbatch.
struct LayerMemory {
  int64_t saved = 0;    // kept from the forward to the backward passes
  int64_t scratch = 0;  // temporary within one pass
};

// What the allocating wrappers keep between a layer's passes for one microbatch.
template <typename T>
struct Saved {
  Matrix<T> x, y, dy;
  std::vector<T> saved;
};

using Rng = std::mt19937_64;

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string name() const = 0;
  virtual int64_t num_params() const = 0;
  // Columns of the input and output rows (rows are preserved by every layer).
  virtual int64_t input_width() const = 0;
  virtual int64_t output_width() const = 0;
  // Deterministic initialisation of this layer's parameters from `rng`.
  virtual void Init(std::span<T> params, Rng& rng) const = 0;
  // Forward FLOPs for `rows` input rows (for balancing stages and for cost estimates).
  virtual double ForwardFlops(int64_t rows) const = 0;
  // Memory for one microbatch of `rows` rows. REQUIRES: rows is valid for the layer (e.g. a
  // multiple of the sequence length for attention).
  virtual LayerMemory Memory(int64_t rows) const = 0;

  // y = f(x; params); writes `saved` for the backward passes.
  // REQUIRES: x is rows x input_width(), y rows x output_width(); saved and scratch at least
  // Memory(rows) elements; y does not overlap x.
  virtual void ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T> saved,
                           std::span<T> scratch) const = 0;
  // dx from dy, with `params` (which may differ from the forward's) and the forward's x, y and
  // `saved`; records in `saved` what BackwardWeightInto needs. dx may be empty: then only the
  // record is made (nobody needs the input gradient).
  virtual void BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T> y,
                                 ConstView<T> dy, View<T> dx, std::span<T> saved,
                                 std::span<T> scratch) const = 0;
  // grad += dL/dparams, from the forward's x and y, dy, and `saved` after BackwardInputInto.
  virtual void BackwardWeightInto(ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                                  std::span<const T> saved, std::span<T> grad,
                                  std::span<T> scratch) const = 0;

  // Allocating wrappers (tests, references): the same passes over Matrix values. `saved` may
  // be null in Forward when no backward follows.
  Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const;
  Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy, Saved<T>* saved) const;
  void BackwardWeight(const Saved<T>& saved, std::span<T> grad) const;
};

template <typename T>
using LayerPtr = std::shared_ptr<const Layer<T>>;

// The pass overrides every concrete layer declares (one list, so that they cannot drift).
#define PIPECAST_LAYER_PASSES(T)                                                                \
  LayerMemory Memory(int64_t rows) const override;                                              \
  void ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T> saved,    \
                   std::span<T> scratch) const override;                                        \
  void BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T> y,             \
                         ConstView<T> dy, View<T> dx, std::span<T> saved, std::span<T> scratch) \
      const override;                                                                           \
  void BackwardWeightInto(ConstView<T> x, ConstView<T> y, ConstView<T> dy,                      \
                          std::span<const T> saved, std::span<T> grad, std::span<T> scratch)    \
      const override

}  // namespace pipecast::models
