// For tests that need a CUDA device (ctest label `gpu`): PIPECAST_REQUIRE_GPU() skips the test
// cleanly when the machine has no usable device (no GPU, or no driver: cudart is static and
// reports cudaErrorNoDevice or cudaErrorInsufficientDriver then).
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

namespace pipecast::testing {

inline bool HaveGpu() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error of the failed query
    return false;
  }
  return count > 0;
}

}  // namespace pipecast::testing

#define PIPECAST_REQUIRE_GPU()                                              \
  do {                                                                      \
    if (!::pipecast::testing::HaveGpu()) GTEST_SKIP() << "no CUDA device"; \
  } while (false)
