// cuBLASLt products of gemm.h: shape checks, the row-major to column-major mapping, and the
// per-shape plans (descriptors and the algorithm chosen once).
#include "runtime/cuda/gemm.h"

#include <cublasLt.h>

#include <array>
#include <sstream>
#include <string>

#include "common/check.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/launch_check.h"

namespace pipecast::runtime::cuda {

// One shape's descriptors and its chosen algorithm.
struct GemmPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t first = nullptr, second = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  int candidate = 0;  // its rank in the heuristic's list
  std::string description;

  ~GemmPlan() {
    if (first) cublasLtMatrixLayoutDestroy(first);
    if (second) cublasLtMatrixLayoutDestroy(second);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

namespace {

constexpr int kCandidates = 16;  // heuristic results asked for

cudaDataType_t CudaType(GemmDtype dtype) {
  return dtype == GemmDtype::kFloat32 ? CUDA_R_32F : CUDA_R_16BF;
}

bool IsPowerOfTwoAlignment(int32_t align) {
  return align >= 1 && align <= kMaxGemmAlignment && (align & (align - 1)) == 0;
}

// Row width of a stored row-major operand: op(X) is rows x cols; stored transposed when `op`.
int64_t StoredWidth(Op op, int64_t rows, int64_t cols) { return op == Op::kNone ? cols : rows; }

std::string ShapeText(const GemmShape& s) {
  std::ostringstream out;
  out << "gemm " << s.m << "x" << s.n << "x" << s.k << (s.op_a == Op::kTranspose ? " A^T" : "")
      << (s.op_b == Op::kTranspose ? " B^T" : "") << " ld " << s.lda << "/" << s.ldb << "/" << s.ldc
      << " batch " << s.batch;
  return out.str();
}

int32_t LowestPowerOfTwo(uint64_t value) {
  int32_t align = kMaxGemmAlignment;
  while (align > 1 && value % static_cast<uint64_t>(align) != 0) align /= 2;
  return align;
}

int32_t ConfigAttribute(const cublasLtMatmulAlgo_t& algo,
                        cublasLtMatmulAlgoConfigAttributes_t what) {
  int32_t value = 0;
  size_t written = 0;
  PIPECAST_CUBLAS_CHECK(
      cublasLtMatmulAlgoConfigGetAttribute(&algo, what, &value, sizeof(value), &written));
  return value;
}

bool SplitsK(const cublasLtMatmulAlgo_t& algo) {
  return ConfigAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) > 1 ||
         ConfigAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME) !=
             CUBLASLT_REDUCTION_SCHEME_NONE;
}

cublasLtMatrixLayout_t MakeLayout(cudaDataType_t type, const ColumnMajorMatrix& m, int64_t batch,
                                  int64_t stride) {
  cublasLtMatrixLayout_t layout = nullptr;
  PIPECAST_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, type, static_cast<uint64_t>(m.rows),
                                                   static_cast<uint64_t>(m.cols), m.ld));
  if (batch > 1) {
    const auto count = static_cast<int32_t>(batch);
    PIPECAST_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    PIPECAST_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
        layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return layout;
}

// Asks the heuristic for candidates (with the reduction-scheme filter of `no_reduction`) and
// returns the index of the first acceptable one, or -1.
int Candidates(cublasLtHandle_t handle, int64_t workspace_bytes, GemmPolicy policy,
               const GemmShape& shape, const GemmPlan& plan, bool no_reduction,
               cublasLtMatmulHeuristicResult_t* results, int* returned) {
  cublasLtMatmulPreference_t pref = nullptr;
  PIPECAST_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const auto max_workspace = static_cast<uint64_t>(workspace_bytes);
  PIPECAST_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_workspace, sizeof(max_workspace)));
  // cuBLAS's first operand is our B, its second our A (ToColumnMajor).
  const std::array<std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t>, 4> aligns = {{
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(shape.align_b)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(shape.align_a)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(shape.align_c)},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(shape.align_c)},
  }};
  for (const auto& [attribute, value] : aligns)
    PIPECAST_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof(value)));
  if (no_reduction) {
    const uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_NONE;
    PIPECAST_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &scheme, sizeof(scheme)));
  }
  *returned = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle, plan.desc, plan.first, plan.second, plan.c, plan.c,
                                     pref, kCandidates, results, returned);
  cublasLtMatmulPreferenceDestroy(pref);
  PIPECAST_CHECK(status == CUBLAS_STATUS_SUCCESS || status == CUBLAS_STATUS_NOT_SUPPORTED)
      << ShapeText(shape) << ": cublasLtMatmulAlgoGetHeuristic: " << cublasLtGetStatusName(status);
  for (int i = 0; i < *returned; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
    if (policy == GemmPolicy::kDeterministic && SplitsK(results[i].algo)) continue;
    return i;
  }
  return -1;
}

