#include "models/loss.h"

#include <cmath>

#include "common/check.h"

namespace pipecast::models {

template <typename T>
LossResult<T> SoftmaxCrossEntropy(const Matrix<T>& logits, std::span<const int32_t> labels,
                                  double scale) {
  const int64_t rows = logits.rows();
  const int64_t classes = logits.cols();
  PIPECAST_CHECK(static_cast<int64_t>(labels.size()) == rows)
      << labels.size() << " labels for " << rows << " rows";
  LossResult<T> result;
  result.dlogits.resize(rows, classes);
  if (rows == 0) return result;
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
    for (int64_t c = 0; c < classes; ++c) {
      const double p = std::exp(static_cast<double>(logits(r, c)) - max - log_sum);
      result.dlogits(r, c) = static_cast<T>((p - (c == label ? 1.0 : 0.0)) * grad_scale);
    }
  }
  result.loss = total / static_cast<double>(rows);
  return result;
}

template <typename T>
int64_t CountCorrect(const Matrix<T>& logits, std::span<const int32_t> labels) {
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

template LossResult<float> SoftmaxCrossEntropy<float>(const Matrix<float>&,
                                                      std::span<const int32_t>, double);
template LossResult<double> SoftmaxCrossEntropy<double>(const Matrix<double>&,
                                                        std::span<const int32_t>, double);
template int64_t CountCorrect<float>(const Matrix<float>&, std::span<const int32_t>);
template int64_t CountCorrect<double>(const Matrix<double>&, std::span<const int32_t>);

}  // namespace pipecast::models
