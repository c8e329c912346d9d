#include "models/gemm.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "common/check.h"

namespace pipecast::models {
namespace {

using Eigen::Index;
constexpr int64_t kAlignBytes = 64;  // at least Eigen's packet alignment on every target

// Eigen's blocking sizes for a row-major m x n x k product (as gemm_blocking_space computes
// them: a row-major result is computed as the transposed column-major product), pointing at
// caller memory instead of owning buffers.
template <typename T>
class ScratchBlocking : public Eigen::internal::level3_blocking<T, T> {
 public:
  ScratchBlocking(Index m, Index n, Index k) {
    this->m_mc = n;
    this->m_nc = m;
    this->m_kc = k;
    Eigen::internal::computeProductBlockingSizes<T, T, 1>(this->m_kc, this->m_mc, this->m_nc,
                                                          Index{1});
  }
  Index size_a() const { return this->m_mc * this->m_kc; }
  Index size_b() const { return this->m_kc * this->m_nc; }
  void Attach(T* a, T* b) {
    this->m_blockA = a;
    this->m_blockB = b;
  }
};

template <typename T>
int64_t Padded(int64_t elements) {
  constexpr int64_t kAlign = kAlignBytes / static_cast<int64_t>(sizeof(T));
  return elements + kAlign;
}

template <typename T>
T* Aligned(T* p) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  const auto aligned = (address + kAlignBytes - 1) & ~static_cast<std::uintptr_t>(kAlignBytes - 1);
  return reinterpret_cast<T*>(aligned);
}

template <typename T, int LhsOrder, int RhsOrder>
void Run(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb, T* c,
         int64_t ldc, ScratchBlocking<T>& blocking) {
  Eigen::internal::general_matrix_matrix_product<Index, T, LhsOrder, false, T, RhsOrder, false,
                                                 Eigen::RowMajor, 1>::run(m, n, k, a, lda, b, ldb,
                                                                          c, 1, ldc, T(1), blocking,
                                                                          nullptr);
}

}  // namespace

template <typename T>
int64_t GemmScratch(int64_t m, int64_t n, int64_t k) {
  if (m <= 0 || n <= 0 || k <= 0) return 0;
  const ScratchBlocking<T> blocking(m, n, k);
  return Padded<T>(blocking.size_a()) + Padded<T>(blocking.size_b());
}

template <typename T>
void Gemm(Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
          int64_t ldb, T* c, int64_t ldc, bool accumulate, std::span<T> scratch) {
  if (m <= 0 || n <= 0) return;
  if (!accumulate)
    for (int64_t r = 0; r < m; ++r) std::fill(c + r * ldc, c + r * ldc + n, T(0));
  if (k <= 0) return;
  ScratchBlocking<T> blocking(m, n, k);
  PIPECAST_CHECK(static_cast<int64_t>(scratch.size()) >=
                 Padded<T>(blocking.size_a()) + Padded<T>(blocking.size_b()))
      << "gemm " << m << "x" << n << "x" << k << ": scratch of " << scratch.size()
      << " elements is too small";
  T* block_a = Aligned(scratch.data());
  T* block_b = Aligned(scratch.data() + Padded<T>(blocking.size_a()));
  blocking.Attach(block_a, block_b);
  const bool ta = op_a == Op::kTranspose, tb = op_b == Op::kTranspose;
  constexpr int kRow = Eigen::RowMajor, kCol = Eigen::ColMajor;
  // A row-major matrix read transposed is the same memory read column-major.
  if (!ta && !tb) Run<T, kRow, kRow>(m, n, k, a, lda, b, ldb, c, ldc, blocking);
  if (!ta && tb) Run<T, kRow, kCol>(m, n, k, a, lda, b, ldb, c, ldc, blocking);
  if (ta && !tb) Run<T, kCol, kRow>(m, n, k, a, lda, b, ldb, c, ldc, blocking);
  if (ta && tb) Run<T, kCol, kCol>(m, n, k, a, lda, b, ldb, c, ldc, blocking);
  blocking.Attach(nullptr, nullptr);
}

#define PIPECAST_INSTANTIATE_GEMM(T)                                                             \
  template int64_t GemmScratch<T>(int64_t, int64_t, int64_t);                                    \
  template void Gemm<T>(Op, Op, int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, \
                        T*, int64_t, bool, std::span<T>);
PIPECAST_INSTANTIATE_GEMM(float)
PIPECAST_INSTANTIATE_GEMM(double)
#undef PIPECAST_INSTANTIATE_GEMM

}  // namespace pipecast::models