// The deterministic policy asks for algorithms without a split-K reduction and also checks
// each candidate's configuration (if the filter leaves none, the unfiltered list is searched
// for one that does not split k).
void ChooseAlgorithm(cublasLtHandle_t handle, int64_t workspace_bytes, GemmPolicy policy,
                     const GemmShape& shape, GemmPlan& plan) {
  std::array<cublasLtMatmulHeuristicResult_t, kCandidates> results{};
  int returned = 0;
  const bool deterministic = policy == GemmPolicy::kDeterministic;
  int chosen = Candidates(handle, workspace_bytes, policy, shape, plan, deterministic,
                          results.data(), &returned);
  if (chosen < 0 && deterministic)
    chosen =
        Candidates(handle, workspace_bytes, policy, shape, plan, false, results.data(), &returned);
  PIPECAST_CHECK(chosen >= 0) << ShapeText(shape) << ": cuBLASLt offers no usable algorithm ("
                              << returned << " candidates, split-K refused)";
  plan.algo = results[chosen].algo;
  plan.workspace = results[chosen].workspaceSize;
  plan.candidate = chosen;
}

}  // namespace

Result<std::unique_ptr<Gemm>> Gemm::Create(int64_t workspace_bytes, GemmPolicy policy) {
  PIPECAST_CHECK(workspace_bytes >= 0);
  cublasLtHandle_t handle = nullptr;
  PIPECAST_RETURN_IF_ERROR(CublasStatus(cublasLtCreate(&handle), "cublasLtCreate"));
  // The whole GPU's SMs, as the heuristic's target even on a green context's share (gemm.h).
  int device = 0, sm_count = 0;
  Status status = CudaStatus(cudaGetDevice(&device), "cudaGetDevice");
  if (status.ok()) {
    status = CudaStatus(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device),
                        "cudaDeviceGetAttribute (SM count)");
  }
  if (!status.ok()) {
    cublasLtDestroy(handle);
    return status;
  }
  void* workspace = nullptr;
  if (workspace_bytes > 0) {
    status = CudaStatus(cudaMalloc(&workspace, static_cast<size_t>(workspace_bytes)),
                        "cudaMalloc (GEMM workspace)");
    if (!status.ok()) {
      cublasLtDestroy(handle);
      return status;
    }
  }
  return std::unique_ptr<Gemm>(new Gemm(handle, workspace, workspace_bytes, policy, sm_count));
}

Gemm::Gemm(void* handle, void* workspace, int64_t workspace_bytes, GemmPolicy policy,
           int32_t sm_count)
    : handle_(handle),
      workspace_(workspace),
      workspace_bytes_(workspace_bytes),
      policy_(policy),
      sm_count_(sm_count) {}

