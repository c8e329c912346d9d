// The CUDA layers against the CPU layers (ctest label gpu; every case skips without a device).
//
// Each case runs the same layer or stage, with the same parameters and random inputs, through
// models' CPU passes and GpuStage's device passes: forward output, input gradient (with a second
// weight version, as the split backward allows) and weight gradient (accumulated onto a
// nonzero buffer). Values built only from copies, one rounding per element or additions in the
// CPU order (ReLU, the embedding) must be bit-identical; values with sums the two devices order
// differently (GEMMs, row reductions, exp/tanh from different math libraries) agree within
// kTolerance of the tensor's largest magnitude. The loss is compared with
// models::SoftmaxCrossEntropyInto and models::CountCorrect; GEMMs with a double reference; and
// every pass is run twice for identical bits.
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "models/init.h"
#include "models/layers.h"
#include "models/loss.h"
#include "models/model.h"
#include "runtime/cuda/gemm.h"
#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/gpu_stage.h"
#include "support/gpu.h"

namespace pipecast::runtime::cuda {
namespace {

using models::LayerPtr;
using models::Matrix;

constexpr double kTolerance = 1e-5;  // of the tensor's largest magnitude

// A device buffer of T, zero-filled or copied from the host.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t count) : count_(count) {
    if (count_ > 0) {
      EXPECT_EQ(cudaMalloc(&data_, sizeof(T) * count_), cudaSuccess);
      EXPECT_EQ(cudaMemset(data_, 0, sizeof(T) * count_), cudaSuccess);
    }
  }
  explicit DeviceBuffer(const std::vector<T>& host)
      : DeviceBuffer(static_cast<int64_t>(host.size())) {
    if (count_ > 0) {
      EXPECT_EQ(cudaMemcpy(data_, host.data(), sizeof(T) * count_, cudaMemcpyHostToDevice),
                cudaSuccess);
    }
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  std::vector<T> Download() const {
    std::vector<T> host(count_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    if (count_ > 0) {
      EXPECT_EQ(cudaMemcpy(host.data(), data_, sizeof(T) * count_, cudaMemcpyDeviceToHost),
                cudaSuccess);
    }
    return host;
  }

 private:
  T* data_ = nullptr;
  int64_t count_;
};

std::vector<float> Random(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  models::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(lo + (hi - lo) * models::UniformUnit(rng));
  return v;
}

std::vector<float> Flat(const Matrix<float>& m) {
  return std::vector<float>(m.data(), m.data() + m.size());
}

Matrix<float> AsMatrix(const std::vector<float>& v, int64_t rows, int64_t cols) {
  return Eigen::Map<const Matrix<float>>(v.data(), rows, cols);
}

// max |gpu - cpu| / max |cpu|.
double ScaledError(const std::vector<float>& gpu, const std::vector<float>& cpu) {
  EXPECT_EQ(gpu.size(), cpu.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < gpu.size() && i < cpu.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(gpu[i]) - cpu[i]));
    scale = std::max(scale, std::abs(static_cast<double>(cpu[i])));
  }
  return scale == 0 ? diff : diff / scale;
}

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// One stage's three passes' results.
struct Passes {
  std::vector<float> y, dx, grad;
};

struct StageCase {
  models::Stage<float> stage;
  std::vector<float> params, params2;  // forward weights, BackwardInput weights
  Matrix<float> x;
  std::vector<float> dy, grad0;
};

StageCase MakeCase(std::vector<LayerPtr<float>> layers, Matrix<float> x, uint64_t seed) {
  models::Stage<float> stage(std::move(layers), 0, 0);
  const int64_t n = stage.num_params(), out = stage.output_width() * x.rows();
  StageCase c{stage,        Random(n, seed, -0.5, 0.5), Random(n, seed + 1, -0.5, 0.5),
              std::move(x), Random(out, seed + 2),      Random(n, seed + 3)};
  return c;
}

Passes RunCpu(const StageCase& c) {
  models::StageSaved<float> saved;
  Passes p;
  p.y = Flat(c.stage.Forward(c.params, c.x, &saved));
  const Matrix<float> dy = AsMatrix(c.dy, c.x.rows(), c.stage.output_width());
  p.dx = Flat(c.stage.BackwardInput(c.params2, dy, &saved));
  p.grad = c.grad0;
  c.stage.BackwardWeight(saved, p.grad);
  return p;
}

