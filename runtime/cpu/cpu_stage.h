// The memory of one stage of a CpuDevice (internal to runtime/cpu/): weights, gradient,
// optimizer, copy slots with their tags, PipeMare's velocity, activation records, evaluation
// buffers, prediction tracking, the all-reduce's reduction buffers and the elastic averaging's
// reference weights, with the record layout
// [x | y | dy | dx | saved].
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/version_plan.h"
#include "models/optimizer.h"
#include "models/stage.h"
#include "runtime/cpu/cpu_device.h"
#include "runtime/device_setup.h"

namespace pipecast::runtime {

struct CpuDevice::StageData {
  // What a buffer holds: the version it is (program-relative) and its horizon or gap.
  struct Tag {
    int32_t version = -1;
    int32_t horizon = 0;
  };

  StageData(int32_t s, models::Stage<float> l, std::unique_ptr<models::Optimizer> o)
      : stage(s),
        layers(std::move(l)),
        optimizer(std::move(o)),
        params(layers.num_params()),
        in(layers.input_width()),
        out(layers.output_width()),
        weights(static_cast<size_t>(params), 0.0f),
        grad(static_cast<size_t>(params), 0.0f) {}

  int32_t ReduceSlots(const DeviceSetup& setup) const { return runtime::ReduceSlots(setup, stage); }
  bool Averages(const DeviceSetup& setup) const { return runtime::Averages(setup, stage); }

  // Bytes the per-program buffers of this stage need (and the reference weights it keeps).
  int64_t Size(const ir::StageBuffers& b, const DeviceSetup& setup) const {
    const int64_t rows = setup.microbatch_rows, er = setup.eval_rows;
    int64_t floats = b.weight_copies * params + b.records * RecordSize(rows);
    floats += static_cast<int64_t>(ReduceSlots(setup)) * params;
    if (er > 0) floats += er * (in + out) + layers.Memory(er).saved;
    if (b.velocity) floats += 2 * params;
    if (Averages(setup)) floats += params;  // the reference weights W~
    if (setup.track_predictions_every > 0) floats += 2 * params;
    return floats * static_cast<int64_t>(sizeof(float));
  }
  int64_t Scratch(const DeviceSetup& setup) const {
    int64_t s = layers.Memory(setup.microbatch_rows).scratch;
    if (setup.eval_rows > 0) s = std::max(s, layers.Memory(setup.eval_rows).scratch);
    return s;
  }
  int64_t RecordSize(int64_t r) const { return 2 * r * in + 2 * r * out + layers.Memory(r).saved; }

  // Sizes the buffers (capacity reused across programs; the velocity, the weights and the
  // reference weights persist).
  void Allocate(const ir::StageBuffers& b, const DeviceSetup& setup, float decay) {
    rows = setup.microbatch_rows;
    record_size = RecordSize(rows);
    records.assign(static_cast<size_t>(b.records * record_size), 0.0f);
    copies.assign(static_cast<size_t>(b.weight_copies * params), 0.0f);
    tags.assign(static_cast<size_t>(b.weight_copies), Tag{});
    reduce_slots = ReduceSlots(setup);
    reduce.assign(static_cast<size_t>(reduce_slots * params), 0.0f);
    if (b.velocity) {
      if (velocity.size() != weights.size()) velocity.assign(weights.size(), 0.0f);
      before.assign(weights.size(), 0.0f);
    }
    if (Averages(setup) && reference.size() != weights.size()) reference = weights;
    gamma = decay;
    eval_rows = setup.eval_rows;
    if (eval_rows > 0) {
      eval_x.assign(static_cast<size_t>(eval_rows * in), 0.0f);
      eval_y.assign(static_cast<size_t>(eval_rows * out), 0.0f);
      eval_saved.assign(static_cast<size_t>(layers.Memory(eval_rows).saved), 0.0f);
    }
    track_every = setup.track_predictions_every;
    tracking = false;
    next_base = 0;
    if (track_every > 0) {
      base.assign(weights.size(), 0.0f);
      predicted.assign(weights.size(), 0.0f);
    }
    version = 0;
    stats = {};
  }

  float* Record(int32_t r) { return records.data() + static_cast<int64_t>(r) * record_size; }
  float* X(int32_t r) { return Record(r); }
  float* Y(int32_t r) { return Record(r) + rows * in; }
  float* DY(int32_t r) { return Record(r) + rows * (in + out); }
  float* DX(int32_t r) { return Record(r) + rows * (in + 2 * out); }
  std::span<float> Saved(int32_t r) {
    return {Record(r) + 2 * rows * (in + out),
            static_cast<size_t>(record_size - 2 * rows * (in + out))};
  }
  float* Copy(int32_t slot) { return copies.data() + static_cast<int64_t>(slot) * params; }
  float* Reduce(int32_t slot) { return reduce.data() + static_cast<int64_t>(slot) * params; }

  int32_t stage;
  models::Stage<float> layers;
  std::unique_ptr<models::Optimizer> optimizer;
  models::EffectiveRule rule;
  int64_t params, in, out;
  std::vector<float> weights, grad;
  std::vector<float> velocity, before;  // PipeMare
  float gamma = 0.5f;
  int32_t version = 0;  // steps taken in this program: the current weights' tag
  std::vector<float> copies;
  std::vector<Tag> tags;
  int32_t reduce_slots = 0;
  std::vector<float> reduce;  // reduce_slots buffers of `params` floats
  // AvgPipe's reference weights W~ (device.h): empty until a program averages the stage.
  std::vector<float> reference;
  int64_t rows = 0, record_size = 0;
  std::vector<float> records;
  int64_t eval_rows = 0;
  std::vector<float> eval_x, eval_y, eval_saved;
  // Prediction tracking: one prediction at a time, measured when the stage reaches `target`; the
  // next one tracked has a base version of at least `next_base` (DeviceSetup).
  int32_t track_every = 0;
  bool tracking = false;
  int32_t target = 0, next_base = 0;
  std::vector<float> base, predicted;
  PredictionStats stats;
};

}  // namespace pipecast::runtime