Gemm::~Gemm() {
  plans_.clear();
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (bf16_a_ != nullptr) cudaFree(bf16_a_);
  if (bf16_b_ != nullptr) cudaFree(bf16_b_);
  cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

int64_t DtypeBytes(GemmDtype dtype) { return dtype == GemmDtype::kFloat32 ? 4 : 2; }

Status ValidateShape(const GemmShape& s) {
  const std::string what = ShapeText(s);
  if (s.m < 1 || s.n < 1 || s.k < 1 || s.batch < 1)
    return InvalidArgument(what + ": sizes and batch must be positive");
  if (s.lda < StoredWidth(s.op_a, s.m, s.k) || s.ldb < StoredWidth(s.op_b, s.k, s.n) || s.ldc < s.n)
    return InvalidArgument(what + ": a leading dimension is below its operand's row width");
  if (s.batch > 1 && s.stride_c == 0)
    return InvalidArgument(what + ": batched products need a nonzero C stride");
  if (s.batch > INT32_MAX) return InvalidArgument(what + ": batch above 2^31 - 1");
  if (s.input == GemmDtype::kFloat32 && s.output != GemmDtype::kFloat32)
    return InvalidArgument(what + ": fp32 inputs give fp32 outputs only");
  if (!IsPowerOfTwoAlignment(s.align_a) || !IsPowerOfTwoAlignment(s.align_b) ||
      !IsPowerOfTwoAlignment(s.align_c))
    return InvalidArgument(what + ": alignments must be powers of two in [1, " +
                           std::to_string(kMaxGemmAlignment) + "]");
  return Status::Ok();
}

int32_t AlignmentOf(const void* pointer, int64_t ld, int64_t stride, int64_t batch,
                    GemmDtype dtype) {
  const auto bytes = static_cast<uint64_t>(DtypeBytes(dtype));
  uint64_t bits = reinterpret_cast<uintptr_t>(pointer) | (static_cast<uint64_t>(ld) * bytes);
  if (batch > 1) bits |= static_cast<uint64_t>(stride) * bytes;
  return LowestPowerOfTwo(bits);
}

GemmShape WithAlignments(GemmShape shape, const void* a, const void* b, const void* c) {
  shape.align_a = AlignmentOf(a, shape.lda, shape.stride_a, shape.batch, shape.input);
  shape.align_b = AlignmentOf(b, shape.ldb, shape.stride_b, shape.batch, shape.input);
  shape.align_c = AlignmentOf(c, shape.ldc, shape.stride_c, shape.batch, shape.output);
  return shape;
}

int64_t OperandSpan(Op op, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  const int64_t stored_rows = op == Op::kNone ? rows : cols;
  return (batch > 1 ? (batch - 1) * stride : 0) + (stored_rows - 1) * ld +
         StoredWidth(op, rows, cols);
}

ColumnMajorProblem ToColumnMajor(const GemmShape& s) {
  ColumnMajorProblem p;
  p.m = s.n;
  p.n = s.m;
  p.k = s.k;
  p.transpose_first = s.op_b == Op::kTranspose;
  p.transpose_second = s.op_a == Op::kTranspose;
  // Stored B is (k x n) row-major for kNone, i.e. n x k column-major; (n x k) row-major for
  // kTranspose, i.e. k x n column-major.
  p.first =
      s.op_b == Op::kNone ? ColumnMajorMatrix{s.n, s.k, s.ldb} : ColumnMajorMatrix{s.k, s.n, s.ldb};
  p.second =
      s.op_a == Op::kNone ? ColumnMajorMatrix{s.k, s.m, s.lda} : ColumnMajorMatrix{s.m, s.k, s.lda};
  p.c = ColumnMajorMatrix{s.n, s.m, s.ldc};
  return p;
}

const GemmPlan& Gemm::PlanFor(const GemmShape& shape) {
  auto found = plans_.find(shape);
  if (found != plans_.end()) return *found->second;
  const Status valid = ValidateShape(shape);
  PIPECAST_CHECK(valid.ok()) << valid.message();
  auto plan = std::make_unique<GemmPlan>();
  const ColumnMajorProblem p = ToColumnMajor(shape);
  PIPECAST_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = p.transpose_first ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = p.transpose_second ? CUBLAS_OP_T : CUBLAS_OP_N;
  PIPECAST_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                       &op_first, sizeof(op_first)));
  PIPECAST_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                       &op_second, sizeof(op_second)));
  PIPECAST_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
      plan->desc, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, &sm_count_, sizeof(sm_count_)));
  plan->first = MakeLayout(CudaType(shape.input), p.first, shape.batch, shape.stride_b);
  plan->second = MakeLayout(CudaType(shape.input), p.second, shape.batch, shape.stride_a);
  plan->c = MakeLayout(CudaType(shape.output), p.c, shape.batch, shape.stride_c);

  ChooseAlgorithm(static_cast<cublasLtHandle_t>(handle_), workspace_bytes_, policy_, shape, *plan);
  std::ostringstream text;
  text << "algo " << ConfigAttribute(plan->algo, CUBLASLT_ALGO_CONFIG_ID) << " tile "
       << ConfigAttribute(plan->algo, CUBLASLT_ALGO_CONFIG_TILE_ID) << " splitK "
       << ConfigAttribute(plan->algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM) << " candidate "
       << plan->candidate << " workspace " << plan->workspace;
  plan->description = text.str();
  return *plans_.emplace(shape, std::move(plan)).first->second;
}

