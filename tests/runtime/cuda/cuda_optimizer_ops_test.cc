// The CUDA optimizer's and weight kernels' ops (runtime/cuda/optimizer_ops.h, weight_ops.h), as
// runtime/cuda/optimizer_dispatch.h picks them, run on the host group by group
// (RunGroupsOnHost): no GPU needed. Against models::Optimizer and CpuDevice's formulas, bit for
// bit, on the float4 path (aligned buffers) and the element path (buffers one float off), with
// odd sizes for the tails. The GPU test (cuda_optimizer_test.cc) runs the same check on a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "models/optimizer.h"
#include "runtime/cuda/fused_optimizer_check.h"
#include "runtime/cuda/optim_reference.h"
#include "runtime/cuda/optimizer_dispatch.h"
#include "runtime/cuda/weight_ops.h"

namespace pipecast::runtime::cuda {
namespace {

using testing::FusedOptimizer;
using testing::OptimizerCase;
using testing::SameFloats;

// n floats starting `offset` floats into a heap block (malloc's blocks are 16-byte aligned).
class HostFloats {
 public:
  HostFloats(size_t n, size_t offset) : storage_(n + offset), offset_(offset), n_(n) {}
  float* get() { return storage_.data() + offset_; }
  void Set(const std::vector<float>& v) { std::copy(v.begin(), v.end(), get()); }
  std::vector<float> Get() { return {get(), get() + n_}; }

 private:
  std::vector<float> storage_;
  size_t offset_, n_;
};

// CudaOptimizer's dispatch, run on the host.
class HostFused final : public FusedOptimizer {
 public:
  HostFused(const models::OptimizerConfig& c, size_t n, size_t offset)
      : config_(c), n_(n), offset_(offset), state_(0, 0) {
    for (const auto& t : models::Optimizer::Create(c, 0).value()->StateTensors()) {
      layout_.names.push_back(t.first);
    }
    layout_.n = static_cast<int64_t>(n);
    layout_.stride = StateLayout::StrideFor(layout_.n);
    state_ = HostFloats(static_cast<size_t>(layout_.floats()), offset);
    layout_.base = state_.get();
  }

  void Step(std::vector<float>& params, const std::vector<float>& grad, double lr,
            const Extras& x) override {
    HostFloats p(n_, offset_), g(n_, offset_), v(n_, offset_), out(n_, offset_);
    p.Set(params);
    g.Set(grad);
    if (x.velocity != nullptr) v.Set(*x.velocity);
    const StepExtras extras = ToStepExtras(x, v.get(), out.get());
    const int64_t t = ++steps_;
    DispatchStep(config_, layout_, t, p.get(), g.get(), lr, MakeFusedExtras(extras, t),
                 [&](const auto& op, bool aligned) {
                   EXPECT_EQ(aligned, offset_ == 0);
                   RunGroupsOnHost(op, layout_.n, aligned);
                 });
    params = p.Get();
    if (x.velocity != nullptr) *x.velocity = v.Get();
    if (x.predicted != nullptr) *x.predicted = out.Get();
  }

  std::vector<float> Predict(const std::vector<float>& params, double lr, int s,
                             models::DeltaRule rule) override {
    HostFloats p(n_, offset_), out(n_, offset_);
    p.Set(params);
    const models::PredictCoefficients k = models::PredictCoefficientsFor(lr, s, steps_);
    if (k.copy) return params;  // CudaOptimizer copies
    DispatchPredict(config_, layout_, steps_, p.get(), k, rule, out.get(),
                    [&](const auto& op, bool aligned) { RunGroupsOnHost(op, layout_.n, aligned); });
    return out.Get();
  }

  std::vector<models::StateTensor> StateTensors() override {
    std::vector<models::StateTensor> out;
    for (const std::string& name : layout_.names) {
      const float* t = layout_.Tensor(name);
      out.emplace_back(name, std::vector<float>(t, t + n_));
    }
    return out;
  }
  int64_t steps() const override { return steps_; }

