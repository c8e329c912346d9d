#include "models/stage.h"

#include <utility>

#include "common/check.h"
#include "models/allocating_passes.h"

namespace pipecast::models {

template <typename T>
Stage<T>::Stage(std::vector<LayerPtr<T>> layers, int32_t first_layer, int64_t param_offset)
    : chain_(std::move(layers)), first_layer_(first_layer), param_offset_(param_offset) {
  PIPECAST_CHECK(first_layer >= 0 && param_offset >= 0);
}

template <typename T>
std::span<const T> Stage<T>::Slice(std::span<const T> model_params) const {
  PIPECAST_CHECK(param_offset_ + num_params() <= static_cast<int64_t>(model_params.size()));
  return model_params.subspan(param_offset_, num_params());
}

template <typename T>
std::span<T> Stage<T>::Slice(std::span<T> model_params) const {
  PIPECAST_CHECK(param_offset_ + num_params() <= static_cast<int64_t>(model_params.size()));
  return model_params.subspan(param_offset_, num_params());
}

template <typename T>
Matrix<T> Stage<T>::Forward(std::span<const T> params, const Matrix<T>& x,
                            StageSaved<T>* saved) const {
  return internal::ForwardAllocating(*this, params, x, saved, "stage");
}

template <typename T>
Matrix<T> Stage<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                  StageSaved<T>* saved) const {
  return internal::BackwardInputAllocating(*this, params, dy, saved, "stage");
}

template <typename T>
void Stage<T>::BackwardWeight(const StageSaved<T>& saved, std::span<T> grad) const {
  internal::BackwardWeightAllocating(*this, saved, grad, "stage");
}

template class Stage<float>;
template class Stage<double>;

}  // namespace pipecast::models
