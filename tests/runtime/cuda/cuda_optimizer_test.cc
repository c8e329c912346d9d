// Tests for runtime/cuda/cuda_optimizer.h on a CUDA device (label gpu; every case skips without
// one). The reference is the CPU: models::Optimizer for the steps, predictions and state, and
// CpuDevice's element formulas (runtime/cpu/cpu_device_ops.cc, restated in optim_reference.h)
// for the velocity, the correction, the gradient sums and the elastic averaging. Results must be
// the same bits, except that a NaN only has to be a NaN (CPU and GPU NaNs differ in sign and
// payload). The host test cuda_optimizer_ops_test.cc runs the same optimizer check on the CPU.
#include "runtime/cuda/cuda_optimizer.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "models/optimizer.h"
#include "runtime/cuda/fused_optimizer_check.h"
#include "runtime/cuda/optim_reference.h"
#include "support/gpu.h"

namespace pipecast::runtime::cuda {
namespace {

using models::DeltaRule;
using models::OptimizerConfig;
using models::OptimizerKind;
using testing::FusedOptimizer;
using testing::Normal;
using testing::OptimizerCase;
using testing::SameFloats;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

void Check(cudaError_t e) { ASSERT_EQ(e, cudaSuccess) << cudaGetErrorString(e); }

// `n` floats of device memory starting `offset` floats into the allocation (offset 1 makes
// every access take the kernels' element-by-element path).
class DeviceFloats {
 public:
  explicit DeviceFloats(size_t n, size_t offset = 0) : n_(n) {
    Check(cudaMalloc(&base_, (n + offset + 1) * sizeof(float)));
    data_ = base_ + offset;
  }
  DeviceFloats(const std::vector<float>& values, size_t offset)
      : DeviceFloats(values.size(), offset) {
    Upload(values);
  }
  ~DeviceFloats() { cudaFree(base_); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;

  float* get() const { return data_; }
  // Complete on return (a pageable copy may otherwise still be in flight when a kernel on a
  // non-blocking stream starts).
  void Upload(const std::vector<float>& v) {
    ASSERT_EQ(v.size(), n_);
    Check(cudaMemcpy(data_, v.data(), n_ * sizeof(float), cudaMemcpyHostToDevice));
    Check(cudaDeviceSynchronize());
  }
  std::vector<float> Download() const {
    std::vector<float> v(n_);
    Check(cudaDeviceSynchronize());
    Check(cudaMemcpy(v.data(), data_, n_ * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  size_t n_;
  float* base_ = nullptr;
  float* data_ = nullptr;
};

class Stream {
 public:
  Stream() { Check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s_); }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Optimizers against models::Optimizer

// CudaOptimizer with its weights, gradient, velocity and prediction in device buffers `offset`
// floats into their allocations (offset 1: the element-by-element path).
class DeviceFused final : public FusedOptimizer {
 public:
  DeviceFused(const OptimizerConfig& c, size_t n, size_t offset)
      : params_(n, offset), grad_(n, offset), velocity_(n, offset), out_(n, offset) {
    Result<std::unique_ptr<CudaOptimizer>> created =
        CudaOptimizer::Create(c, static_cast<int64_t>(n));
    EXPECT_TRUE(created.ok()) << created.status().message();
    if (created.ok()) opt_ = std::move(created).value();
  }
  bool ok() const { return opt_ != nullptr; }

  void Step(std::vector<float>& params, const std::vector<float>& grad, double lr,
            const Extras& x) override {
    params_.Upload(params);
    grad_.Upload(grad);
    if (x.velocity != nullptr) velocity_.Upload(*x.velocity);
    opt_->Step(params_.get(), grad_.get(), lr, stream_.get(),
               ToStepExtras(x, velocity_.get(), out_.get()));
    params = params_.Download();
    if (x.velocity != nullptr) *x.velocity = velocity_.Download();
    if (x.predicted != nullptr) *x.predicted = out_.Download();
  }

  std::vector<float> Predict(const std::vector<float>& params, double lr, int s,
                             DeltaRule rule) override {
    params_.Upload(params);
    opt_->Predict(params_.get(), lr, s, rule, out_.get(), stream_.get());
    return out_.Download();
  }

  std::vector<models::StateTensor> StateTensors() override {
    Result<std::vector<models::StateTensor>> got = opt_->StateTensors();
    EXPECT_TRUE(got.ok()) << got.status().message();
    return got.ok() ? std::move(got).value() : std::vector<models::StateTensor>();
  }
  int64_t steps() const override { return opt_->steps(); }

 private:
  Stream stream_;
  DeviceFloats params_, grad_, velocity_, out_;
  std::unique_ptr<CudaOptimizer> opt_;
};

class CudaOptimizerCase : public ::testing::TestWithParam<OptimizerCase> {};

TEST_P(CudaOptimizerCase, BitIdenticalToTheCpuOptimizer) {
  PIPECAST_REQUIRE_GPU();
  const OptimizerConfig& c = GetParam().config;
  for (auto [n, offset] :
       {std::pair<size_t, size_t>{1, 0}, {7, 1}, {4099, 0}, {4099, 1}, {1000003, 0}}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    testing::RunAgainstCpu(c, n, [&](size_t size) {
      auto fused = std::make_unique<DeviceFused>(c, size, offset);
      return fused->ok() ? std::move(fused) : nullptr;
    });
  }
}

TEST_P(CudaOptimizerCase, StateBytesAndRulesAreTheCpuOptimizers) {
  PIPECAST_REQUIRE_GPU();
  const OptimizerConfig& c = GetParam().config;
  auto cpu = models::Optimizer::Create(c, 1001).value();
  auto gpu = CudaOptimizer::Create(c, 1001).value();
  // Tensors padded to 64 floats each: 1001 -> 1024.
  EXPECT_EQ(gpu->state_bytes(),
            static_cast<int64_t>(cpu->StateTensors().size() * 1024 * sizeof(float)));
  for (DeltaRule r : {DeltaRule::kPaper, DeltaRule::kExact, DeltaRule::kCode, DeltaRule::kSpecTrain,
                      DeltaRule::kXPipe}) {
    EXPECT_EQ(gpu->SupportsRule(r).ok(), cpu->SupportsRule(r).ok()) << DeltaRuleName(r);
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, CudaOptimizerCase,
                         ::testing::ValuesIn(testing::OptimizerCases()), testing::CaseName);

TEST(CudaOptimizer, LoadStateRoundTripsWithTheCpuOptimizer) {
  PIPECAST_REQUIRE_GPU();
  OptimizerConfig c = models::DefaultOptimizerConfig(OptimizerKind::kAdamW);
  c.amsgrad = true;
  const size_t n = 1001;
  std::mt19937 rng(5);
  auto cpu = models::Optimizer::Create(c, n).value();
  std::vector<float> params = Normal(n, rng, 1.0f);
  for (int t = 0; t < 3; ++t) cpu->Step(params, Normal(n, rng, 1.0f), 1e-3);
  auto gpu = CudaOptimizer::Create(c, static_cast<int64_t>(n)).value();
  ASSERT_TRUE(gpu->LoadState(cpu->steps(), cpu->StateTensors()).ok());
  EXPECT_EQ(gpu->steps(), 3);
  testing::ExpectSameTensors(cpu->StateTensors(), gpu->StateTensors().value());
  // Both continue identically.
  Stream stream;
  DeviceFloats dparams(params, 0), dgrad(n);
  for (int t = 0; t < 2; ++t) {
    const std::vector<float> grad = Normal(n, rng, 1.0f);
    dgrad.Upload(grad);
    cpu->Step(params, grad, 1e-3);
    gpu->Step(dparams.get(), dgrad.get(), 1e-3, stream.get());
  }
  EXPECT_TRUE(SameFloats(params, dparams.Download()));
  testing::ExpectSameTensors(cpu->StateTensors(), gpu->StateTensors().value());
  // And back: the GPU's state loads into a fresh CPU optimizer.
  auto back = models::Optimizer::Create(c, n).value();
  ASSERT_TRUE(back->LoadState(gpu->steps(), gpu->StateTensors().value()).ok());
  EXPECT_EQ(back->steps(), 5);
  testing::ExpectSameTensors(back->StateTensors(), gpu->StateTensors().value());
}

TEST(CudaOptimizer, LoadStateRejectsWrongTensorsAndChangesNothing) {
  PIPECAST_REQUIRE_GPU();
  const OptimizerConfig c = models::DefaultOptimizerConfig(OptimizerKind::kSgd);
  auto gpu = CudaOptimizer::Create(c, 5).value();
  std::vector<models::StateTensor> good = gpu->StateTensors().value();
  for (auto& t : good) t.second.assign(5, 1.5f);
  ASSERT_TRUE(gpu->LoadState(7, good).ok());
  std::vector<models::StateTensor> wrong_size = good;
  wrong_size[0].second.resize(4);
  std::vector<models::StateTensor> wrong_name = good;
  wrong_name[0].first = "exp_avg";
  std::vector<models::StateTensor> twice = good;
  twice[1] = twice[0];
  for (const auto& bad : {wrong_size, wrong_name, twice}) {
    EXPECT_EQ(gpu->LoadState(8, bad).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(gpu->LoadState(-1, good).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->steps(), 7);
  const std::vector<models::StateTensor> after = gpu->StateTensors().value();
  for (const auto& t : after) {
    EXPECT_EQ(t.second, std::vector<float>(5, 1.5f)) << t.first;
  }
}

// ---------------------------------------------------------------------------------------------
// Weight kernels against CpuDevice's formulas

struct WeightCase {
  size_t n, offset;
};
const WeightCase kWeightCases[] = {{1, 0}, {7, 1}, {1000003, 0}};

TEST(CudaWeightKernels, SumIntoAddsBuffersInOrder) {
  PIPECAST_REQUIRE_GPU();
  for (const WeightCase& w : kWeightCases) {
    for (int32_t count : {0, 3, 70}) {  // 70: more than one launch's list
      std::mt19937 rng(static_cast<unsigned>(w.n + count));
      std::vector<float> grad = Normal(w.n, rng, 1.0f);
      std::vector<std::vector<float>> host;
      std::vector<std::unique_ptr<DeviceFloats>> bufs;
      std::vector<const float*> pointers;
      DeviceFloats dgrad(grad, w.offset);
      for (int32_t k = 0; k < count; ++k) {
        host.push_back(Normal(w.n, rng, static_cast<float>(k + 1)));
        bufs.push_back(std::make_unique<DeviceFloats>(host.back(), w.offset));
        pointers.push_back(bufs.back()->get());
      }
      SumInto(dgrad.get(), pointers.data(), count, static_cast<int64_t>(w.n), nullptr);
      testing::SumReference(grad, host);
      EXPECT_TRUE(SameFloats(grad, dgrad.Download())) << "n " << w.n << " count " << count;
    }
  }
}

TEST(CudaWeightKernels, CorrectAndElasticOpsMatchTheCpuDevice) {
  PIPECAST_REQUIRE_GPU();
  for (const WeightCase& w : kWeightCases) {
    SCOPED_TRACE("n " + std::to_string(w.n));
    const int64_t n = static_cast<int64_t>(w.n);
    std::mt19937 rng(static_cast<unsigned>(w.n));
    std::vector<float> weights = Normal(w.n, rng, 1.0f), velocity = Normal(w.n, rng, 0.1f);
    std::vector<float> reference = Normal(w.n, rng, 1.0f);
    DeviceFloats dw(weights, w.offset), dv(velocity, w.offset), dout(w.n, w.offset);
    DeviceFloats dref(reference, w.offset);
    // PipeMare's correction (CpuDevice::Apply kCorrect).
    const float gap = 2.5f;
    Correct(dw.get(), dv.get(), gap, dout.get(), n, nullptr);
    EXPECT_TRUE(SameFloats(testing::CorrectReference(weights, velocity, gap), dout.Download()))
        << "Correct";
    // ElasticAverage over 3 copies.
    const double alpha = 0.3;
    const float a = static_cast<float>(alpha);
    std::vector<std::vector<float>> copies;
    std::vector<std::unique_ptr<DeviceFloats>> dcopies;
    std::vector<const float*> pointers;
    for (int k = 0; k < 3; ++k) {
      copies.push_back(Normal(w.n, rng, 1.0f));
      dcopies.push_back(std::make_unique<DeviceFloats>(copies.back(), w.offset));
      pointers.push_back(dcopies.back()->get());
    }
    ElasticAverage(dw.get(), dref.get(), pointers.data(), 3, a, n, nullptr);
    testing::ElasticAverageReference(weights, reference, copies, a);
    EXPECT_TRUE(SameFloats(weights, dw.Download())) << "ElasticAverage weights";
    EXPECT_TRUE(SameFloats(reference, dref.Download())) << "ElasticAverage reference";
    // ElasticPull of copy 0 towards the new reference.
    ElasticPull(dcopies[0]->get(), dref.get(), a, n, nullptr);
    testing::ElasticPullReference(copies[0], reference, a);
    EXPECT_TRUE(SameFloats(copies[0], dcopies[0]->Download())) << "ElasticPull";
  }
}

TEST(CudaWeightKernels, FlagNonFiniteSeesNaNAndInfAnywhere) {
  PIPECAST_REQUIRE_GPU();
  int32_t* flag = nullptr;
  Check(cudaMalloc(&flag, sizeof(int32_t)));
  auto run = [&](const std::vector<float>& x, size_t offset, int32_t start) {
    Check(cudaMemcpy(flag, &start, sizeof(start), cudaMemcpyHostToDevice));
    DeviceFloats dx(x, offset);
    FlagNonFinite(dx.get(), static_cast<int64_t>(x.size()), flag, nullptr);
    int32_t got = -1;
    Check(cudaDeviceSynchronize());
    Check(cudaMemcpy(&got, flag, sizeof(got), cudaMemcpyDeviceToHost));
    return got;
  };
  for (const WeightCase& w : kWeightCases) {
    std::mt19937 rng(3);
    std::vector<float> x = Normal(w.n, rng, 1e30f);  // large but finite
    x[0] = std::numeric_limits<float>::max();
    EXPECT_EQ(run(x, w.offset, 0), 0) << "finite, n " << w.n;
    EXPECT_EQ(run(x, w.offset, 1), 1) << "the flag is or-ed, never cleared";
    std::vector<float> last = x;
    last.back() = kNaN;
    EXPECT_EQ(run(last, w.offset, 0), 1) << "NaN last, n " << w.n;
    std::vector<float> first = x;
    first.front() = -kInf;
    EXPECT_EQ(run(first, w.offset, 0), 1) << "-Inf first, n " << w.n;
    std::vector<float> mid = x;
    mid[w.n / 2] = kInf;
    EXPECT_EQ(run(mid, w.offset, 0), 1) << "Inf in the middle, n " << w.n;
  }
  cudaFree(flag);
}

TEST(CudaWeightKernels, MeasurePredictionMatchesTheSequentialSums) {
  PIPECAST_REQUIRE_GPU();
  for (const WeightCase& w : kWeightCases) {
    SCOPED_TRACE("n " + std::to_string(w.n));
    std::mt19937 rng(static_cast<unsigned>(w.n + 11));
    const std::vector<float> base = Normal(w.n, rng, 1.0f);
    std::vector<float> reached = base, predicted = base;
    const std::vector<float> step = Normal(w.n, rng, 0.01f), noise = Normal(w.n, rng, 0.002f);
    for (size_t i = 0; i < w.n; ++i) {
      reached[i] += step[i];
      predicted[i] += step[i] + noise[i];
    }
    const std::array<double, 4> want = testing::MeasureReference(base, predicted, reached);
    DeviceFloats db(base, w.offset), dp(predicted, w.offset), dr(reached, w.offset);
    const int64_t n = static_cast<int64_t>(w.n);
    double* scratch = nullptr;
    double* out = nullptr;
    Check(cudaMalloc(&scratch, static_cast<size_t>(MeasureScratch(n)) * sizeof(double)));
    Check(cudaMalloc(&out, 8 * sizeof(double)));
    MeasurePrediction(db.get(), dp.get(), dr.get(), n, out, scratch, nullptr);
    MeasurePrediction(db.get(), dp.get(), dr.get(), n, out + 4, scratch, nullptr);
    double got[8];
    Check(cudaDeviceSynchronize());
    Check(cudaMemcpy(got, out, sizeof(got), cudaMemcpyDeviceToHost));
    for (int q = 0; q < 4; ++q) {
      EXPECT_NEAR(got[q], want[q], 1e-12 * std::abs(want[q])) << "sum " << q;
      EXPECT_EQ(std::memcmp(&got[q], &got[q + 4], sizeof(double)), 0) << "deterministic " << q;
    }
    cudaFree(scratch);
    cudaFree(out);
  }
}

}  // namespace
}  // namespace pipecast::runtime::cuda
