#include "models/stage.h"

#include <utility>

#include "common/check.h"
#include "models/composite.h"

namespace pipecast::models {

template <typename T>
Stage<T>::Stage(std::vector<LayerPtr<T>> layers, int32_t first_layer, int64_t param_offset)
    : layers_(std::move(layers)), first_layer_(first_layer), param_offset_(param_offset) {
  PIPECAST_CHECK(first_layer >= 0 && param_offset >= 0);
  for (const LayerPtr<T>& layer : layers_) PIPECAST_CHECK(layer != nullptr) << "null layer";
  num_params_ = ChainParams(layers_);
}

template <typename T>
std::span<const T> Stage<T>::Slice(std::span<const T> model_params) const {
  PIPECAST_CHECK(param_offset_ + num_params_ <= static_cast<int64_t>(model_params.size()));
  return model_params.subspan(param_offset_, num_params_);
}

template <typename T>
std::span<T> Stage<T>::Slice(std::span<T> model_params) const {
  PIPECAST_CHECK(param_offset_ + num_params_ <= static_cast<int64_t>(model_params.size()));
  return model_params.subspan(param_offset_, num_params_);
}

template <typename T>
Matrix<T> Stage<T>::Forward(std::span<const T> params, const Matrix<T>& x,
                            StageSaved<T>* saved) const {
  return ChainForward(layers_, params, x, saved == nullptr ? nullptr : &saved->layers);
}

template <typename T>
Matrix<T> Stage<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                  StageSaved<T>* saved) const {
  PIPECAST_CHECK(saved != nullptr) << "stage: BackwardInput needs the forward's record";
  return ChainBackwardInput(layers_, params, dy, &saved->layers);
}

template <typename T>
void Stage<T>::BackwardWeight(const StageSaved<T>& saved, std::span<T> grad) const {
  ChainBackwardWeight(layers_, saved.layers, grad);
}

template <typename T>
double Stage<T>::ForwardFlops(int64_t rows) const {
  return ChainForwardFlops(layers_, rows);
}

template class Stage<float>;
template class Stage<double>;

}  // namespace pipecast::models
