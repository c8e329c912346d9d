#include "runtime/cpu_backend.h"

#include <cstring>

#include "common/check.h"
#include "models/loss.h"

namespace pipecast::runtime {

Tensor ToTensor(const models::Matrix<float>& m) {
  Tensor t;
  t.rows = m.rows();
  t.cols = m.cols();
  t.data.assign(m.data(), m.data() + m.size());
  return t;
}

models::Matrix<float> ToMatrix(const Tensor& t) {
  models::Matrix<float> m(t.rows, t.cols);
  if (!t.data.empty()) std::memcpy(m.data(), t.data.data(), t.data.size() * sizeof(float));
  return m;
}

Tensor CpuStageBackend::Forward(int32_t microbatch, std::span<const float> weights,
                                const Tensor& x) {
  models::StageSaved<float>& saved = saved_[microbatch];
  return ToTensor(stage_.Forward(weights, ToMatrix(x), &saved));
}

Tensor CpuStageBackend::BackwardInput(int32_t microbatch, std::span<const float> weights,
                                      const Tensor& dy, bool need_dx) {
  auto it = saved_.find(microbatch);
  PIPECAST_CHECK(it != saved_.end()) << "backward of microbatch " << microbatch
                                     << " before its forward";
  // The stage still runs every layer's BackwardInput (it records what BackwardWeight needs);
  // only the copy of an unused input gradient is skipped.
  models::Matrix<float> dx = stage_.BackwardInput(weights, ToMatrix(dy), &it->second);
  return need_dx ? ToTensor(dx) : Tensor();
}

void CpuStageBackend::BackwardWeight(int32_t microbatch, std::span<float> grad) {
  auto it = saved_.find(microbatch);
  PIPECAST_CHECK(it != saved_.end()) << "weight gradient of microbatch " << microbatch
                                     << " before its forward";
  stage_.BackwardWeight(it->second, grad);
  saved_.erase(it);
}

Tensor LoaderFeed::Input(int32_t microbatch) {
  models::Batch batch = loader_.Get(first_batch_ + microbatch, microbatch_size_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    labels_[microbatch] = std::move(batch.labels);
  }
  return ToTensor(batch.x);
}

double LoaderFeed::Loss(int32_t microbatch, const Tensor& logits, float scale, Tensor* dlogits) {
  std::vector<int32_t> labels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = labels_.find(microbatch);
    if (it != labels_.end()) {
      labels = std::move(it->second);
      labels_.erase(it);
    }
  }
  if (labels.empty()) labels = loader_.Get(first_batch_ + microbatch, microbatch_size_).labels;
  const models::Matrix<float> m = ToMatrix(logits);
  auto r = models::SoftmaxCrossEntropy<float>(m, labels, scale);
  *dlogits = ToTensor(r.dlogits);
  const int64_t correct = models::CountCorrect<float>(m, labels);
  std::lock_guard<std::mutex> lock(mu_);
  correct_ += correct;
  return r.loss;
}

int64_t LoaderFeed::correct() const {
  std::lock_guard<std::mutex> lock(mu_);
  return correct_;
}

}  // namespace pipecast::runtime