// The device passes on fresh buffers (dx null when `want_dx` is false: only the record).
Passes RunGpu(const StageCase& c, Gemm& gemm, bool want_dx = true) {
  const Result<GpuStage> gpu = GpuStage::Create(c.stage);
  EXPECT_TRUE(gpu.ok()) << gpu.status().message();
  const int64_t rows = c.x.rows();
  const models::LayerMemory m = gpu->Memory(rows);
  cudaStream_t stream = nullptr;
  EXPECT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  const GpuContext ctx{stream, &gemm};
  DeviceBuffer<float> params(c.params), params2(c.params2), x(Flat(c.x)), dy(c.dy), grad(c.grad0);
  DeviceBuffer<float> y(rows * gpu->output_width()), dx(rows * gpu->input_width());
  DeviceBuffer<float> record(m.saved), scratch(m.scratch);
  gpu->Forward(params.get(), x.get(), y.get(), record.get(), scratch.get(), rows, ctx);
  gpu->BackwardInput(params2.get(), x.get(), y.get(), dy.get(), want_dx ? dx.get() : nullptr,
                     record.get(), scratch.get(), rows, ctx);
  gpu->BackwardWeight(x.get(), y.get(), dy.get(), record.get(), grad.get(), scratch.get(), rows,
                      ctx);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  Passes p{y.Download(), want_dx ? dx.Download() : std::vector<float>{}, grad.Download()};
  cudaStreamDestroy(stream);
  return p;
}

std::unique_ptr<Gemm> MakeGemm() {
  Result<std::unique_ptr<Gemm>> gemm = Gemm::Create();
  EXPECT_TRUE(gemm.ok()) << gemm.status().message();
  return std::move(gemm).value();
}

// GPU against CPU within kTolerance, and a second GPU run bit-identical to the first.
void ExpectClose(const StageCase& c, double tolerance = kTolerance) {
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const Passes cpu = RunCpu(c);
  const Passes gpu = RunGpu(c, *gemm);
  EXPECT_LT(ScaledError(gpu.y, cpu.y), tolerance) << "forward";
  EXPECT_LT(ScaledError(gpu.dx, cpu.dx), tolerance) << "input gradient";
  EXPECT_LT(ScaledError(gpu.grad, cpu.grad), tolerance) << "weight gradient";
  std::unique_ptr<Gemm> other = MakeGemm();
  const Passes again = RunGpu(c, *other);
  EXPECT_TRUE(SameBits(gpu.y, again.y) && SameBits(gpu.dx, again.dx) &&
              SameBits(gpu.grad, again.grad))
      << "two runs differ";
}

void ExpectIdentical(const StageCase& c) {
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const Passes cpu = RunCpu(c);
  const Passes gpu = RunGpu(c, *gemm);
  EXPECT_TRUE(SameBits(gpu.y, cpu.y)) << "forward, error " << ScaledError(gpu.y, cpu.y);
  EXPECT_TRUE(SameBits(gpu.dx, cpu.dx)) << "input gradient, error " << ScaledError(gpu.dx, cpu.dx);
  EXPECT_TRUE(SameBits(gpu.grad, cpu.grad))
      << "weight gradient, error " << ScaledError(gpu.grad, cpu.grad);
}

Matrix<float> Inputs(int64_t rows, int64_t cols, uint64_t seed) {
  return AsMatrix(Random(rows * cols, seed), rows, cols);
}

Matrix<float> TokenIds(int64_t rows, int64_t vocab, uint64_t seed) {
  models::Rng rng(seed);
  Matrix<float> ids(rows, 1);
  for (int64_t r = 0; r < rows; ++r) ids(r, 0) = static_cast<float>(rng() % vocab);
  return ids;
}

TEST(GpuLayers, LinearMatchesCpu) {
  PIPECAST_REQUIRE_GPU();
  ExpectClose(MakeCase({std::make_shared<models::Linear<float>>(37, 19)}, Inputs(23, 37, 1), 2));
}

TEST(GpuLayers, ReluIsBitIdentical) {
  PIPECAST_REQUIRE_GPU();
  ExpectIdentical(MakeCase({std::make_shared<models::Relu<float>>(33)}, Inputs(17, 33, 3), 4));
}

