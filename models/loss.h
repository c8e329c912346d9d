// Softmax cross-entropy over rows of logits with integer labels, and an accuracy count.
//
// For row r with logits z and label c:  loss_r = logsumexp(z) - z_c, computed as
// m + log(sum exp(z - m)) with m = max(z), so that logits of any size stay finite.
// The returned loss is the mean over rows; the gradient of that mean with respect to z is
// (softmax(z) - onehot(c)) / rows, and is returned multiplied by a caller-given `scale` (for
// example 1/M when a minibatch is split into M microbatches whose gradients are summed).
// Arithmetic is done in double whatever T is.
#pragma once

#include <cstdint>
#include <span>

#include "models/layer.h"

namespace pipecast::models {

template <typename T>
struct LossResult {
  double loss = 0;    // mean over rows (0 for no rows)
  Matrix<T> dlogits;  // same shape as the logits: d(mean loss)/d(logits) * scale
};

// The mean loss; writes d(mean loss)/d(logits) * scale into `dlogits` unless it is empty.
// Allocates nothing. REQUIRES: labels.size() == logits.rows(); every label in
// [0, logits.cols()); dlogits empty or of the logits' shape.
template <typename T>
double SoftmaxCrossEntropyInto(ConstView<T> logits, std::span<const int32_t> labels, double scale,
                               View<T> dlogits);

// The same, allocating its result.
template <typename T>
LossResult<T> SoftmaxCrossEntropy(const Matrix<T>& logits, std::span<const int32_t> labels,
                                  double scale = 1.0);

// The number of rows whose largest logit (the first one, on ties) is at the label.
// REQUIRES: labels.size() == logits.rows(); logits.cols() > 0.
template <typename T>
int64_t CountCorrect(ConstView<T> logits, std::span<const int32_t> labels);
template <typename T>
int64_t CountCorrect(const Matrix<T>& logits, std::span<const int32_t> labels) {
  return CountCorrect<T>(MakeView(logits.data(), logits.rows(), logits.cols()), labels);
}

}  // namespace pipecast::models
