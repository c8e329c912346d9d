// A counting allocator for tests: every malloc, calloc, realloc and aligned allocation of the
// process (operator new and Eigen's aligned_malloc go through malloc) is counted while a
// CountAllocations scope is active on any thread. Link counting_allocator.cc into the test
// binary: it replaces the C allocation functions with ones that count and forward to glibc.
#pragma once

#include <cstdint>

namespace pipecast::testing {

// Allocations counted since the process started (only while counting is on).
int64_t AllocationCount();

// Counts allocations made by any thread between construction and count().
class CountAllocations {
 public:
  CountAllocations();
  ~CountAllocations();
  CountAllocations(const CountAllocations&) = delete;
  CountAllocations& operator=(const CountAllocations&) = delete;
  int64_t count() const { return AllocationCount() - start_; }

 private:
  int64_t start_;
};

}  // namespace pipecast::testing
