#include "models/loss.h"

#include <cmath>

#include "common/check.h"

namespace pipecast::models {

template <typename T>
double SoftmaxCrossEntropyInto(ConstView<T> logits, std::span<const int32_t> labels, double scale,
                               View<T> dlogits) {
  const int64_t rows = logits.rows();
  const int64_t classes = logits.cols();
  PIPECAST_CHECK(static_cast<int64_t>(labels.size()) == rows)
      << labels.size() << " labels for " << rows << " rows";
  const bool grad = !IsEmpty(dlogits);
  PIPECAST_CHECK(!grad || (dlogits.rows() == rows && dlogits.cols() == classes));
  if (rows == 0) return 0;
  const double grad_scale = scale / static_cast<double>(rows);
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t label = labels[r];
    PIPECAST_CHECK(label >= 0 && label < classes)
        << "label " << label << " out of range [0, " << classes << ")";
    const double max = static_cast<double>(logits.row(r).maxCoeff());
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(logits(r, c)) - max);
    const double log_sum = std::log(sum);  // >= 0: the maximum contributes exp(0) = 1
    total += max + log_sum - static_cast<double>(logits(r, label));
    if (!grad) continue;
    for (int64_t c = 0; c < classes; ++c) {
      const double p = std::exp(static_cast<double>(logits(r, c)) - max - log_sum);
      dlogits(r, c) = static_cast<T>((p - (c == label ? 1.0 : 0.0)) * grad_scale);
    }
  }
  return total / static_cast<double>(rows);
}

template <typename T>
LossResult<T> SoftmaxCrossEntropy(const Matrix<T>& logits, std::span<const int32_t> labels,
                                  double scale) {
  LossResult<T> result;
  result.dlogits.resize(logits.rows(), logits.cols());
  result.loss = SoftmaxCrossEntropyInto<T>(
      MakeView(logits.data(), logits.rows(), logits.cols()), labels, scale,
      MakeView(result.dlogits.data(), logits.rows(), logits.cols()));
  return result;
}

template <typename T>
int64_t CountCorrect(ConstView<T> logits, std::span<const int32_t> labels) {
  PIPECAST_CHECK(static_cast<int64_t>(labels.size()) == logits.rows());
  PIPECAST_CHECK(logits.cols() > 0);
  int64_t correct = 0;
  for (int64_t r = 0; r < logits.rows(); ++r) {
    int64_t best = 0;
    for (int64_t c = 1; c < logits.cols(); ++c) {
      if (logits(r, c) > logits(r, best)) best = c;  // strict: the first maximum wins
    }
    if (best == labels[r]) ++correct;
  }
  return correct;
}

#define PIPECAST_INSTANTIATE_LOSS(T)                                                         \
  template double SoftmaxCrossEntropyInto<T>(ConstView<T>, std::span<const int32_t>, double, \
                                             View<T>);                                       \
  template LossResult<T> SoftmaxCrossEntropy<T>(const Matrix<T>&, std::span<const int32_t>,  \
                                                double);                                     \
  template int64_t CountCorrect<T>(ConstView<T>, std::span<const int32_t>);
PIPECAST_INSTANTIATE_LOSS(float)
PIPECAST_INSTANTIATE_LOSS(double)
#undef PIPECAST_INSTANTIATE_LOSS

}  // namespace pipecast::models
