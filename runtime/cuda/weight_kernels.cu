// The weight-side kernels of cuda_optimizer.h besides the optimizer steps: gradient sums,
// PipeMare's correction, AvgPipe's elastic averaging, the finiteness flag and the prediction
// measurement. Each element-wise expression is the CPU device's (runtime/cpu/cpu_device_ops.cc)
// in the same operation order, so results are the same bits; the measurement is a fixed-order
// reduction in double.
#include "common/check.h"
#include "runtime/cuda/cuda_optimizer.h"
#include "runtime/cuda/weight_ops.h"

namespace pipecast::runtime::cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// MeasurePrediction: each of MeasureBlocks(n) blocks sums a fixed grid-stride subset of the
// elements per thread in order, then the block's threads in a fixed tree; one block then sums
// the blocks' partials the same way. The grid depends only on n, so the bits do too.
constexpr int kMeasureThreads = 256;
constexpr int64_t kMeasureMaxBlocks = 1024;
constexpr int kSums = 4;  // Σ(p−r)², Σ(r−b)², Σ(p−b)², Σ(p−b)(r−b)

int64_t MeasureBlocks(int64_t n) {
  const int64_t per_block = kMeasureThreads * int64_t{16};
  const int64_t blocks = (n + per_block - 1) / per_block;
  return blocks < 1 ? 1 : (blocks > kMeasureMaxBlocks ? kMeasureMaxBlocks : blocks);
}

// Tree sum of the block's kSums·kMeasureThreads values in `shared` (value q of thread t at
// q·kMeasureThreads + t); thread 0 then holds the sums at shared[q·kMeasureThreads].
__device__ void BlockSum(double* shared) {
  __syncthreads();
  for (int half = kMeasureThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
#pragma unroll
      for (int q = 0; q < kSums; ++q) {
        shared[q * kMeasureThreads + threadIdx.x] +=
            shared[q * kMeasureThreads + threadIdx.x + half];
      }
    }
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kMeasureThreads)
    MeasurePartialsKernel(const float* base, const float* predicted, const float* reached,
                          int64_t n, double* partials) {
  __shared__ double shared[kSums * kMeasureThreads];
  double err = 0, real = 0, pred = 0, dot = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kMeasureThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kMeasureThreads + threadIdx.x; i < n;
       i += stride) {
    // CpuDevice's Measure: differences in double of the float values.
    const double r = static_cast<double>(reached[i]) - base[i];
    const double p = static_cast<double>(predicted[i]) - base[i];
    const double e = static_cast<double>(predicted[i]) - reached[i];
    err += e * e;
    real += r * r;
    pred += p * p;
    dot += p * r;
  }
  shared[0 * kMeasureThreads + threadIdx.x] = err;
  shared[1 * kMeasureThreads + threadIdx.x] = real;
  shared[2 * kMeasureThreads + threadIdx.x] = pred;
  shared[3 * kMeasureThreads + threadIdx.x] = dot;
  BlockSum(shared);
  if (threadIdx.x == 0) {
    for (int q = 0; q < kSums; ++q) partials[blockIdx.x * kSums + q] = shared[q * kMeasureThreads];
  }
}

__global__ void __launch_bounds__(kMeasureThreads)
    MeasureTotalKernel(const double* partials, int64_t blocks, double* out) {
  __shared__ double shared[kSums * kMeasureThreads];
  double sums[kSums] = {0, 0, 0, 0};
  for (int64_t b = threadIdx.x; b < blocks; b += kMeasureThreads) {
#pragma unroll
    for (int q = 0; q < kSums; ++q) sums[q] += partials[b * kSums + q];
  }
#pragma unroll
  for (int q = 0; q < kSums; ++q) shared[q * kMeasureThreads + threadIdx.x] = sums[q];
  BlockSum(shared);
  if (threadIdx.x == 0) {
    for (int q = 0; q < kSums; ++q) out[q] = shared[q * kMeasureThreads];
  }
}

}  // namespace

void SumInto(float* grad, const float* const* buffers, int32_t count, int64_t n,
             cudaStream_t stream) {
  PIPECAST_CHECK(count >= 0) << "SumInto of " << count << " buffers";
  // Chunks of kMaxBuffers keep every element's order: the sum goes through grad in between.
  for (int32_t first = 0; first < count; first += kMaxBuffers) {
    const int32_t chunk = count - first < kMaxBuffers ? count - first : kMaxBuffers;
    const BufferList list = ListOf(buffers, first, chunk);
    LaunchGroups(SumIntoOp{grad, list}, n, AllAligned({grad}) && ListAligned(list), stream,
                 "SumInto");
  }
}

void Correct(const float* weights, const float* velocity, float gap, float* out, int64_t n,
             cudaStream_t stream) {
  LaunchGroups(CorrectOp{weights, velocity, gap, out}, n, AllAligned({weights, velocity, out}),
               stream, "Correct");
}

void ElasticAverage(float* weights, float* reference, const float* const* buffers, int32_t count,
                    float alpha, int64_t n, cudaStream_t stream) {
  PIPECAST_CHECK(count >= 0 && count <= kMaxBuffers)
      << "ElasticAverage of " << count << " buffers (at most " << kMaxBuffers << ")";
  const BufferList list = ListOf(buffers, 0, count);
  LaunchGroups(ElasticAverageOp{weights, reference, list, alpha}, n,
               AllAligned({weights, reference}) && ListAligned(list), stream, "ElasticAverage");
}

void ElasticPull(float* weights, const float* reference, float alpha, int64_t n,
                 cudaStream_t stream) {
  LaunchGroups(ElasticPullOp{weights, reference, alpha}, n, AllAligned({weights, reference}),
               stream, "ElasticPull");
}

void FlagNonFinite(const float* x, int64_t n, int32_t* flag, cudaStream_t stream) {
  LaunchGroups(FlagNonFiniteOp{x, flag}, n, AllAligned({x}), stream, "FlagNonFinite");
}

int64_t MeasureScratch(int64_t n) { return kSums * MeasureBlocks(n); }

void MeasurePrediction(const float* base, const float* predicted, const float* reached, int64_t n,
                       double* out, double* scratch, cudaStream_t stream) {
  const int64_t blocks = MeasureBlocks(n);
  ClearStaleError();
  MeasurePartialsKernel<<<static_cast<unsigned>(blocks), kMeasureThreads, 0, stream>>>(
      base, predicted, reached, n, scratch);
  CheckLaunch("MeasurePrediction");
  ClearStaleError();
  MeasureTotalKernel<<<1, kMeasureThreads, 0, stream>>>(scratch, blocks, out);
  CheckLaunch("MeasurePrediction");
}

}  // namespace pipecast::runtime::cuda
