#include "models/composite.h"

#include <utility>

#include "common/check.h"

namespace pipecast::models {

template <typename T>
int64_t ChainParams(const std::vector<LayerPtr<T>>& layers) {
  int64_t total = 0;
  for (const LayerPtr<T>& layer : layers) total += layer->num_params();
  return total;
}

template <typename T>
void ChainInit(const std::vector<LayerPtr<T>>& layers, std::span<T> params, Rng& rng) {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == ChainParams(layers));
  size_t offset = 0;
  for (const LayerPtr<T>& layer : layers) {
    const auto n = static_cast<size_t>(layer->num_params());
    layer->Init(params.subspan(offset, n), rng);
    offset += n;
  }
}

template <typename T>
Matrix<T> ChainForward(const std::vector<LayerPtr<T>>& layers, std::span<const T> params,
                       const Matrix<T>& x, std::vector<Saved<T>>* saved) {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == ChainParams(layers));
  if (saved != nullptr) saved->assign(layers.size(), Saved<T>());
  if (layers.empty()) return x;
  Matrix<T> h;
  size_t offset = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto n = static_cast<size_t>(layers[i]->num_params());
    Saved<T>* s = saved == nullptr ? nullptr : &(*saved)[i];
    h = layers[i]->Forward(params.subspan(offset, n), i == 0 ? x : h, s);
    offset += n;
  }
  return h;
}

template <typename T>
Matrix<T> ChainBackwardInput(const std::vector<LayerPtr<T>>& layers, std::span<const T> params,
                             const Matrix<T>& dy, std::vector<Saved<T>>* saved) {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == ChainParams(layers));
  PIPECAST_CHECK(saved != nullptr && saved->size() == layers.size())
      << "BackwardInput before Forward";
  if (layers.empty()) return dy;
  Matrix<T> g;
  size_t end = params.size();
  for (size_t i = layers.size(); i-- > 0;) {
    const auto n = static_cast<size_t>(layers[i]->num_params());
    end -= n;
    g = layers[i]->BackwardInput(params.subspan(end, n), i + 1 == layers.size() ? dy : g,
                                 &(*saved)[i]);
  }
  return g;
}

template <typename T>
void ChainBackwardWeight(const std::vector<LayerPtr<T>>& layers, const std::vector<Saved<T>>& saved,
                         std::span<T> grad) {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == ChainParams(layers));
  PIPECAST_CHECK(saved.size() == layers.size()) << "BackwardWeight before Forward";
  size_t offset = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto n = static_cast<size_t>(layers[i]->num_params());
    layers[i]->BackwardWeight(saved[i], grad.subspan(offset, n));
    offset += n;
  }
}

template <typename T>
double ChainForwardFlops(const std::vector<LayerPtr<T>>& layers, int64_t rows) {
  double total = 0;
  for (const LayerPtr<T>& layer : layers) total += layer->ForwardFlops(rows);
  return total;
}

namespace {
template <typename T>
void CheckChildren(const std::vector<LayerPtr<T>>& children) {
  for (const LayerPtr<T>& child : children) PIPECAST_CHECK(child != nullptr) << "null child";
}
}  // namespace

template <typename T>
Sequential<T>::Sequential(std::vector<LayerPtr<T>> children) : children_(std::move(children)) {
  CheckChildren(children_);
  num_params_ = ChainParams(children_);
}

template <typename T>
void Sequential<T>::Init(std::span<T> params, Rng& rng) const {
  ChainInit(children_, params, rng);
}

template <typename T>
Matrix<T> Sequential<T>::Forward(std::span<const T> params, const Matrix<T>& x,
                                 Saved<T>* saved) const {
  if (saved != nullptr) saved->tensors.clear();
  return ChainForward(children_, params, x, saved == nullptr ? nullptr : &saved->children);
}

template <typename T>
Matrix<T> Sequential<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                       Saved<T>* saved) const {
  PIPECAST_CHECK(saved != nullptr) << "sequential: BackwardInput needs the forward's record";
  return ChainBackwardInput(children_, params, dy, &saved->children);
}

template <typename T>
void Sequential<T>::BackwardWeight(const Saved<T>& saved, std::span<T> grad) const {
  ChainBackwardWeight(children_, saved.children, grad);
}

template <typename T>
double Sequential<T>::ForwardFlops(int64_t rows) const {
  return ChainForwardFlops(children_, rows);
}

template <typename T>
Residual<T>::Residual(int64_t features, std::vector<LayerPtr<T>> children)
    : features_(features), children_(std::move(children)) {
  PIPECAST_CHECK(features > 0);
  CheckChildren(children_);
  num_params_ = ChainParams(children_);
}

template <typename T>
void Residual<T>::Init(std::span<T> params, Rng& rng) const {
  ChainInit(children_, params, rng);
}

template <typename T>
Matrix<T> Residual<T>::Forward(std::span<const T> params, const Matrix<T>& x,
                               Saved<T>* saved) const {
  PIPECAST_CHECK(x.cols() == features_) << "residual expects " << features_ << " columns";
  if (saved != nullptr) saved->tensors.clear();
  Matrix<T> y = ChainForward(children_, params, x, saved == nullptr ? nullptr : &saved->children);
  PIPECAST_CHECK(y.rows() == x.rows() && y.cols() == x.cols()) << "residual branch changes shape";
  y += x;
  return y;
}

template <typename T>
Matrix<T> Residual<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                     Saved<T>* saved) const {
  PIPECAST_CHECK(saved != nullptr) << "residual: BackwardInput needs the forward's record";
  Matrix<T> dx = ChainBackwardInput(children_, params, dy, &saved->children);
  dx += dy;
  return dx;
}

template <typename T>
void Residual<T>::BackwardWeight(const Saved<T>& saved, std::span<T> grad) const {
  ChainBackwardWeight(children_, saved.children, grad);
}

template <typename T>
double Residual<T>::ForwardFlops(int64_t rows) const {
  return ChainForwardFlops(children_, rows) +
         static_cast<double>(rows) * static_cast<double>(features_);
}

#define PIPECAST_INSTANTIATE_CHAIN(T)                                                           \
  template int64_t ChainParams<T>(const std::vector<LayerPtr<T>>&);                             \
  template void ChainInit<T>(const std::vector<LayerPtr<T>>&, std::span<T>, Rng&);              \
  template Matrix<T> ChainForward<T>(const std::vector<LayerPtr<T>>&, std::span<const T>,       \
                                     const Matrix<T>&, std::vector<Saved<T>>*);                 \
  template Matrix<T> ChainBackwardInput<T>(const std::vector<LayerPtr<T>>&, std::span<const T>, \
                                           const Matrix<T>&, std::vector<Saved<T>>*);           \
  template void ChainBackwardWeight<T>(const std::vector<LayerPtr<T>>&,                         \
                                       const std::vector<Saved<T>>&, std::span<T>);             \
  template double ChainForwardFlops<T>(const std::vector<LayerPtr<T>>&, int64_t);               \
  template class Sequential<T>;                                                                 \
  template class Residual<T>;

PIPECAST_INSTANTIATE_CHAIN(float)
PIPECAST_INSTANTIATE_CHAIN(double)
#undef PIPECAST_INSTANTIATE_CHAIN

}  // namespace pipecast::models
