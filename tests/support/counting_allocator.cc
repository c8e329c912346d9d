// Replaces glibc's allocation entry points with counting wrappers (see counting_allocator.h).
// The counters are process-wide on purpose: a test asks whether anything at all allocated.
#include "support/counting_allocator.h"

#include <atomic>
#include <cstddef>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<int64_t> g_count{0};
std::atomic<int32_t> g_active{0};

void Count() {
  if (g_active.load(std::memory_order_relaxed) > 0) g_count.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(size_t n) {
  Count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  Count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  Count();
  return __libc_realloc(p, n);
}
void* memalign(size_t alignment, size_t n) {
  Count();
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(size_t alignment, size_t n) {
  Count();
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, size_t alignment, size_t n) {
  Count();
  void* p = __libc_memalign(alignment, n);
  if (p == nullptr) return 12;  // ENOMEM
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}

namespace pipecast::testing {

int64_t AllocationCount() { return g_count.load(); }

CountAllocations::CountAllocations() : start_(0) {
  g_active.fetch_add(1);
  start_ = AllocationCount();
}

CountAllocations::~CountAllocations() { g_active.fetch_sub(1); }

}  // namespace pipecast::testing