TEST(GpuLayers, GeluMatchesCpu) {
  PIPECAST_REQUIRE_GPU();
  ExpectClose(MakeCase({std::make_shared<models::Gelu<float>>(33)},
                       AsMatrix(Random(17 * 33, 5, -4, 4), 17, 33), 6));
}

TEST(GpuLayers, LayerNormMatchesCpu) {
  PIPECAST_REQUIRE_GPU();
  // 300 features: more than one block of threads per row.
  ExpectClose(MakeCase({std::make_shared<models::LayerNorm<float>>(300)}, Inputs(9, 300, 7), 8));
}

TEST(GpuLayers, AttentionMatchesCpu) {
  PIPECAST_REQUIRE_GPU();
  ExpectClose(MakeCase({std::make_shared<models::CausalSelfAttention<float>>(16, 4, 6)},
                       Inputs(18, 16, 9), 10));
}

TEST(GpuLayers, AttentionWithLongRowsMatchesCpu) {
  PIPECAST_REQUIRE_GPU();
  // Sequence 260: score rows longer than a block; one sample, one head of width 8.
  ExpectClose(MakeCase({std::make_shared<models::CausalSelfAttention<float>>(8, 1, 260)},
                       Inputs(260, 8, 11), 12));
}

TEST(GpuLayers, ReluKeepsNanAndNegativeZeroLikeTheCpu) {
  PIPECAST_REQUIRE_GPU();
  // std::max(x, 0), the CPU's cwiseMax: NaN stays NaN and -0 stays -0 (fmaxf would give 0 for
  // both, hiding a NaN from the loss).
  const std::vector<float> x = {std::nanf(""), -0.0f, -1.5f, 2.5f, 0.0f};
  const Matrix<float> cpu = AsMatrix(x, 1, 5).cwiseMax(0.0f);
  DeviceBuffer<float> dx(x), dy(5);
  LaunchRelu(dx.get(), dy.get(), 5, nullptr);
  EXPECT_TRUE(SameBits(dy.Download(), Flat(cpu)));
}

TEST(GpuLayers, ALaunchAfterAHandledErrorRuns) {
  PIPECAST_REQUIRE_GPU();
  // A failed allocation the caller handled (as the device does when a plan does not fit) and a
  // poll of unfinished work leave their errors in the runtime's last-error slot; the launches
  // after them (a kernel, and CUB's sort, which checks its own launches) must not read those
  // back as their own.
  void* huge = nullptr;
  ASSERT_NE(cudaMalloc(&huge, size_t{1} << 62), cudaSuccess);  // handled: out of memory
  const std::vector<float> x = {-1, 2, -3, 4};
  DeviceBuffer<float> dx(x), dy(4);
  LaunchRelu(dx.get(), dy.get(), 4, nullptr);
  EXPECT_EQ(dy.Download(), (std::vector<float>{0, 2, 0, 4}));

  DeviceBuffer<char> big(int64_t{1} << 30);
  cudaEvent_t done = nullptr;
  ASSERT_EQ(cudaEventCreate(&done), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(big.get(), 1, size_t{1} << 30, nullptr), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(done, nullptr), cudaSuccess);
  const cudaError_t polled = cudaEventQuery(done);
  EXPECT_TRUE(polled == cudaSuccess || polled == cudaErrorNotReady) << cudaGetErrorName(polled);
  ASSERT_NE(cudaMalloc(&huge, size_t{1} << 62), cudaSuccess);  // handled: out of memory
  const StageCase c =
      MakeCase({std::make_shared<models::Embedding<float>>(6, 8, 12)}, TokenIds(16, 6, 19), 20);
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const Passes gpu = RunGpu(c, *gemm);
  EXPECT_TRUE(SameBits(gpu.grad, RunCpu(c).grad));
  EXPECT_EQ(cudaEventDestroy(done), cudaSuccess);
}

TEST(GpuLayers, EmbeddingIsBitIdentical) {
  PIPECAST_REQUIRE_GPU();
  // 40 rows over a vocabulary of 6: every token repeats, so the run sums are exercised.
  ExpectIdentical(
      MakeCase({std::make_shared<models::Embedding<float>>(6, 8, 12)}, TokenIds(40, 6, 13), 14));
}

