// Gemm: matrix products on a CUDA device through cuBLASLt, in the row-major terms of
// models/gemm.h (C = op(A) op(B), optionally accumulated, leading dimensions in elements), so
// that a GPU layer multiplies exactly the operands its CPU layer does.
//
// Numerics: fp32 inputs are multiplied with CUBLAS_COMPUTE_32F (true fp32, never TF32); bf16
// inputs (for mixed precision and the bf16 benchmark) accumulate in fp32 too. The algorithm of a
// product is chosen once per GemmShape (shape, transposes, leading dimensions, batching, types
// and operand alignment class) by cublasLtMatmulAlgoGetHeuristic and cached with its
// descriptors. With the default policy, algorithms that split k (split-K, whatever their
// reduction scheme) are refused, so every product is computed by one fixed kernel sequence: the
// same inputs give the same bits on every call, on every Gemm of the process (each has the same
// workspace size) and wherever the operands lie, as long as their alignment class is the same.
// The class is the alignment capped at kMaxGemmAlignment = 16 bytes, what cuBLASLt's kernels
// require at most: activation records and weight copies sit at offsets of rows x width or
// parameter counts, so the same product of two microbatches (or of a stage alone and inside a
// larger chain) is often 32-byte aligned on one and 256-byte aligned on the other, and an
// uncapped key would let the heuristic pick a different kernel, summing in a different order.
// For the same reason the heuristic always targets the whole GPU's SM count, also for a Gemm
// whose stream runs on a green context's share of the SMs (stages sharing a GPU): a stage alone
// on the GPU and one of four on it pick the same kernel for the same product.
//
// A Gemm owns a cuBLASLt handle and a workspace, so one Gemm serves one stream at a time (two
// products in flight on two streams would share its workspace). Not thread-safe.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "models/gemm.h"

namespace pipecast::runtime::cuda {

using models::Op;

enum class GemmDtype : uint8_t { kFloat32, kBfloat16 };
int64_t DtypeBytes(GemmDtype dtype);

// One product, row-major (models/gemm.h): op(A) is m x k, op(B) k x n, C m x n; A is stored
// m x k (kNone) or k x m (kTranspose) with leading dimension lda, likewise B, C with ldc.
// `batch` products at element strides stride_a/b/c. The align_* fields are the operands'
// alignment class in bytes (a power of two, at most kMaxGemmAlignment: AlignmentOf); they are
// part of the key because cuBLASLt's fastest kernels need 16-byte aligned operands.
inline constexpr int32_t kMaxGemmAlignment = 16;
struct GemmShape {
  Op op_a = Op::kNone, op_b = Op::kNone;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  GemmDtype input = GemmDtype::kFloat32;   // A and B
  GemmDtype output = GemmDtype::kFloat32;  // C
  int32_t align_a = kMaxGemmAlignment, align_b = kMaxGemmAlignment, align_c = kMaxGemmAlignment;

  auto operator<=>(const GemmShape&) const = default;
};

// kInvalidArgument when the shape cannot be a product: a size < 1, a leading dimension below
// its operand's row width, batch < 1, a batched operand with stride 0 for C, types other than
// fp32 x fp32 -> fp32, bf16 x bf16 -> fp32 or bf16 x bf16 -> bf16, an alignment that is not a
// power of two in [1, kMaxGemmAlignment].
Status ValidateShape(const GemmShape& shape);

// The largest power of two, at most kMaxGemmAlignment, that divides the address and every byte
// offset the operand is read at (ld and, when batched, stride, times the element size).
int32_t AlignmentOf(const void* pointer, int64_t ld, int64_t stride, int64_t batch,
                    GemmDtype dtype);

// `shape` with its align_* fields set to the operands' AlignmentOf (what Run requires at most).
GemmShape WithAlignments(GemmShape shape, const void* a, const void* b, const void* c);

// Elements from an operand's pointer to one past the last one a product reads: op(X) is
// rows x cols, stored transposed when `op`, with leading dimension ld; `batch` of them at
// element stride `stride` (ignored when batch is 1). The last stored row ends at its width,
// not at ld (an operand that is a column block of a wider matrix ends there).
int64_t OperandSpan(Op op, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride);

// The column-major product cuBLASLt is asked for. A row-major matrix is the same memory as its
// transpose in column-major order, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T:
// cuBLAS's first operand is our B (with op_b), its second our A (with op_a), and its m, n are
// our n, m.
struct ColumnMajorMatrix {
  int64_t rows = 0, cols = 0, ld = 0;  // as stored, column-major
};
struct ColumnMajorProblem {
  bool transpose_first = false, transpose_second = false;
  int64_t m = 0, n = 0, k = 0;
  ColumnMajorMatrix first, second, c;
};
ColumnMajorProblem ToColumnMajor(const GemmShape& shape);

// How a Gemm picks an algorithm from cuBLASLt's heuristic list.
enum class GemmPolicy {
  kDeterministic,     // the first candidate that does not split k (the default)
  kHeuristicDefault,  // cuBLASLt's first candidate with default preferences (for comparisons)
};

struct GemmPlan;  // gemm.cc: descriptors and the chosen algorithm of one shape

class Gemm {
 public:
  static constexpr int64_t kDefaultWorkspaceBytes = int64_t{32} << 20;  // Hopper's recommendation

