// The allocating wrappers of Layer (layer.h): the same passes over Matrix values.
#include "models/layer.h"

#include "models/allocating_passes.h"

namespace pipecast::models {

template <typename T>
Matrix<T> Layer<T>::Forward(std::span<const T> params, const Matrix<T>& x, Saved<T>* saved) const {
  return internal::ForwardAllocating(*this, params, x, saved, name().c_str());
}

template <typename T>
Matrix<T> Layer<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                  Saved<T>* saved) const {
  return internal::BackwardInputAllocating(*this, params, dy, saved, name().c_str());
}

template <typename T>
void Layer<T>::BackwardWeight(const Saved<T>& saved, std::span<T> grad) const {
  internal::BackwardWeightAllocating(*this, saved, grad, name().c_str());
}

template class Layer<float>;
template class Layer<double>;

}  // namespace pipecast::models
