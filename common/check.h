// PIPECAST_CHECK: always-on invariant checks. A failure is a bug in pipecast, not a user error;
// it prints file, line, the condition and a streamed message, then aborts.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace pipecast::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": check failed: " << condition << ": ";
  }
  [[noreturn]] ~CheckFailure() {
    std::fprintf(stderr, "%s\n", stream_.str().c_str());
    std::fflush(stderr);
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `PIPECAST_CHECK(x) << msg` be an expression of type void in both branches.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace pipecast::internal

#define PIPECAST_CHECK(condition)                   \
  (condition) ? (void)0                             \
              : ::pipecast::internal::Voidify() &   \
                    ::pipecast::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()
