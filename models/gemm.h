// Matrix products over row-major memory with caller-provided packing space, so that layers
// never allocate (models/layer.h). gemm.cc runs Eigen's own blocked kernel (the one behind
// `c.noalias() = a * b`, with the same blocking, hence the same results) on packing buffers
// carved from `scratch` instead of ones Eigen would allocate on the heap for large products.
#pragma once

#include <cstdint>
#include <span>

namespace pipecast::models {

enum class Op { kNone, kTranspose };

// Elements of T the packing buffers of an m x n x k product need (alignment included).
template <typename T>
int64_t GemmScratch(int64_t m, int64_t n, int64_t k);

// C = op(A) op(B), or C += op(A) op(B) with `accumulate`; op(A) is m x k, op(B) k x n, C m x n.
// A is stored row-major with leading dimension lda (m x k rows for kNone, k x m for
// kTranspose), likewise B with ldb, C with ldc. REQUIRES: scratch.size() >= GemmScratch(m, n, k);
// C overlaps neither A nor B.
template <typename T>
void Gemm(Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T* c, int64_t ldc, bool accumulate, std::span<T> scratch);

}  // namespace pipecast::models