TEST(GpuLayers, SequentialAndResidualMatchCpu) {
  PIPECAST_REQUIRE_GPU();
  std::vector<LayerPtr<float>> branch = {std::make_shared<models::Linear<float>>(12, 20),
                                         std::make_shared<models::Gelu<float>>(20),
                                         std::make_shared<models::Linear<float>>(20, 12)};
  std::vector<LayerPtr<float>> seq = {std::make_shared<models::LayerNorm<float>>(12),
                                      std::make_shared<models::Residual<float>>(12, branch)};
  ExpectClose(MakeCase(
      {std::make_shared<models::Sequential<float>>(seq), std::make_shared<models::Relu<float>>(12)},
      Inputs(10, 12, 15), 16));
}

TEST(GpuLayers, ResidualOfReluIsBitIdentical) {
  PIPECAST_REQUIRE_GPU();
  // y = x + relu(x), dx = dy + relu'(dy): single roundings in the CPU's order.
  std::vector<LayerPtr<float>> branch = {std::make_shared<models::Relu<float>>(9)};
  ExpectIdentical(
      MakeCase({std::make_shared<models::Residual<float>>(9, branch)}, Inputs(7, 9, 17), 18));
}

TEST(GpuStages, MlpStagesMatchCpu) {
  PIPECAST_REQUIRE_GPU();
  Result<models::Model<float>> mlp = models::MakeMlp<float>(784, {256, 128}, 10);
  ASSERT_TRUE(mlp.ok());
  Result<std::vector<models::Stage<float>>> stages = models::Partition(*mlp, 2);
  ASSERT_TRUE(stages.ok());
  for (const models::Stage<float>& stage : *stages) {
    const std::vector<LayerPtr<float>>& layers = stage.layers();
    StageCase c = MakeCase(layers, Inputs(32, stage.input_width(), 20 + stage.first_layer()),
                           21 + stage.first_layer());
    ExpectClose(c);
  }
}

TEST(GpuStages, GptStagesMatchCpu) {
  PIPECAST_REQUIRE_GPU();
  const models::GptConfig config{
      .vocab = 50, .sequence = 16, .hidden = 32, .heads = 4, .layers = 2};
  Result<models::Model<float>> gpt = models::MakeGpt<float>(config);
  ASSERT_TRUE(gpt.ok());
  Result<std::vector<models::Stage<float>>> stages = models::Partition(*gpt, 3);
  ASSERT_TRUE(stages.ok());
  const int64_t rows = 3 * config.sequence;
  for (const models::Stage<float>& stage : *stages) {
    const Matrix<float> x = stage.first_layer() == 0
                                ? TokenIds(rows, config.vocab, 22)
                                : Inputs(rows, stage.input_width(), 23 + stage.first_layer());
    ExpectClose(MakeCase(stage.layers(), x, 30 + stage.first_layer()));
  }
}

TEST(GpuStages, RecordWithoutInputGradientGivesTheSameWeightGradient) {
  PIPECAST_REQUIRE_GPU();
  const models::GptConfig config{.vocab = 20, .sequence = 8, .hidden = 16, .heads = 2, .layers = 1};
  Result<models::Model<float>> gpt = models::MakeGpt<float>(config);
  ASSERT_TRUE(gpt.ok());
  const StageCase c = MakeCase(gpt->whole().layers(), TokenIds(16, 20, 40), 41);
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const Passes with_dx = RunGpu(c, *gemm, true);
  const Passes without = RunGpu(c, *gemm, false);
  EXPECT_TRUE(SameBits(with_dx.grad, without.grad));
  EXPECT_LT(ScaledError(with_dx.grad, RunCpu(c).grad), kTolerance);
}

// Loss on the device: `labels` and the returned loss, dlogits and correct count.
struct DeviceLoss {
  double loss = 0;
  long long correct = 0;
  std::vector<float> dlogits;
};

