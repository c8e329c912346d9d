// GEMM throughput of runtime/cuda/gemm.h on one CUDA device: for each shape, the TFLOP/s of our
// Gemm (deterministic policy: the heuristic's first algorithm that does not split k) and of
// cuBLASLt's own first choice with default preferences (the same descriptors and workspace), at
// the GPT shapes of width 1024, sequence 512 and microbatch 8 (4096 rows: the projections, the
// MLP, the head of 50257 logits, their input- and weight-gradient products, and the per-head
// score and context products batched over 16 heads), in fp32 and with bf16 inputs, and at
// 8192^3 in bf16. Prints one line per shape; "no CUDA device" (exit 0) without one.
//   usage: gemm_bench [iterations per measurement, default 20]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/gemm.h"

namespace pipecast::runtime::cuda {
namespace {

struct Case {
  const char* name;
  Op op_a, op_b;
  int64_t m, n, k, batch;
  GemmDtype input, output;
};

// Row-major operands stored densely (batched entries one after the other), as the layers use.
GemmShape ShapeOf(const Case& c) {
  GemmShape s;
  s.op_a = c.op_a;
  s.op_b = c.op_b;
  s.m = c.m;
  s.n = c.n;
  s.k = c.k;
  s.lda = c.op_a == Op::kNone ? c.k : c.m;
  s.ldb = c.op_b == Op::kNone ? c.n : c.k;
  s.ldc = c.n;
  s.batch = c.batch;
  if (c.batch > 1) {
    s.stride_a = c.m * c.k;
    s.stride_b = c.k * c.n;
    s.stride_c = c.m * c.n;
  }
  s.input = c.input;
  s.output = c.output;
  return s;
}

// Device memory filled with small pseudo-random values of `dtype`.
void* Fill(int64_t count, GemmDtype dtype, uint32_t seed) {
  const int64_t bytes = count * DtypeBytes(dtype);
  std::vector<unsigned char> host(static_cast<size_t>(bytes));
  uint32_t state = seed;
  for (int64_t i = 0; i < count; ++i) {
    state = state * 1664525u + 1013904223u;
    const float value = static_cast<float>(state >> 8) * 0x1.0p-24f - 0.5f;
    if (dtype == GemmDtype::kFloat32) {
      std::memcpy(&host[i * 4], &value, 4);
    } else {
      uint32_t bits;
      std::memcpy(&bits, &value, 4);
      const auto top = static_cast<uint16_t>(bits >> 16);  // truncation is fine for test data
      std::memcpy(&host[i * 2], &top, 2);
    }
  }
  void* device = nullptr;
  PIPECAST_CUDA_CHECK(cudaMalloc(&device, static_cast<size_t>(bytes)));
  PIPECAST_CUDA_CHECK(cudaMemcpy(device, host.data(), bytes, cudaMemcpyHostToDevice));
  return device;
}

// TFLOP/s of `iterations` products after three warm-up runs.
double Measure(Gemm& gemm, const GemmShape& s, const void* a, const void* b, void* c,
               int iterations, cudaStream_t stream) {
  for (int i = 0; i < 3; ++i) gemm.Run(s, 1.0f, a, b, 0.0f, c, stream);
  cudaEvent_t start, stop;
  PIPECAST_CUDA_CHECK(cudaEventCreate(&start));
  PIPECAST_CUDA_CHECK(cudaEventCreate(&stop));
  PIPECAST_CUDA_CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < iterations; ++i) gemm.Run(s, 1.0f, a, b, 0.0f, c, stream);
  PIPECAST_CUDA_CHECK(cudaEventRecord(stop, stream));
  PIPECAST_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  PIPECAST_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) *
                       static_cast<double>(s.k) * static_cast<double>(s.batch) * iterations;
  return flops / (static_cast<double>(ms) * 1e-3) / 1e12;
}