  // A cuBLASLt handle and a workspace of `workspace_bytes` on the current device, whose SM count
  // the heuristic targets. Errors: kDeviceError (no device, out of memory).
  static Result<std::unique_ptr<Gemm>> Create(int64_t workspace_bytes = kDefaultWorkspaceBytes,
                                              GemmPolicy policy = GemmPolicy::kDeterministic);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // C = alpha op(A) op(B) + beta C on `stream` (C is not read when beta is 0). Pointers are device
  // memory of the shape's types. REQUIRES: ValidateShape(shape) is ok and the align_* fields are
  // at most the operands' AlignmentOf (checked: a violation aborts).
  void Run(const GemmShape& shape, float alpha, const void* a, const void* b, float beta, void* c,
           cudaStream_t stream);

  // fp32 row-major conveniences, the operands of models::Gemm: C = op(A) op(B), or C += ... with
  // `accumulate`; the batched form runs `batch` such products at element strides.
  void Multiply(Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate,
                cudaStream_t stream);
  void MultiplyBatched(Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, const float* a,
                       int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b,
                       float* c, int64_t ldc, int64_t stride_c, int64_t batch, bool accumulate,
                       cudaStream_t stream);

  // Mixed precision (`precision: bf16`): from now on Multiply and MultiplyBatched round A and B
  // to bfloat16 (nearest, ties to even) into buffers of this Gemm and multiply those with fp32
  // accumulation into the fp32 C; the fp32 master weights and activations stay as they are.
  // `max_operand_elements` bounds the span any one operand covers (OperandSpan); the buffers
  // grow to it here, never while products run. Errors: out of
  // memory (kDeviceError). REQUIRES: no product in flight on the Gemm's stream.
  Status UseBfloat16Inputs(int64_t max_operand_elements);
  bool bfloat16_inputs() const { return bf16_capacity_ > 0; }
  // Elements each bf16 operand buffer holds (0 before UseBfloat16Inputs); each takes 2 bytes
  // an element.
  int64_t bfloat16_capacity() const { return bf16_capacity_; }

  // Distinct shapes whose algorithm has been chosen.
  int64_t cached_shapes() const { return static_cast<int64_t>(plans_.size()); }
  // A one-line description of the algorithm chosen for `shape` ("algo 21 tile 18 splitK 1 ..."),
  // choosing it first if needed (for the benchmark's report).
  std::string Describe(const GemmShape& shape);

 private:
  Gemm(void* handle, void* workspace, int64_t workspace_bytes, GemmPolicy policy, int32_t sm_count);
  const GemmPlan& PlanFor(const GemmShape& shape);

  void* handle_;     // cublasLtHandle_t
  void* workspace_;  // device memory
  int64_t workspace_bytes_;
  GemmPolicy policy_;
  int32_t sm_count_;  // the GPU's, the heuristic's target (CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET)
  std::map<GemmShape, std::unique_ptr<GemmPlan>> plans_;
  void* bf16_a_ = nullptr;  // UseBfloat16Inputs' buffers (2-byte elements)
  void* bf16_b_ = nullptr;
  int64_t bf16_capacity_ = 0;
};

}  // namespace pipecast::runtime::cuda
