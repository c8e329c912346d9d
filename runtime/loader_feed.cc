#include "runtime/loader_feed.h"

namespace pipecast::runtime {

LoaderFeed::LoaderFeed(const models::Loader& loader, int32_t microbatch_size, int64_t first_batch)
    : loader_(loader),
      microbatch_size_(microbatch_size),
      first_batch_(first_batch),
      input_indices_(static_cast<size_t>(microbatch_size)),
      label_indices_(static_cast<size_t>(microbatch_size)) {
  const models::Dataset& d = loader.data();
  const int64_t rows = static_cast<int64_t>(microbatch_size) * d.rows_per_example();
  x_.resize(static_cast<size_t>(rows * d.columns()));
  labels_.resize(static_cast<size_t>(rows));
}

std::span<const float> LoaderFeed::Input(int32_t microbatch) {
  loader_.Fill(first_batch_ + microbatch, microbatch_size_, input_indices_, x_, {});
  return x_;
}

std::span<const int32_t> LoaderFeed::Labels(int32_t microbatch) {
  loader_.Fill(first_batch_ + microbatch, microbatch_size_, label_indices_, {}, labels_);
  return labels_;
}

}  // namespace pipecast::runtime