std::vector<Case> Cases() {
  constexpr int64_t kRows = 4096, kH = 1024, kVocab = 50257, kS = 512, kD = 64, kHeads = 16;
  const Op N = Op::kNone, T = Op::kTranspose;
  std::vector<Case> base = {
      {"qkv forward  x Wqkv^T", N, T, kRows, 3 * kH, kH, 1},
      {"out forward  ctx Wo^T", N, T, kRows, kH, kH, 1},
      {"mlp up       x W1^T", N, T, kRows, 4 * kH, kH, 1},
      {"mlp down     h W2^T", N, T, kRows, kH, 4 * kH, 1},
      {"mlp down dx  dy W2", N, N, kRows, 4 * kH, kH, 1},
      {"mlp up dW    dy^T x", T, N, 4 * kH, kH, kRows, 1},
      {"head forward x Wh^T", N, T, kRows, kVocab, kH, 1},
      {"scores       q k^T x16", N, T, kS, kS, kD, kHeads},
      {"context      P v x16", N, N, kS, kD, kS, kHeads},
  };
  std::vector<Case> cases;
  for (const GemmDtype input : {GemmDtype::kFloat32, GemmDtype::kBfloat16}) {
    for (Case c : base) {
      c.input = input;
      c.output = GemmDtype::kFloat32;
      cases.push_back(c);
    }
  }
  cases.push_back(
      {"square 8192^3", N, N, 8192, 8192, 8192, 1, GemmDtype::kBfloat16, GemmDtype::kBfloat16});
  cases.push_back(
      {"square 8192^3", N, N, 8192, 8192, 8192, 1, GemmDtype::kFloat32, GemmDtype::kFloat32});
  return cases;
}

const char* TypeName(const Case& c) {
  if (c.input == GemmDtype::kFloat32) return "fp32";
  return c.output == GemmDtype::kFloat32 ? "bf16->fp32" : "bf16";
}

int Run(int iterations) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  PIPECAST_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs; %d iterations per measurement\n", prop.name,
              prop.multiProcessorCount, iterations);
  Result<std::unique_ptr<Gemm>> ours = Gemm::Create();
  Result<std::unique_ptr<Gemm>> theirs =
      Gemm::Create(Gemm::kDefaultWorkspaceBytes, GemmPolicy::kHeuristicDefault);
  if (!ours.ok() || !theirs.ok()) {
    std::printf("cannot create a GEMM: %s\n",
                (ours.ok() ? theirs : ours).status().message().c_str());
    return 1;
  }
  cudaStream_t stream;
  PIPECAST_CUDA_CHECK(cudaStreamCreate(&stream));
  std::printf("%-24s %5s x %5s x %5s x %2s  %-10s %9s %9s  %s\n", "shape", "m", "n", "k", "b",
              "type", "ours", "cublasLt", "our algorithm");
  for (const Case& c : Cases()) {
    void* a = Fill(c.m * c.k * c.batch, c.input, 1);
    void* b = Fill(c.k * c.n * c.batch, c.input, 2);
    void* out = Fill(c.m * c.n * c.batch, c.output, 3);
    const GemmShape s = WithAlignments(ShapeOf(c), a, b, out);
    const double mine = Measure(**ours, s, a, b, out, iterations, stream);
    const double reference = Measure(**theirs, s, a, b, out, iterations, stream);
    std::printf("%-24s %5lld x %5lld x %5lld x %2lld  %-10s %6.1f TF %6.1f TF  %s\n", c.name,
                static_cast<long long>(c.m), static_cast<long long>(c.n),
                static_cast<long long>(c.k), static_cast<long long>(c.batch), TypeName(c), mine,
                reference, (*ours)->Describe(s).c_str());
    cudaFree(a);
    cudaFree(b);
    cudaFree(out);
  }
  cudaStreamDestroy(stream);
  return 0;
}

}  // namespace
}  // namespace pipecast::runtime::cuda

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20;
  return pipecast::runtime::cuda::Run(iterations > 0 ? iterations : 20);
}
