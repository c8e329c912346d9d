// Stage: a contiguous run of a model's layers that one pipeline stage (or one chunk of an
// interleaved schedule) runs as a unit, with its own flat parameter slice.
//
// A stage's parameters are the slice [param_offset, param_offset + num_params) of the model's
// flat buffer, so the stages' slices, in order, tile that buffer. Forward, BackwardInput and
// BackwardWeight take the stage's own slice (num_params() values) and chain the layers' passes,
// keeping one Saved per layer in StageSaved. Layers are shared with the model (LayerPtr), so a
// stage stays valid after the model is gone. Thread-safety: const methods only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/layer.h"

namespace pipecast::models {

// What a stage keeps between its passes for one microbatch: one record per layer.
template <typename T>
struct StageSaved {
  std::vector<Saved<T>> layers;
};

template <typename T>
class Stage {
 public:
  // `first_layer`: the model index of layers[0]; `param_offset`: where this stage's slice starts
  // in the model's buffer. REQUIRES: no null layer; first_layer >= 0; param_offset >= 0.
  Stage(std::vector<LayerPtr<T>> layers, int32_t first_layer, int64_t param_offset);

  const std::vector<LayerPtr<T>>& layers() const { return layers_; }
  int32_t first_layer() const { return first_layer_; }
  int32_t num_layers() const { return static_cast<int32_t>(layers_.size()); }
  int64_t param_offset() const { return param_offset_; }
  int64_t num_params() const { return num_params_; }

  // This stage's slice of a whole-model buffer.
  // REQUIRES: model_params covers [param_offset, param_offset + num_params).
  std::span<const T> Slice(std::span<const T> model_params) const;
  std::span<T> Slice(std::span<T> model_params) const;

  // The layers' Forward in order. `saved` may be null when no backward pass follows.
  Matrix<T> Forward(std::span<const T> params, const Matrix<T>& x, StageSaved<T>* saved) const;
  // The layers' BackwardInput in reverse order, with `params` (which may be another weight
  // version than the forward's). REQUIRES: `saved` came from Forward.
  Matrix<T> BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                          StageSaved<T>* saved) const;
  // grad (this stage's slice) += the weight gradient. REQUIRES: BackwardInput ran on `saved`.
  void BackwardWeight(const StageSaved<T>& saved, std::span<T> grad) const;
  double ForwardFlops(int64_t rows) const;

 private:
  std::vector<LayerPtr<T>> layers_;
  int32_t first_layer_;
  int64_t param_offset_;
  int64_t num_params_;
};

}  // namespace pipecast::models
