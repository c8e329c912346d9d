// Pool planning for the CUDA device: every buffer a program needs (weight copies, activation
// records, reduction buffers, scratch, losses) lives in one device allocation made by Prepare,
// at offsets planned here, each aligned to 256 bytes (what cudaMalloc guarantees and cuBLASLt
// and vectorised kernels want). Plain host arithmetic with checked sums, so the plan is tested
// without a GPU and a plan that overflows is refused before any memory is asked for.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace pipecast::runtime::cuda {

inline constexpr int64_t kPoolAlignment = 256;

// One planned buffer.
struct PoolEntry {
  std::string what;  // "stage 2 activation records", for messages
  int64_t bytes = 0;
  int64_t offset = 0;
};

class PoolPlan {
 public:
  // Adds a buffer of `bytes` (>= 0; 0 gives an aligned offset and no space) and returns its
  // index. Offsets are assigned in the order of the calls.
  int32_t Add(std::string what, int64_t bytes);
  // Offsets of every buffer; the total, a multiple of kPoolAlignment. Errors: kInvalidArgument
  // naming the buffer whose size or offset overflows int64.
  Status Finish();

  const PoolEntry& entry(int32_t index) const { return entries_[index]; }
  int32_t size() const { return static_cast<int32_t>(entries_.size()); }
  int64_t total_bytes() const { return total_; }
  // The largest entries first, for an out-of-memory message: "stage 1 activation records
  // 3.20 GiB, stage 1 weight copies 1.10 GiB, ...", at most `count` of them.
  std::string Largest(int32_t count) const;

 private:
  std::vector<PoolEntry> entries_;
  int64_t total_ = 0;
  bool finished_ = false;
};

// "1.25 GiB", "512.0 MiB", "12.0 KiB", "96 B".
std::string FormatBytes(int64_t bytes);

}  // namespace pipecast::runtime::cuda
