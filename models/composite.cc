#include "models/composite.h"

#include <algorithm>
#include <utility>

#include "common/check.h"

namespace pipecast::models {

template <typename T>
Chain<T>::Chain(std::vector<LayerPtr<T>> layers, int64_t identity_width)
    : layers_(std::move(layers)), identity_width_(identity_width) {
  param_offsets_.push_back(0);
  for (size_t i = 0; i < layers_.size(); ++i) {
    PIPECAST_CHECK(layers_[i] != nullptr) << "null layer";
    if (i > 0) {
      PIPECAST_CHECK(layers_[i]->input_width() == layers_[i - 1]->output_width())
          << layers_[i]->name() << " takes " << layers_[i]->input_width() << " columns but "
          << layers_[i - 1]->name() << " gives " << layers_[i - 1]->output_width();
    }
    param_offsets_.push_back(param_offsets_.back() + layers_[i]->num_params());
  }
  num_params_ = param_offsets_.back();
  width_before_.assign(layers_.size() + 1, 0);
  for (size_t i = 1; i < layers_.size(); ++i)
    width_before_[i + 1] = width_before_[i] + layers_[i]->input_width();
  internal_width_ = layers_.size() > 1 ? width_before_[layers_.size()] : 0;
}

template <typename T>
int64_t Chain<T>::input_width() const {
  return layers_.empty() ? identity_width_ : layers_.front()->input_width();
}

template <typename T>
int64_t Chain<T>::output_width() const {
  return layers_.empty() ? identity_width_ : layers_.back()->output_width();
}

template <typename T>
void Chain<T>::Init(std::span<T> params, Rng& rng) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params_);
  for (size_t i = 0; i < layers_.size(); ++i)
    layers_[i]->Init(params.subspan(param_offsets_[i], layers_[i]->num_params()), rng);
}

template <typename T>
double Chain<T>::ForwardFlops(int64_t rows) const {
  double total = 0;
  for (const LayerPtr<T>& layer : layers_) total += layer->ForwardFlops(rows);
  return total;
}

template <typename T>
LayerMemory Chain<T>::Memory(int64_t rows) const {
  LayerMemory m;
  m.saved = LayersSaved(rows);
  for (const LayerPtr<T>& layer : layers_) {
    const LayerMemory lm = layer->Memory(rows);
    m.saved += lm.saved;
    m.scratch = std::max(m.scratch, lm.scratch);
  }
  return m;
}

template <typename T>
void Chain<T>::Forward(std::span<const T> params, ConstView<T> x, View<T> y, std::span<T> saved,
                       std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params_);
  PIPECAST_CHECK(x.cols() == input_width() && y.cols() == output_width() && y.rows() == x.rows())
      << "chain of " << layers_.size() << " layers: " << x.rows() << "x" << x.cols() << " -> "
      << y.rows() << "x" << y.cols();
  if (layers_.empty()) {
    y = x;
    return;
  }
  const int64_t rows = x.rows();
  PIPECAST_CHECK(static_cast<int64_t>(saved.size()) >= Memory(rows).saved)
      << "chain: saved too small";
  const size_t n = layers_.size();
  int64_t own = LayersSaved(rows);
  for (size_t i = 0; i < n; ++i) {
    const Layer<T>& layer = *layers_[i];
    ConstView<T> in =
        i == 0 ? x : MakeConstView<T>(saved.data() + ActOffset(i, rows), rows, layer.input_width());
    View<T> out =
        i + 1 == n ? y
                   : MakeView<T>(saved.data() + ActOffset(i + 1, rows), rows, layer.output_width());
    layer.ForwardInto(params.subspan(param_offsets_[i], layer.num_params()), in, out,
                      saved.subspan(own), scratch);
    own += layer.Memory(rows).saved;
  }
}

template <typename T>
void Chain<T>::BackwardInput(std::span<const T> params, ConstView<T> x, ConstView<T> y,
                             ConstView<T> dy, View<T> dx, std::span<T> saved,
                             std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(params.size()) == num_params_);
  if (layers_.empty()) {
    if (!IsEmpty(dx)) dx = dy;
    return;
  }
  const int64_t rows = x.rows();
  const int64_t total = Memory(rows).saved;
  PIPECAST_CHECK(static_cast<int64_t>(saved.size()) >= total) << "chain: saved too small";
  const size_t n = layers_.size();
  int64_t own = total;  // end of layer i's saved memory, walking down
  for (size_t i = n; i-- > 0;) {
    const Layer<T>& layer = *layers_[i];
    const int64_t in_w = layer.input_width(), out_w = layer.output_width();
    own -= layer.Memory(rows).saved;
    T* base = saved.data();
    ConstView<T> in = i == 0 ? x : MakeConstView<T>(base + ActOffset(i, rows), rows, in_w);
    ConstView<T> out =
        i + 1 == n ? y : MakeConstView<T>(base + ActOffset(i + 1, rows), rows, out_w);
    ConstView<T> g_out =
        i + 1 == n ? dy : MakeConstView<T>(base + GradOffset(i + 1, rows), rows, out_w);
    View<T> g_in = i == 0 ? dx : MakeView<T>(base + GradOffset(i, rows), rows, in_w);
    layer.BackwardInputInto(params.subspan(param_offsets_[i], layer.num_params()), in, out, g_out,
                            g_in, saved.subspan(own), scratch);
  }
}

