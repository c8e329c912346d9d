// LoaderFeed: the DataFeed of a training run over a models::Loader. Microbatch j of the run is
// batch `first_batch + j` of the loader; inputs and labels are gathered into buffers the feed
// owns (one pair for Input, one for Labels, so stage 0's thread and the last stage's thread can
// call them concurrently), allocating nothing after construction.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/data.h"
#include "runtime/executor.h"

namespace pipecast::runtime {

class LoaderFeed : public DataFeed {
 public:
  LoaderFeed(const models::Loader& loader, int32_t microbatch_size, int64_t first_batch);
  std::span<const float> Input(int32_t microbatch) override;
  std::span<const int32_t> Labels(int32_t microbatch) override;
  // Rows of one microbatch (examples × rows per example).
  int64_t rows() const { return static_cast<int64_t>(labels_.size()); }

 private:
  const models::Loader& loader_;
  const int32_t microbatch_size_;
  const int64_t first_batch_;
  std::vector<int64_t> input_indices_, label_indices_;
  std::vector<float> x_;
  std::vector<int32_t> labels_;
};

}  // namespace pipecast::runtime