void Gemm::Run(const GemmShape& shape, float alpha, const void* a, const void* b, float beta,
               void* c, cudaStream_t stream) {
  const GemmPlan& plan = PlanFor(shape);
  const GemmShape actual = WithAlignments(shape, a, b, c);
  PIPECAST_CHECK(actual.align_a >= shape.align_a && actual.align_b >= shape.align_b &&
                 actual.align_c >= shape.align_c)
      << ShapeText(shape) << ": an operand is less aligned than the shape says (WithAlignments)";
  // cuBLAS's first operand is our B, its second our A (ToColumnMajor).
  const cublasStatus_t status = cublasLtMatmul(
      static_cast<cublasLtHandle_t>(handle_), plan.desc, &alpha, b, plan.first, a, plan.second,
      &beta, c, plan.c, c, plan.c, &plan.algo, workspace_, plan.workspace, stream);
  if (status == CUBLAS_STATUS_SUCCESS) return;
  // A fault of earlier work fails every later call: it is the next synchronisation's to report
  // (launch_check.h). Anything else is this product's own failure.
  if (status == CUBLAS_STATUS_EXECUTION_FAILED && IsDeferredFault(cudaStreamQuery(stream))) return;
  PIPECAST_CHECK(false) << ShapeText(shape) << ": cublasLtMatmul: " << cublasLtGetStatusName(status)
                        << ": " << cublasLtGetStatusString(status);
}

void Gemm::Multiply(Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                    const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate,
                    cudaStream_t stream) {
  MultiplyBatched(op_a, op_b, m, n, k, a, lda, 0, b, ldb, 0, c, ldc, 0, 1, accumulate, stream);
}

void Gemm::MultiplyBatched(Op op_a, Op op_b, int64_t m, int64_t n, int64_t k, const float* a,
                           int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                           int64_t stride_b, float* c, int64_t ldc, int64_t stride_c, int64_t batch,
                           bool accumulate, cudaStream_t stream) {
  GemmShape shape;
  shape.op_a = op_a;
  shape.op_b = op_b;
  shape.m = m;
  shape.n = n;
  shape.k = k;
  shape.lda = lda;
  shape.ldb = ldb;
  shape.ldc = ldc;
  shape.batch = batch;
  shape.stride_a = batch > 1 ? stride_a : 0;
  shape.stride_b = batch > 1 ? stride_b : 0;
  shape.stride_c = batch > 1 ? stride_c : 0;
  if (bf16_capacity_ > 0) {
    // The spans A and B cover, rounded to bfloat16 in the same layout.
    const int64_t span_a = OperandSpan(op_a, m, k, lda, shape.batch, shape.stride_a);
    const int64_t span_b = OperandSpan(op_b, k, n, ldb, shape.batch, shape.stride_b);
    PIPECAST_CHECK(span_a <= bf16_capacity_ && span_b <= bf16_capacity_)
        << "a bfloat16 product of " << span_a << " and " << span_b << " elements beyond the "
        << bf16_capacity_ << " reserved";
    LaunchToBfloat16(a, bf16_a_, span_a, stream);
    LaunchToBfloat16(b, bf16_b_, span_b, stream);
    shape.input = GemmDtype::kBfloat16;
    Run(WithAlignments(shape, bf16_a_, bf16_b_, c), 1.0f, bf16_a_, bf16_b_,
        accumulate ? 1.0f : 0.0f, c, stream);
    return;
  }
  Run(WithAlignments(shape, a, b, c), 1.0f, a, b, accumulate ? 1.0f : 0.0f, c, stream);
}

Status Gemm::UseBfloat16Inputs(int64_t max_operand_elements) {
  PIPECAST_CHECK(max_operand_elements > 0);
  if (max_operand_elements <= bf16_capacity_) return Status::Ok();
  for (void** p : {&bf16_a_, &bf16_b_}) {
    if (*p != nullptr) PIPECAST_RETURN_IF_ERROR(CudaStatus(cudaFree(*p), "cudaFree"));
    *p = nullptr;
  }
  bf16_capacity_ = 0;
  const size_t bytes = static_cast<size_t>(max_operand_elements) * 2;
  for (void** p : {&bf16_a_, &bf16_b_}) {
    PIPECAST_RETURN_IF_ERROR(
        CudaStatus(cudaMalloc(p, bytes), "cudaMalloc (bfloat16 operands of the GEMMs)"));
  }
  bf16_capacity_ = max_operand_elements;
  return Status::Ok();
}

std::string Gemm::Describe(const GemmShape& shape) { return PlanFor(shape).description; }

}  // namespace pipecast::runtime::cuda
