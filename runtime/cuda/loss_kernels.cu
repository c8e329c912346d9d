// Softmax cross-entropy and the correct count (gpu_kernels.h, gpu_stage.h), as
// models::SoftmaxCrossEntropyInto and models::CountCorrect compute them: per row, in double, the
// row maximum m, s = sum exp(z - m), loss_r = m + log(s) - z_label, dlogits = (exp(z - m -
// log(s)) - onehot) * scale / rows; the first largest logit decides correctness. One block per
// row (fixed-tree sums), then one block adds the rows in a fixed order.
#include <cfloat>

#include "runtime/cuda/gpu_kernels.h"
#include "runtime/cuda/kernel_util.cuh"

namespace pipecast::runtime::cuda {
namespace {

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// The smallest column holding the row maximum (columns beyond the row are `classes`).
struct FirstOp {
  __device__ int64_t operator()(int64_t a, int64_t b) const { return a < b ? a : b; }
};

// row_loss[r] and row_correct[r] (0 or 1, as double); dlogits when not null. An out-of-range
// label gives a NaN loss and no correct row (the CPU code aborts there).
__global__ void RowLossKernel(const float* logits, const int32_t* labels, int64_t classes,
                              double grad_scale, float* dlogits, double* row_loss,
                              double* row_correct) {
  __shared__ float shared_max[kBlockThreads];
  __shared__ double shared_sum[kBlockThreads];
  __shared__ int64_t shared_index[kBlockThreads];
  const int64_t r = blockIdx.x;
  const float* z = logits + r * classes;
  const int32_t label = labels[r];
  float max = -FLT_MAX;
  for (int64_t c = threadIdx.x; c < classes; c += kBlockThreads) max = fmaxf(max, z[c]);
  max = BlockReduce(max, shared_max, MaxOp{});
  const double m = static_cast<double>(max);
  double sum = 0;
  int64_t first = classes;
  for (int64_t c = threadIdx.x; c < classes; c += kBlockThreads) {
    sum += exp(static_cast<double>(z[c]) - m);
    if (z[c] == max && c < first) first = c;
  }
  sum = BlockReduce(sum, shared_sum, SumOp{});
  first = BlockReduce(first, shared_index, FirstOp{});
  const bool valid = label >= 0 && label < classes;
  const double log_sum = log(sum);
  if (threadIdx.x == 0) {
    row_loss[r] = valid ? m + log_sum - static_cast<double>(z[label]) : NAN;
    row_correct[r] = valid && first == label ? 1.0 : 0.0;
  }
  if (dlogits == nullptr) return;
  for (int64_t c = threadIdx.x; c < classes; c += kBlockThreads) {
    const double p = exp(static_cast<double>(z[c]) - m - log_sum);
    dlogits[r * classes + c] =
        valid ? static_cast<float>((p - (c == label ? 1.0 : 0.0)) * grad_scale) : NAN;
  }
}

// One block: the mean of the row losses into *loss, the correct rows added to *correct.
__global__ void TotalLossKernel(const double* row_loss, const double* row_correct, int64_t rows,
                                double* loss, long long* correct) {
  __shared__ double shared[kBlockThreads];
  double total = 0, count = 0;
  for (int64_t r = threadIdx.x; r < rows; r += kBlockThreads) {
    total += row_loss[r];
    count += row_correct[r];
  }
  total = BlockReduce(total, shared, SumOp{});
  count = BlockReduce(count, shared, SumOp{});
  if (threadIdx.x == 0) {
    *loss = total / static_cast<double>(rows);
    *correct += static_cast<long long>(count);
  }
}

}  // namespace

void LaunchSoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t rows,
                               int64_t classes, double scale, float* dlogits, double* loss,
                               long long* correct, double* row_scratch, cudaStream_t stream) {
  if (rows <= 0) {
    // 0.0 for no rows
    CheckEnqueued(cudaMemsetAsync(loss, 0, sizeof(double), stream), "loss of no rows");
    return;
  }
  const double grad_scale = scale / static_cast<double>(rows);
  Launch("row losses", RowLossKernel, static_cast<unsigned>(rows), kBlockThreads, stream, logits,
         labels, classes, grad_scale, dlogits, row_scratch, row_scratch + rows);
  Launch("loss", TotalLossKernel, 1, kBlockThreads, stream, row_scratch, row_scratch + rows, rows,
         loss, correct);
}

}  // namespace pipecast::runtime::cuda
