// The memory of one stage of a CudaDevice (internal to runtime/cuda/): the persistent buffers
// (weights, gradient, optimizer, velocity, reference weights) and the per-program slices of the
// device's pool, with the CPU device's record layout [x | y | dy | dx | saved] (each part
// padded to 256 bytes) and tags.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/version_plan.h"
#include "models/optimizer.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_optimizer.h"
#include "runtime/cuda/gpu_stage.h"

namespace pipecast::runtime::cuda {

struct CudaDevice::StageData {
  // What a buffer holds: the version it is (program-relative) and its horizon or gap.
  struct Tag {
    int32_t version = -1;
    int32_t horizon = 0;
  };

  StageData(int32_t s, GpuStage l, std::unique_ptr<CudaOptimizer> o)
      : stage(s),
        layers(std::move(l)),
        optimizer(std::move(o)),
        params(layers.num_params()),
        in(layers.input_width()),
        out(layers.output_width()) {}

  // Every part of a record and every copy slot starts on a 256-byte boundary of the pool (a
  // multiple of kPad floats), so that a GEMM's operands fall in the same alignment class in
  // every record and slot and get the same kernel, and vectorised paths apply everywhere.
  static constexpr int64_t kPad = 64;
  static int64_t Pad(int64_t floats) { return (floats + kPad - 1) / kPad * kPad; }
  int64_t RecordSize(int64_t r) const {
    return 2 * Pad(r * in) + 2 * Pad(r * out) + Pad(layers.Memory(r).saved);
  }
  int64_t slot_stride() const { return Pad(params); }
  float* Record(int32_t r) const { return records + static_cast<int64_t>(r) * record_size; }
  float* X(int32_t r) const { return Record(r); }
  float* Y(int32_t r) const { return X(r) + Pad(rows * in); }
  float* DY(int32_t r) const { return Y(r) + Pad(rows * out); }
  float* DX(int32_t r) const { return DY(r) + Pad(rows * out); }
  float* Saved(int32_t r) const { return DX(r) + Pad(rows * in); }
  float* Copy(int32_t slot) const { return copies + static_cast<int64_t>(slot) * slot_stride(); }
  float* Reduce(int32_t slot) const { return reduce + static_cast<int64_t>(slot) * slot_stride(); }

  int32_t stage;
  GpuStage layers;
  std::unique_ptr<CudaOptimizer> optimizer;
  models::EffectiveRule rule;
  int64_t params, in, out;
  // Persistent: allocated by Create (weights, grad) or by the first program needing them.
  float* weights = nullptr;
  float* grad = nullptr;
  float* velocity = nullptr;   // PipeMare's δ
  float* reference = nullptr;  // AvgPipe's W~
  bool has_reference = false;  // false after SetWeights: the next averaging program starts W~
  float gamma = 0.5f;
  int32_t version = 0;
  // Per program, in the pool.
  int32_t weight_copies = 0;
  float* copies = nullptr;
  std::vector<Tag> tags;
  int64_t rows = 0, record_size = 0;
  int32_t record_count = 0;
  float* records = nullptr;
  int32_t reduce_slots = 0;
  float* reduce = nullptr;
  int64_t eval_rows = 0;
  float* eval_x = nullptr;
  float* eval_y = nullptr;
  float* eval_saved = nullptr;
  int32_t* labels = nullptr;  // max(rows, eval_rows) labels
  // Prediction tracking (DeviceSetup::track_predictions_every), as CpuDevice does it; each
  // measurement's four sums land in the device's measurement slots, read by Predictions.
  int32_t track_every = 0;
  bool tracking = false;
  int32_t target = 0, next_base = 0;
  float* base = nullptr;
  float* predicted = nullptr;
  std::vector<int32_t> measured;  // measurement slots not yet read
  PredictionStats stats;
};

}  // namespace pipecast::runtime::cuda
