#include "models/stage.h"

#include <utility>

#include "common/check.h"

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
  PIPECAST_CHECK(x.cols() == input_width())
      << "stage expects " << input_width() << " columns, got " << x.cols();
  const LayerMemory m = Memory(x.rows());
  Matrix<T> y(x.rows(), output_width());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  std::vector<T> local;
  std::vector<T>& record = saved != nullptr ? saved->record : local;
  record.assign(static_cast<size_t>(m.saved), T(0));
  ForwardInto(params, MakeConstView<T>(x.data(), x.rows(), x.cols()),
              MakeView(y.data(), y.rows(), y.cols()), record, scratch);
  if (saved != nullptr) {
    saved->x = x;
    saved->y = y;
  }
  return y;
}

template <typename T>
Matrix<T> Stage<T>::BackwardInput(std::span<const T> params, const Matrix<T>& dy,
                                  StageSaved<T>* saved) const {
  PIPECAST_CHECK(saved != nullptr && saved->x.rows() == dy.rows() && dy.cols() == output_width())
      << "stage: BackwardInput needs the forward's record and a gradient of its output's shape";
  const LayerMemory m = Memory(dy.rows());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  saved->dy = dy;
  Matrix<T> dx(dy.rows(), input_width());
  BackwardInputInto(params, MakeConstView<T>(saved->x.data(), saved->x.rows(), saved->x.cols()),
                    MakeConstView<T>(saved->y.data(), saved->y.rows(), saved->y.cols()),
                    MakeConstView<T>(saved->dy.data(), dy.rows(), dy.cols()),
                    MakeView(dx.data(), dx.rows(), dx.cols()), saved->record, scratch);
  return dx;
}

template <typename T>
void Stage<T>::BackwardWeight(const StageSaved<T>& saved, std::span<T> grad) const {
  PIPECAST_CHECK(saved.dy.rows() == saved.x.rows() && saved.dy.cols() == output_width())
      << "stage: BackwardWeight before BackwardInput";
  const LayerMemory m = Memory(saved.x.rows());
  std::vector<T> scratch(static_cast<size_t>(m.scratch));
  BackwardWeightInto(MakeConstView<T>(saved.x.data(), saved.x.rows(), saved.x.cols()),
                     MakeConstView<T>(saved.y.data(), saved.y.rows(), saved.y.cols()),
                     MakeConstView<T>(saved.dy.data(), saved.dy.rows(), saved.dy.cols()),
                     saved.record, grad, scratch);
}

template class Stage<float>;
template class Stage<double>;

}  // namespace pipecast::models
