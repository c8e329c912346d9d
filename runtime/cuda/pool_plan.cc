// PoolPlan (pool_plan.h).
#include "runtime/cuda/pool_plan.h"

#include <algorithm>
#include <cstdio>

#include "common/check.h"

namespace pipecast::runtime::cuda {

int32_t PoolPlan::Add(std::string what, int64_t bytes) {
  PIPECAST_CHECK(!finished_) << "PoolPlan::Add after Finish";
  PIPECAST_CHECK(bytes >= 0) << what << ": negative size " << bytes;
  entries_.push_back({std::move(what), bytes, 0});
  return static_cast<int32_t>(entries_.size()) - 1;
}

Status PoolPlan::Finish() {
  PIPECAST_CHECK(!finished_) << "PoolPlan::Finish twice";
  int64_t at = 0;
  for (PoolEntry& e : entries_) {
    e.offset = at;
    int64_t end = 0, rounded = 0;
    if (__builtin_add_overflow(at, e.bytes, &end) ||
        __builtin_add_overflow(end, kPoolAlignment - 1, &rounded)) {
      return InvalidArgument("the device memory plan overflows at " + e.what + " (" +
                             std::to_string(e.bytes) + " bytes after " + std::to_string(at) +
                             "): use fewer or smaller microbatches");
    }
    at = rounded / kPoolAlignment * kPoolAlignment;
  }
  total_ = at;
  finished_ = true;
  return Status::Ok();
}

std::string PoolPlan::Largest(int32_t count) const {
  std::vector<const PoolEntry*> order;
  for (const PoolEntry& e : entries_)
    if (e.bytes > 0) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(),
                   [](const PoolEntry* a, const PoolEntry* b) { return a->bytes > b->bytes; });
  std::string out;
  for (int32_t i = 0; i < count && i < static_cast<int32_t>(order.size()); ++i) {
    if (!out.empty()) out += ", ";
    out += order[i]->what + " " + FormatBytes(order[i]->bytes);
  }
  return out;
}

std::string FormatBytes(int64_t bytes) {
  char buf[48];
  const double b = static_cast<double>(bytes);
  if (bytes >= (int64_t{1} << 30)) {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / (int64_t{1} << 30));
  } else if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / (int64_t{1} << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", b / 1024);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(bytes));
  }
  return buf;
}

}  // namespace pipecast::runtime::cuda
