// Stage: a contiguous run of a model's layers that one pipeline stage (or one chunk of an
// interleaved schedule) runs as a unit, with its own flat parameter slice.
//
// A stage's parameters are the slice [param_offset, param_offset + num_params) of the model's
// flat buffer, so the stages' slices, in order, tile that buffer. Forward, BackwardInput and
// BackwardWeight take the stage's own slice (num_params() values) and chain the layers' passes,
// as a Chain (composite.h): per microbatch the caller keeps the stage's input x, output y, output
// gradient dy and a record of Memory(rows).saved elements (everything in between), and lends
// Memory(rows).scratch elements of scratch; the *Into passes allocate nothing. The allocating
// Forward/BackwardInput/BackwardWeight wrappers run the same code over Matrix values and keep
// what they need in StageSaved. Layers are shared with the model (LayerPtr), so a stage stays
// valid after the model is gone. Thread-safety: const methods only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/composite.h"
#include "models/layer.h"

namespace pipecast::models {

// What the allocating wrappers keep between a stage's passes for one microbatch (`saved` is the
// stage's record).
template <typename T>
using StageSaved = Saved<T>;

template <typename T>
class Stage {
 public:
  // `first_layer`: the model index of layers[0]; `param_offset`: where this stage's slice starts
  // in the model's buffer. REQUIRES: no null layer; first_layer >= 0; param_offset >= 0.
  Stage(std::vector<LayerPtr<T>> layers, int32_t first_layer, int64_t param_offset);

  const std::vector<LayerPtr<T>>& layers() const { return chain_.layers(); }
  int32_t first_layer() const { return first_layer_; }
  int32_t num_layers() const { return static_cast<int32_t>(chain_.layers().size()); }
  int64_t param_offset() const { return param_offset_; }
  int64_t num_params() const { return chain_.num_params(); }
  int64_t input_width() const { return chain_.input_width(); }
  int64_t output_width() const { return chain_.output_width(); }
  // Per microbatch of `rows` rows: the record (`saved`) and the scratch the passes need.
  LayerMemory Memory(int64_t rows) const { return chain_.Memory(rows); }

  // This stage's slice of a whole-model buffer.
  // REQUIRES: model_params covers [param_offset, param_offset + num_params).
  std::span<const T> Slice(std::span<const T> model_params) const;
  std::span<T> Slice(std::span<T> model_params) const;

  // The layers' passes in caller memory (layer.h contracts; dx may be empty).
  void ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T> record,
                   std::span<T> scratch) const {
    chain_.Forward(params, x, y, record, scratch);
  }
  void BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                         View<T> dx, std::span<T> record, std::span<T> scratch) const {
    chain_.BackwardInput(params, x, y, dy, dx, record, scratch);
  }
  void BackwardWeightInto(ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                          std::span<const T> record, std::span<T> grad,
                          std::span<T> scratch) const {
    chain_.BackwardWeight(x, y, dy, record, grad, scratch);
  }

  // Allocating wrappers. `saved` may be null in Forward when no backward pass follows.
  Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x, StageSaved<T>* saved) const;
  // The input gradient, with `params` (which may be another weight version than the
  // forward's). REQUIRES: `saved` came from Forward.
  Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                          StageSaved<T>* saved) const;
  // grad (this stage's slice) += the weight gradient. REQUIRES: BackwardInput ran on `saved`.
  void BackwardWeight(const StageSaved<T>& saved, std::span<T> grad) const;
  double ForwardFlops(int64_t rows) const { return chain_.ForwardFlops(rows); }

 private:
  Chain<T> chain_;
  int32_t first_layer_;
  int64_t param_offset_;
};

}  // namespace pipecast::models