DeviceLoss RunLoss(const std::vector<float>& logits, const std::vector<int32_t>& labels,
                   int64_t classes, double scale, long long correct0) {
  const auto rows = static_cast<int64_t>(labels.size());
  DeviceBuffer<float> z(logits), dz(rows * classes);
  DeviceBuffer<int32_t> y(labels);
  DeviceBuffer<double> loss(1), scratch(LossScratch(rows));
  DeviceBuffer<long long> correct(std::vector<long long>{correct0});
  SoftmaxCrossEntropy(z.get(), y.get(), rows, classes, scale, dz.get(), loss.get(), correct.get(),
                      scratch.get(), nullptr);
  return {loss.Download()[0], correct.Download()[0], dz.Download()};
}

TEST(GpuLoss, MatchesCpuLossGradientAndCount) {
  PIPECAST_REQUIRE_GPU();
  for (const int64_t classes : {10, 1000}) {
    const int64_t rows = 37;
    std::vector<float> logits = Random(rows * classes, 50 + classes, -6, 6);
    std::vector<int32_t> labels(rows);
    for (int64_t r = 0; r < rows; ++r) labels[r] = static_cast<int32_t>((r * 7) % classes);
    // Ties for the largest logit: rows 0 and 1 have their maximum twice, at the label and
    // after it (counts), or before it (does not count).
    logits[0 * classes + labels[0]] = 50;
    logits[0 * classes + classes - 1] = 50;
    logits[1 * classes + 0] = 50;
    logits[1 * classes + labels[1]] = 50;
    const Matrix<float> z = AsMatrix(logits, rows, classes);
    Matrix<float> dz(rows, classes);
    const double cpu_loss =
        models::SoftmaxCrossEntropyInto<float>(models::MakeView(z.data(), rows, classes), labels,
                                               0.25, models::MakeView(dz.data(), rows, classes));
    const int64_t cpu_correct = models::CountCorrect<float>(z, labels);
    const DeviceLoss gpu = RunLoss(logits, labels, classes, 0.25, 5);
    EXPECT_NEAR(gpu.loss, cpu_loss, 1e-12 * std::abs(cpu_loss));
    EXPECT_EQ(gpu.correct, 5 + cpu_correct);
    EXPECT_LT(ScaledError(gpu.dlogits, Flat(dz)), 1e-6);
    const DeviceLoss again = RunLoss(logits, labels, classes, 0.25, 5);
    EXPECT_EQ(std::memcmp(&gpu.loss, &again.loss, sizeof(double)), 0);
    EXPECT_TRUE(SameBits(gpu.dlogits, again.dlogits));
  }
}

// C = op(A) op(B) in double from the stored row-major operands.
std::vector<double> Reference(Op op_a, Op op_b, int64_t m, int64_t n, int64_t k,
                              const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t l = 0; l < k; ++l) {
        const double av = op_a == Op::kNone ? a[i * k + l] : a[l * m + i];
        const double bv = op_b == Op::kNone ? b[l * n + j] : b[j * k + l];
        c[i * n + j] += av * bv;
      }
  return c;
}