template <typename T>
void Chain<T>::BackwardWeight(ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                              std::span<const T> saved, std::span<T> grad,
                              std::span<T> scratch) const {
  PIPECAST_CHECK(static_cast<int64_t>(grad.size()) == num_params_);
  if (layers_.empty()) return;
  const int64_t rows = x.rows();
  const size_t n = layers_.size();
  int64_t own = LayersSaved(rows);
  for (size_t i = 0; i < n; ++i) {
    const Layer<T>& layer = *layers_[i];
    const int64_t in_w = layer.input_width(), out_w = layer.output_width();
    const T* base = saved.data();
    ConstView<T> in = i == 0 ? x : MakeView(base + ActOffset(i, rows), rows, in_w);
    ConstView<T> out = i + 1 == n ? y : MakeView(base + ActOffset(i + 1, rows), rows, out_w);
    ConstView<T> g_out = i + 1 == n ? dy : MakeView(base + GradOffset(i + 1, rows), rows, out_w);
    layer.BackwardWeightInto(in, out, g_out, saved.subspan(own),
                             grad.subspan(param_offsets_[i], layer.num_params()), scratch);
    own += layer.Memory(rows).saved;
  }
}

template <typename T>
Sequential<T>::Sequential(std::vector<LayerPtr<T>> children, int64_t identity_width)
    : chain_(std::move(children), identity_width) {}

template <typename T>
void Sequential<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y,
                                std::span<T> saved, std::span<T> scratch) const {
  chain_.Forward(params, x, y, saved, scratch);
}

template <typename T>
void Sequential<T>::BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T> y,
                                      ConstView<T> dy, View<T> dx, std::span<T> saved,
                                      std::span<T> scratch) const {
  chain_.BackwardInput(params, x, y, dy, dx, saved, scratch);
}

template <typename T>
void Sequential<T>::BackwardWeightInto(ConstView<T> x, ConstView<T> y, ConstView<T> dy,
                                       std::span<const T> saved, std::span<T> grad,
                                       std::span<T> scratch) const {
  chain_.BackwardWeight(x, y, dy, saved, grad, scratch);
}

template <typename T>
Residual<T>::Residual(int64_t features, std::vector<LayerPtr<T>> children)
    : features_(features), chain_(std::move(children), features) {
  PIPECAST_CHECK(features > 0);
  PIPECAST_CHECK(chain_.input_width() == features && chain_.output_width() == features)
      << "residual branch maps " << chain_.input_width() << " to " << chain_.output_width()
      << " columns, not " << features;
}

template <typename T>
double Residual<T>::ForwardFlops(int64_t rows) const {
  return chain_.ForwardFlops(rows) + static_cast<double>(rows) * static_cast<double>(features_);
}

template <typename T>
LayerMemory Residual<T>::Memory(int64_t rows) const {
  LayerMemory m = chain_.Memory(rows);
  m.saved += rows * features_;  // f(x)
  return m;
}

template <typename T>
void Residual<T>::ForwardInto(std::span<const T> params, ConstView<T> x, View<T> y,
                              std::span<T> saved, std::span<T> scratch) const {
  PIPECAST_CHECK(x.cols() == features_) << "residual expects " << features_ << " columns";
  const int64_t chain_saved = chain_.Memory(x.rows()).saved;
  View<T> fx = MakeView<T>(saved.data() + chain_saved, x.rows(), features_);
  chain_.Forward(params, x, fx, saved.first(chain_saved), scratch);
  y = fx + x;
}

template <typename T>
void Residual<T>::BackwardInputInto(std::span<const T> params, ConstView<T> x, ConstView<T> /*y*/,
                                    ConstView<T> dy, View<T> dx, std::span<T> saved,
                                    std::span<T> scratch) const {
  const int64_t chain_saved = chain_.Memory(x.rows()).saved;
  ConstView<T> fx = MakeConstView<T>(saved.data() + chain_saved, x.rows(), features_);
  chain_.BackwardInput(params, x, fx, dy, dx, saved.first(chain_saved), scratch);
  if (!IsEmpty(dx)) dx += dy;
}

template <typename T>
void Residual<T>::BackwardWeightInto(ConstView<T> x, ConstView<T> /*y*/, ConstView<T> dy,
                                     std::span<const T> saved, std::span<T> grad,
                                     std::span<T> scratch) const {
  const int64_t chain_saved = chain_.Memory(x.rows()).saved;
  ConstView<T> fx = MakeView(saved.data() + chain_saved, x.rows(), features_);
  chain_.BackwardWeight(x, fx, dy, saved.first(chain_saved), grad, scratch);
}

template class Chain<float>;
template class Chain<double>;
template class Sequential<float>;
template class Sequential<double>;
template class Residual<float>;
template class Residual<double>;

}  // namespace pipecast::models