 private:
  models::OptimizerConfig config_;
  size_t n_, offset_;
  HostFloats state_;
  StateLayout layout_;
  int64_t steps_ = 0;
};

class FusedOpsOnHost : public ::testing::TestWithParam<OptimizerCase> {};

TEST_P(FusedOpsOnHost, BitIdenticalToTheCpuOptimizer) {
  const models::OptimizerConfig& c = GetParam().config;
  for (size_t offset : {0, 1}) {
    SCOPED_TRACE("offset " + std::to_string(offset));
    for (size_t n : {1, 7, 4099}) {
      testing::RunAgainstCpu(
          c, n, [&](size_t size) { return std::make_unique<HostFused>(c, size, offset); });
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, FusedOpsOnHost, ::testing::ValuesIn(testing::OptimizerCases()),
                         testing::CaseName);

// ---------------------------------------------------------------------------------------------
// Weight ops

TEST(WeightOpsOnHost, MatchTheCpuDevice) {
  for (size_t offset : {0, 1}) {
    for (size_t n : {1, 7, 4099}) {
      SCOPED_TRACE("n " + std::to_string(n) + " offset " + std::to_string(offset));
      std::mt19937 rng(static_cast<unsigned>(n + offset));
      const int64_t count = static_cast<int64_t>(n);
      std::vector<float> w = testing::Normal(n, rng, 1.0f), ref = testing::Normal(n, rng, 1.0f);
      const std::vector<float> velocity = testing::Normal(n, rng, 0.1f);
      std::vector<std::vector<float>> copies;
      std::vector<HostFloats> hcopies;
      std::vector<const float*> pointers;
      for (int k = 0; k < 3; ++k) {
        copies.push_back(testing::Normal(n, rng, 1.0f));
        hcopies.emplace_back(n, offset);
        hcopies.back().Set(copies.back());
      }
      for (HostFloats& h : hcopies) pointers.push_back(h.get());
      const bool aligned = offset == 0;
      HostFloats hw(n, offset), hv(n, offset), hout(n, offset), href(n, offset);
      hw.Set(w);
      hv.Set(velocity);
      href.Set(ref);
      // Correct
      RunGroupsOnHost(CorrectOp{hw.get(), hv.get(), 2.5f, hout.get()}, count, aligned);
      EXPECT_TRUE(SameFloats(testing::CorrectReference(w, velocity, 2.5f), hout.Get()));
      // SumInto (into the corrected weights, as a gradient)
      std::vector<float> sum = hout.Get();
      RunGroupsOnHost(SumIntoOp{hout.get(), ListOf(pointers.data(), 0, 3)}, count, aligned);
      testing::SumReference(sum, copies);
      EXPECT_TRUE(SameFloats(sum, hout.Get())) << "SumInto";
      // ElasticAverage, then ElasticPull of copy 0
      RunGroupsOnHost(ElasticAverageOp{hw.get(), href.get(), ListOf(pointers.data(), 0, 3), 0.3f},
                      count, aligned);
      testing::ElasticAverageReference(w, ref, copies, 0.3f);
      EXPECT_TRUE(SameFloats(w, hw.Get())) << "ElasticAverage weights";
      EXPECT_TRUE(SameFloats(ref, href.Get())) << "ElasticAverage reference";
      RunGroupsOnHost(ElasticPullOp{hcopies[0].get(), href.get(), 0.3f}, count, aligned);
      testing::ElasticPullReference(copies[0], ref, 0.3f);
      EXPECT_TRUE(SameFloats(copies[0], hcopies[0].Get())) << "ElasticPull";
      // FlagNonFinite: finite, then a NaN at the end and an Inf at the start
      int32_t flag = 0;
      RunGroupsOnHost(FlagNonFiniteOp{hw.get(), &flag}, count, aligned);
      EXPECT_EQ(flag, 0);
      hw.get()[n - 1] = std::numeric_limits<float>::quiet_NaN();
      RunGroupsOnHost(FlagNonFiniteOp{hw.get(), &flag}, count, aligned);
      EXPECT_EQ(flag, 1);
      flag = 0;
      hw.get()[n - 1] = 0.0f;
      hw.get()[0] = -std::numeric_limits<float>::infinity();
      RunGroupsOnHost(FlagNonFiniteOp{hw.get(), &flag}, count, aligned);
      EXPECT_EQ(flag, 1);
    }
  }
}

TEST(GroupLoop, VisitsEveryElementOnceInGroupsOfFour) {
  for (int64_t n : {0, 1, 3, 4, 5, 8, 4099}) {
    std::vector<int> seen(static_cast<size_t>(n), 0);
    int64_t groups = 0;
    RunGroupsOnHost(
        [&](int64_t i, int count, bool vec) {
          EXPECT_EQ(i % kGroup, 0);
          EXPECT_EQ(vec, count == kGroup);
          for (int k = 0; k < count; ++k) ++seen[static_cast<size_t>(i + k)];
          ++groups;
        },
        n, true);
    EXPECT_EQ(groups, (n + 3) / 4);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), n);
  }
  EXPECT_EQ(GroupBlocks(1), 1u);
  EXPECT_EQ(GroupBlocks(4 * 256), 1u);
  EXPECT_EQ(GroupBlocks(4 * 256 + 1), 2u);
  EXPECT_EQ(GroupBlocks(int64_t{1} << 40), 1u << 16);  // then grid-stride
}

}  // namespace
}  // namespace pipecast::runtime::cuda