double ScaledError(const std::vector<float>& gpu, const std::vector<double>& ref) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    diff = std::max(diff, std::abs(gpu[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return diff / scale;
}

TEST(GpuGemm, EveryTransposeMatchesADoubleReferenceAndAccumulates) {
  PIPECAST_REQUIRE_GPU();
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const int64_t m = 45, n = 29, k = 131;
  for (const Op op_a : {Op::kNone, Op::kTranspose}) {
    for (const Op op_b : {Op::kNone, Op::kTranspose}) {
      const std::vector<float> a = Random(m * k, 60), b = Random(k * n, 61), c0 = Random(m * n, 62);
      DeviceBuffer<float> da(a), db(b), dc(c0);
      const int64_t lda = op_a == Op::kNone ? k : m, ldb = op_b == Op::kNone ? n : k;
      gemm->Multiply(op_a, op_b, m, n, k, da.get(), lda, db.get(), ldb, dc.get(), n, false,
                     nullptr);
      const std::vector<double> ref = Reference(op_a, op_b, m, n, k, a, b);
      EXPECT_LT(ScaledError(dc.Download(), ref), kTolerance);
      gemm->Multiply(op_a, op_b, m, n, k, da.get(), lda, db.get(), ldb, dc.get(), n, true, nullptr);
      std::vector<double> twice = ref;
      for (double& v : twice) v *= 2;
      EXPECT_LT(ScaledError(dc.Download(), twice), kTolerance);
    }
  }
  // One algorithm per transpose pair: accumulating (beta = 1) reuses the overwrite's plan.
  EXPECT_EQ(gemm->cached_shapes(), 4);
}

TEST(GpuGemm, TheSameProductAtOtherOffsetsGivesTheSameBits) {
  PIPECAST_REQUIRE_GPU();
  // As the same layer's product on two records, or on a stage's own buffers and inside a longer
  // chain: operands 256-byte aligned once and 32- or 64-byte aligned the other time share one
  // plan (alignment classes are capped at 16 bytes), hence one kernel and the same bits.
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const int64_t m = 64, n = 48, k = 96, pad = 16;
  const std::vector<float> a = Random(m * k, 90), b = Random(n * k, 91);
  std::vector<float> a_off(pad, 0.0f), b_off(pad / 2, 0.0f);
  a_off.insert(a_off.end(), a.begin(), a.end());
  b_off.insert(b_off.end(), b.begin(), b.end());
  DeviceBuffer<float> da(a), db(b), da_off(a_off), db_off(b_off), dc(m * n), dc_off(m * n + 8);
  gemm->Multiply(Op::kNone, Op::kTranspose, m, n, k, da.get(), k, db.get(), k, dc.get(), n, false,
                 nullptr);
  gemm->Multiply(Op::kNone, Op::kTranspose, m, n, k, da_off.get() + pad, k, db_off.get() + pad / 2,
                 k, dc_off.get() + 8, n, false, nullptr);
  EXPECT_EQ(gemm->cached_shapes(), 1);
  const std::vector<float> c = dc.Download(), shifted = dc_off.Download();
  EXPECT_TRUE(SameBits(c, std::vector<float>(shifted.begin() + 8, shifted.end())));
}

TEST(GpuGemm, BatchedProductsAtInterleavedStrides) {
  PIPECAST_REQUIRE_GPU();
  // Three heads of width 4 side by side in rows of 12 (as attention's q and k): P_j = q_j k_j^T.
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const int64_t s = 5, d = 4, heads = 3, w = heads * d;
  const std::vector<float> q = Random(s * w, 70), k = Random(s * w, 71);
  DeviceBuffer<float> dq(q), dk(k), dp(heads * s * s);
  gemm->MultiplyBatched(Op::kNone, Op::kTranspose, s, s, d, dq.get(), w, d, dk.get(), w, d,
                        dp.get(), s, s * s, heads, false, nullptr);
  const std::vector<float> p = dp.Download();
  for (int64_t j = 0; j < heads; ++j)
    for (int64_t t = 0; t < s; ++t)
      for (int64_t u = 0; u < s; ++u) {
        double ref = 0;
        for (int64_t l = 0; l < d; ++l) ref += double{q[t * w + j * d + l]} * k[u * w + j * d + l];
        EXPECT_NEAR(p[j * s * s + t * s + u], ref, 1e-5);
      }
}

TEST(GpuGemm, Bfloat16InputsWithinOnePercent) {
  PIPECAST_REQUIRE_GPU();
  std::unique_ptr<Gemm> gemm = MakeGemm();
  const int64_t m = 128, n = 96, k = 256;
  const std::vector<float> a = Random(m * k, 80), b = Random(k * n, 81);
  std::vector<__nv_bfloat16> a16(a.size()), b16(b.size());
  for (size_t i = 0; i < a.size(); ++i) a16[i] = __float2bfloat16(a[i]);
  for (size_t i = 0; i < b.size(); ++i) b16[i] = __float2bfloat16(b[i]);
  DeviceBuffer<__nv_bfloat16> da(a16), db(b16);
  DeviceBuffer<float> dc(m * n);
  GemmShape shape;
  shape.m = m;
  shape.n = n;
  shape.k = k;
  shape.lda = k;
  shape.ldb = n;
  shape.ldc = n;
  shape.input = GemmDtype::kBfloat16;
  shape = WithAlignments(shape, da.get(), db.get(), dc.get());  // ldb: 192 bytes
  gemm->Run(shape, 1.0f, da.get(), db.get(), 0.0f, dc.get(), nullptr);
  EXPECT_LT(ScaledError(dc.Download(), Reference(Op::kNone, Op::kNone, m, n, k, a, b)), 1e-2);
}

}  // namespace
}  // namespace pipecast::runtime::cuda
