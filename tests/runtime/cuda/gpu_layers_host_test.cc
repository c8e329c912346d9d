// Host-side parts of the CUDA layers, run without a device: GpuStage::Create (the same
// parameter counts and widths as the CPU stage; an unsupported layer refused by name), record
// and scratch sizes counted by hand, Gemm's shape checks, alignment classes (capped at 16 bytes)
// and the row-major to column-major mapping, and how enqueued work is checked (launch_check.h).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "models/layers.h"
#include "models/model.h"
#include "runtime/cuda/gemm.h"
#include "runtime/cuda/gpu_stage.h"
#include "runtime/cuda/launch_check.h"

namespace pipecast::runtime::cuda {
namespace {

using models::LayerPtr;

// A layer kind the CUDA device does not know.
class Unknown final : public models::Layer<float> {
 public:
  std::string name() const override { return "unknown"; }
  int64_t num_params() const override { return 0; }
  int64_t input_width() const override { return 4; }
  int64_t output_width() const override { return 4; }
  void Init(std::span<float>, models::Rng&) const override {}
  double ForwardFlops(int64_t) const override { return 0; }
  models::LayerMemory Memory(int64_t) const override { return {}; }
  void ForwardInto(std::span<const float>, models::ConstView<float>, models::View<float>,
                   std::span<float>, std::span<float>) const override {}
  void BackwardInputInto(std::span<const float>, models::ConstView<float>, models::ConstView<float>,
                         models::ConstView<float>, models::View<float>, std::span<float>,
                         std::span<float>) const override {}
  void BackwardWeightInto(models::ConstView<float>, models::ConstView<float>,
                          models::ConstView<float>, std::span<const float>, std::span<float>,
                          std::span<float>) const override {}
};

TEST(GpuStageCreate, RefusesAnUnknownLayerNamingItsPlace) {
  std::vector<LayerPtr<float>> layers = {std::make_shared<models::Linear<float>>(3, 4),
                                         std::make_shared<Unknown>()};
  const models::Stage<float> stage(layers, /*first_layer=*/5, /*param_offset=*/0);
  const Result<GpuStage> gpu = GpuStage::Create(stage);
  ASSERT_FALSE(gpu.ok());
  EXPECT_EQ(gpu.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(gpu.status().message().find("layer 6 (unknown)"), std::string::npos)
      << gpu.status().message();
}

TEST(GpuStageCreate, RefusesAnUnknownLayerInsideAResidual) {
  std::vector<LayerPtr<float>> inner = {std::make_shared<models::Relu<float>>(4),
                                        std::make_shared<Unknown>()};
  std::vector<LayerPtr<float>> layers = {std::make_shared<models::Residual<float>>(4, inner)};
  const Result<GpuStage> gpu = GpuStage::Create(models::Stage<float>(layers, 2, 0));
  ASSERT_FALSE(gpu.ok());
  EXPECT_NE(gpu.status().message().find("layer 2.1 (unknown)"), std::string::npos)
      << gpu.status().message();
}

TEST(GpuStageCreate, MlpStageHasTheCpuShapeAndAHandCountedRecord) {
  // Linear(4, 3), ReLU(3), Linear(3, 2): 15 + 0 + 8 parameters; the record holds the two inner
  // activations (3 + 3 columns) and their gradients: 2 * rows * 6 floats; no scratch.
  Result<models::Model<float>> mlp = models::MakeMlp<float>(4, {3}, 2);
  ASSERT_TRUE(mlp.ok());
  const Result<GpuStage> gpu = GpuStage::Create(mlp->whole());
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_EQ(gpu->num_params(), 23);
  EXPECT_EQ(gpu->input_width(), 4);
  EXPECT_EQ(gpu->output_width(), 2);
  const models::LayerMemory m = gpu->Memory(10);
  EXPECT_EQ(m.saved, 2 * 10 * 6);
  EXPECT_EQ(m.scratch, 0);
}

TEST(GpuStageCreate, AttentionBlockRecordAndScratchByHand) {
  // Residual(LayerNorm(8), attention(8 hidden, 2 heads, sequence 4)) on 8 rows (2 samples):
  //   chain activations and gradients: 2 * 8 * 8 = 128 (the attention's input);
  //   LayerNorm: xhat 64 + rstd 8 = 72;
  //   attention: qkv 8 * 24 = 192, P 2 samples * 2 heads * 16 = 64, ctx 64, dqkv 192 = 512;
  //   f(x): 64.  Total 776.  Scratch: dctx 64 + one sample's dP 2 * 16 = 96.
  std::vector<LayerPtr<float>> inner = {
      std::make_shared<models::LayerNorm<float>>(8),
      std::make_shared<models::CausalSelfAttention<float>>(8, 2, 4)};
  std::vector<LayerPtr<float>> layers = {std::make_shared<models::Residual<float>>(8, inner)};
  const models::Stage<float> stage(layers, 1, 0);
  const Result<GpuStage> gpu = GpuStage::Create(stage);
  ASSERT_TRUE(gpu.ok()) << gpu.status().message();
  EXPECT_EQ(gpu->num_params(), stage.num_params());
  EXPECT_EQ(gpu->num_params(), 2 * 8 + 4 * 64 + 4 * 8);
  const models::LayerMemory m = gpu->Memory(8);
  EXPECT_EQ(m.saved, 776);
  EXPECT_EQ(m.scratch, 96);
}

TEST(GpuStageCreate, GptMiddleStagesMatchTheCpuParameterCounts) {
  Result<models::Model<float>> gpt =
      models::MakeGpt<float>({.vocab = 11, .sequence = 4, .hidden = 8, .heads = 2, .layers = 2});
  ASSERT_TRUE(gpt.ok());
  Result<std::vector<models::Stage<float>>> stages = models::Partition(*gpt, 3);
  ASSERT_TRUE(stages.ok());
  for (const models::Stage<float>& stage : *stages) {
    const Result<GpuStage> gpu = GpuStage::Create(stage);
    ASSERT_TRUE(gpu.ok()) << gpu.status().message();
    EXPECT_EQ(gpu->num_params(), stage.num_params());
    EXPECT_EQ(gpu->input_width(), stage.input_width());
    EXPECT_EQ(gpu->output_width(), stage.output_width());
  }
}

TEST(GpuStageCreate, RecordsHaveTheCpuStagesSizes) {
  // The records hold what the CPU records hold (chain activations and gradients, LayerNorm's
  // xhat and rstd, attention's qkv, P, ctx and dqkv); only scratch differs. Stage 0 holds the
  // embedding, whose scratch needs a device to size, so it is left out here.
  Result<models::Model<float>> gpt =
      models::MakeGpt<float>({.vocab = 11, .sequence = 4, .hidden = 8, .heads = 2, .layers = 3});
  ASSERT_TRUE(gpt.ok());
  Result<std::vector<models::Stage<float>>> stages = models::Partition(*gpt, 4);
  ASSERT_TRUE(stages.ok());
  for (size_t i = 1; i < stages->size(); ++i) {
    const models::Stage<float>& stage = (*stages)[i];
    const Result<GpuStage> gpu = GpuStage::Create(stage);
    ASSERT_TRUE(gpu.ok()) << gpu.status().message();
    EXPECT_EQ(gpu->Memory(12).saved, stage.Memory(12).saved) << "stage " << i;
  }
  Result<models::Model<float>> mlp = models::MakeMlp<float>(784, {256, 128}, 10);
  ASSERT_TRUE(mlp.ok());
  const Result<GpuStage> whole = GpuStage::Create(mlp->whole());
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->Memory(32).saved, mlp->whole().Memory(32).saved);
}

TEST(GemmShapeTest, RowMajorProductsSwapOperandsForCublas) {
  // C (2 x 3) = A (2 x 5) B^T, B stored 3 x 5: cuBLAS computes C^T (3 x 2) = B A^T with its first
  // operand our B read transposed (5 x 3 column-major = B^T) and its second our A (5 x 2).
  GemmShape s;
  s.op_b = Op::kTranspose;
  s.m = 2;
  s.n = 3;
  s.k = 5;
  s.lda = 5;
  s.ldb = 5;
  s.ldc = 3;
  const ColumnMajorProblem p = ToColumnMajor(s);
  EXPECT_EQ(p.m, 3);
  EXPECT_EQ(p.n, 2);
  EXPECT_EQ(p.k, 5);
  EXPECT_TRUE(p.transpose_first);
  EXPECT_FALSE(p.transpose_second);
  EXPECT_EQ(p.first.rows, 5);  // k x n column-major: B's rows of 5 as columns
  EXPECT_EQ(p.first.cols, 3);
  EXPECT_EQ(p.first.ld, 5);
  EXPECT_EQ(p.second.rows, 5);  // k x m
  EXPECT_EQ(p.second.cols, 2);
  EXPECT_EQ(p.c.rows, 3);
  EXPECT_EQ(p.c.cols, 2);
  EXPECT_EQ(p.c.ld, 3);
  // A^T B with A stored 5 x 2 (k x m) and B 5 x 3: second operand transposed, m x k stored.
  s.op_a = Op::kTranspose;
  s.op_b = Op::kNone;
  s.lda = 2;
  s.ldb = 3;
  const ColumnMajorProblem q = ToColumnMajor(s);
  EXPECT_FALSE(q.transpose_first);
  EXPECT_TRUE(q.transpose_second);
  EXPECT_EQ(q.first.rows, 3);  // n x k
  EXPECT_EQ(q.first.cols, 5);
  EXPECT_EQ(q.second.rows, 2);  // m x k
  EXPECT_EQ(q.second.cols, 5);
  EXPECT_EQ(q.second.ld, 2);
}

TEST(GemmShapeTest, ValidationNamesTheProblem) {
  GemmShape s;
  s.m = 4;
  s.n = 4;
  s.k = 4;
  s.lda = 4;
  s.ldb = 4;
  s.ldc = 4;
  EXPECT_TRUE(ValidateShape(s).ok());
  GemmShape narrow = s;
  narrow.ldb = 3;
  EXPECT_NE(ValidateShape(narrow).message().find("leading dimension"), std::string::npos);
  GemmShape transposed = s;  // A^T is m x k, stored k x m: lda >= m
  transposed.op_a = Op::kTranspose;
  transposed.m = 6;
  transposed.ldc = 6;
  transposed.n = 6;
  transposed.ldb = 6;
  EXPECT_FALSE(ValidateShape(transposed).ok());  // lda 4 < m 6
  transposed.lda = 6;
  EXPECT_TRUE(ValidateShape(transposed).ok());
  GemmShape empty = s;
  empty.k = 0;
  EXPECT_FALSE(ValidateShape(empty).ok());
  GemmShape batched = s;
  batched.batch = 3;
  EXPECT_FALSE(ValidateShape(batched).ok());  // no C stride
  batched.stride_c = 16;
  EXPECT_TRUE(ValidateShape(batched).ok());
  GemmShape types = s;
  types.output = GemmDtype::kBfloat16;
  EXPECT_FALSE(ValidateShape(types).ok());  // fp32 in, bf16 out
  types.input = GemmDtype::kBfloat16;
  EXPECT_TRUE(ValidateShape(types).ok());
  GemmShape align = s;
  align.align_a = 12;
  EXPECT_FALSE(ValidateShape(align).ok());
}

TEST(GemmShapeTest, AlignmentIsTheLargestPowerOfTwoOfEveryOffsetUpTo16) {
  const auto at = [](uintptr_t address) { return reinterpret_cast<const void*>(address); };
  EXPECT_EQ(AlignmentOf(at(0x10000), 1024, 0, 1, GemmDtype::kFloat32), 16);  // capped
  EXPECT_EQ(AlignmentOf(at(0x10008), 1024, 0, 1, GemmDtype::kFloat32), 8);
  EXPECT_EQ(AlignmentOf(at(0x10000), 3, 0, 1, GemmDtype::kFloat32), 4);    // ld 12 bytes
  EXPECT_EQ(AlignmentOf(at(0x10000), 3, 0, 1, GemmDtype::kBfloat16), 2);   // ld 6 bytes
  EXPECT_EQ(AlignmentOf(at(0x10000), 64, 2, 4, GemmDtype::kFloat32), 8);   // stride 8 bytes
  EXPECT_EQ(AlignmentOf(at(0x10000), 64, 2, 1, GemmDtype::kFloat32), 16);  // unbatched
}

TEST(GemmShapeTest, WithAlignmentsReadsEveryOperand) {
  const auto at = [](uintptr_t address) { return reinterpret_cast<const void*>(address); };
  GemmShape s;
  s.m = 4;
  s.n = 50257;  // the GPT head: C rows of 50257 floats are only 4-byte aligned
  s.k = 64;
  s.lda = 64;
  s.ldb = 64;
  s.ldc = 50257;
  s.op_b = Op::kTranspose;
  const GemmShape a = WithAlignments(s, at(0x1000), at(0x2028), at(0x3000));
  EXPECT_EQ(a.align_a, 16);
  EXPECT_EQ(a.align_b, 8);
  EXPECT_EQ(a.align_c, 4);
  s.input = s.output = GemmDtype::kBfloat16;
  EXPECT_EQ(WithAlignments(s, at(0x1000), at(0x2020), at(0x3000)).align_c, 2);
}

TEST(GemmShapeTest, OperandsOf16BytesOrMoreShareOnePlan) {
  // The same product on records at different offsets (256-byte and 16- to 64-byte aligned here)
  // must map to one key, so that cuBLASLt's heuristic picks one kernel and the bits do not depend
  // on where a microbatch's record lies.
  const auto at = [](uintptr_t address) { return reinterpret_cast<const void*>(address); };
  const GemmShape s{
      .op_b = Op::kTranspose, .m = 8, .n = 32, .k = 784, .lda = 784, .ldb = 784, .ldc = 32};
  const GemmShape first = WithAlignments(s, at(0x100000), at(0x200000), at(0x300000));
  const GemmShape second = WithAlignments(s, at(0x100020), at(0x200040), at(0x300030));
  EXPECT_TRUE(first == second);
  EXPECT_TRUE(ValidateShape(first).ok());
  GemmShape over = first;
  over.align_a = 32;
  EXPECT_FALSE(ValidateShape(over).ok());
}

TEST(GemmShapeTest, ShapesDifferingInAnyFieldAreDistinctKeys) {
  GemmShape a;
  a.m = a.n = a.k = a.lda = a.ldb = a.ldc = 8;
  GemmShape b = a;
  EXPECT_TRUE(a == b);
  b.align_c = 8;
  EXPECT_TRUE(a != b);
  EXPECT_TRUE(b < a || a < b);
  GemmShape c = a;
  c.op_b = Op::kTranspose;
  EXPECT_TRUE(a != c);
}

// The bf16 path converts exactly the elements a product reads: up to the last stored row's
// width, not its leading dimension (a head's q is a 2-column block of a 12-wide qkv row).
TEST(GemmShapeTest, OperandSpanEndsAtTheLastElementRead) {
  EXPECT_EQ(OperandSpan(Op::kNone, 3, 5, 5, 1, 0), 15);              // dense: rows x ld
  EXPECT_EQ(OperandSpan(Op::kNone, 3, 5, 9, 1, 0), 2 * 9 + 5);       // 23: the last row ends at 5
  EXPECT_EQ(OperandSpan(Op::kTranspose, 3, 5, 7, 1, 0), 4 * 7 + 3);  // stored 5 x 3: 31
  EXPECT_EQ(OperandSpan(Op::kNone, 3, 5, 5, 1, 100), 15);  // unbatched: the stride is unused
  // Attention's scores, S = 4, d = 2, two heads, qkv rows of 12: q_j = qkv + 2j, the last
  // element read is head 1's row 3 column 1, at 2 + 3 * 12 + 1 = 39.
  EXPECT_EQ(OperandSpan(Op::kNone, 4, 2, 12, 2, 2), 40);
  // k_j^T (op(B) = k x n = 2 x 4, stored 4 x 2): the same elements.
  EXPECT_EQ(OperandSpan(Op::kTranspose, 2, 4, 12, 2, 2), 40);
}

TEST(LaunchCheck, FaultsOfEarlierWorkAreLeftForTheSynchronisation) {
  for (const cudaError_t fault : {cudaErrorIllegalAddress, cudaErrorLaunchFailure,
                                  cudaErrorMisalignedAddress, cudaErrorAssert}) {
    EXPECT_TRUE(IsDeferredFault(fault)) << cudaGetErrorName(fault);
    CheckEnqueued(fault, "a kernel after a fault");  // returns
  }
  CheckEnqueued(cudaSuccess, "a kernel");
  for (const cudaError_t bug :
       {cudaErrorInvalidConfiguration, cudaErrorNoKernelImageForDevice, cudaErrorInvalidValue,
        cudaErrorLaunchOutOfResources, cudaErrorNotReady}) {
    EXPECT_FALSE(IsDeferredFault(bug)) << cudaGetErrorName(bug);
  }
}

TEST(LaunchCheckDeathTest, WorkThatWasNotEnqueuedAbortsNamingIt) {
  EXPECT_DEATH(CheckEnqueued(cudaErrorInvalidConfiguration, "column sums"),
               "column sums: cudaErrorInvalidConfiguration");
  EXPECT_DEATH(CheckEnqueued(cudaErrorNoKernelImageForDevice, "relu"),
               "relu: cudaErrorNoKernelImageForDevice");
}

}  // namespace
}  // namespace pipecast::runtime::cuda
