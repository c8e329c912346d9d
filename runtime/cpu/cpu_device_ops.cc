// CpuDevice: the operations (weight ops, passes, steps, evaluation), each run to completion on
// the calling thread, allocating nothing.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "runtime/device_setup.h"
#include "models/loss.h"
#include "runtime/cpu/cpu_device.h"
#include "runtime/cpu/cpu_stage.h"

namespace pipecast::runtime {
namespace {

// x * 0 is 0 for finite x and NaN for NaN or Inf, so a sum of them is 0 exactly when every value
// is finite. Eight independent partial sums keep the loop fast.
bool AllFinite(std::span<const float> v) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= v.size(); i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += v[i + k] * 0.0f;
  for (; i < v.size(); ++i) acc[0] += v[i] * 0.0f;
  float total = 0;
  for (float a : acc) total += a;
  return total == 0.0f;
}

models::ConstView<float> Const(const float* p, int64_t rows, int64_t cols) {
  return models::MakeConstView(p, rows, cols);
}
models::View<float> Mut(float* p, int64_t rows, int64_t cols) {
  return models::MakeView(p, rows, cols);
}

// Relative error and cosine of a prediction measured against the weights reached.
void Measure(const std::vector<float>& base, const std::vector<float>& predicted,
             const std::vector<float>& reached, PredictionStats& stats) {
  double err = 0, real = 0, pred = 0, dot = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    const double r = static_cast<double>(reached[i]) - base[i];
    const double p = static_cast<double>(predicted[i]) - base[i];
    const double e = static_cast<double>(predicted[i]) - reached[i];
    err += e * e;
    real += r * r;
    pred += p * p;
    dot += p * r;
  }
  if (real == 0) return;  // the stage did not move: nothing to compare with
  ++stats.count;
  stats.error_sum += std::sqrt(err / real);
  stats.cosine_sum += pred > 0 ? dot / std::sqrt(pred * real) : 0.0;
}

}  // namespace

std::span<const float> CpuDevice::WeightsOf(const StageData& s, int32_t slot) const {
  if (slot == ir::kCurrentWeights) return s.weights;
  PIPECAST_CHECK(slot >= 0 && slot < static_cast<int32_t>(s.tags.size()) &&
                 s.tags[slot].version >= 0)
      << name_ << " stage " << s.stage << ": weights from an empty slot " << slot;
  return {const_cast<StageData&>(s).Copy(slot), static_cast<size_t>(s.params)};
}

void CpuDevice::Serve(const ir::Action& a, const StageData& s, int32_t slot) {
  const StageData::Tag tag =
      slot == ir::kCurrentWeights ? StageData::Tag{s.version, 0} : s.tags[slot];
  served_.push_back({a.kind, a.stage, a.microbatch, s.version, tag.version, tag.horizon});
}

void CpuDevice::Apply(const ir::WeightOp& op, double lr) {
  StageData& s = At(op.stage);
  PIPECAST_CHECK(op.slot >= 0 && op.slot < static_cast<int32_t>(s.tags.size()))
      << name_ << " stage " << op.stage << ": slot " << op.slot << " beyond the plan";
  float* slot = s.Copy(op.slot);
  StageData::Tag& tag = s.tags[op.slot];
  switch (op.kind) {
    case ir::WeightOpKind::kSaveCurrent:
      std::copy(s.weights.begin(), s.weights.end(), slot);
      tag = {s.version, 0};
      return;
    case ir::WeightOpKind::kPredict: {
      const std::span<float> out(slot, static_cast<size_t>(s.params));
      s.optimizer->Predict(s.weights, lr, op.value, s.rule.rule, out);
      tag = {s.version, op.value};
      if (s.track_every > 0 && !s.tracking && s.version >= s.next_base) {
        std::copy(s.weights.begin(), s.weights.end(), s.base.begin());
        std::copy(out.begin(), out.end(), s.predicted.begin());
        s.target = s.version + op.value;
        s.next_base = s.version + s.track_every;
        s.tracking = true;
      }
      return;
    }
    case ir::WeightOpKind::kCorrect: {
      PIPECAST_CHECK(!s.velocity.empty())
          << "stage " << op.stage << ": correction without velocity";
      const float gap = static_cast<float>(op.value);
      for (int64_t i = 0; i < s.params; ++i) slot[i] = s.weights[i] - gap * s.velocity[i];
      tag = {s.version, op.value};
      return;
    }
    case ir::WeightOpKind::kRelease:
      tag = {};
      return;
  }
}

void CpuDevice::LoadInput(int32_t stage, int32_t record, std::span<const float> x) {
  StageData& s = At(stage);
  PIPECAST_CHECK(static_cast<int64_t>(x.size()) == s.rows * s.in)
      << "stage " << stage << ": input of " << x.size() << " values, expected " << s.rows * s.in;
  std::copy(x.begin(), x.end(), s.X(record));
}

void CpuDevice::Forward(const ir::Action& a, int32_t record, int32_t weights) {
  StageData& s = At(a.stage);
  Serve(a, s, weights);
  s.layers.ForwardInto(WeightsOf(s, weights), Const(s.X(record), s.rows, s.in),
                       Mut(s.Y(record), s.rows, s.out), s.Saved(record), scratch_);
}

void CpuDevice::Loss(int32_t stage, int32_t record, int32_t microbatch,
                     std::span<const int32_t> labels, float scale) {
  StageData& s = At(stage);
  const auto y = Const(s.Y(record), s.rows, s.out);
  const double loss =
      models::SoftmaxCrossEntropyInto<float>(y, labels, scale, Mut(s.DY(record), s.rows, s.out));
  if (!std::isfinite(loss)) NoteNonFinite(true, stage, microbatch);
  losses_[microbatch] = loss;
  has_loss_[microbatch] = 1;
  correct_ += models::CountCorrect<float>(y, labels);
}

void CpuDevice::BackwardInput(const ir::Action& a, int32_t record, int32_t weights, bool need_dx) {
  StageData& s = At(a.stage);
  Serve(a, s, weights);
  const models::View<float> dx =
      need_dx ? Mut(s.DX(record), s.rows, s.in) : models::View<float>(nullptr, 0, 0);
  s.layers.BackwardInputInto(WeightsOf(s, weights), Const(s.X(record), s.rows, s.in),
                             Const(s.Y(record), s.rows, s.out), Const(s.DY(record), s.rows, s.out),
                             dx, s.Saved(record), scratch_);
}

void CpuDevice::BackwardWeight(int32_t stage, int32_t record) {
  StageData& s = At(stage);
  s.layers.BackwardWeightInto(Const(s.X(record), s.rows, s.in), Const(s.Y(record), s.rows, s.out),
                              Const(s.DY(record), s.rows, s.out), s.Saved(record), s.grad,
                              scratch_);
}

void CpuDevice::HandOver(int32_t stage, int32_t record, int32_t to_stage, int32_t to_record,
                         bool gradient) {
  StageData& from = At(stage);
  StageData& to = At(to_stage);
  const int64_t n = gradient ? from.rows * from.in : from.rows * from.out;
  PIPECAST_CHECK(n == (gradient ? to.rows * to.out : to.rows * to.in)) << "hand-over shapes";
  const float* src = gradient ? from.DX(record) : from.Y(record);
  float* dst = gradient ? to.DY(to_record) : to.X(to_record);
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void CpuDevice::Step(int32_t stage, const StepArgs& args) {
  StageData& s = At(stage);
  if (args.apply) {
    if (!AllFinite(s.grad)) NoteNonFinite(false, stage, args.step);
    if (!s.velocity.empty()) std::copy(s.weights.begin(), s.weights.end(), s.before.begin());
    s.optimizer->Step(s.weights, s.grad, args.lr);
    if (!s.velocity.empty()) {
      const float g = s.gamma, h = 1.0f - s.gamma;
      for (int64_t i = 0; i < s.params; ++i)
        s.velocity[i] = g * s.velocity[i] + h * (s.weights[i] - s.before[i]);
    }
    std::fill(s.grad.begin(), s.grad.end(), 0.0f);
  }
  ++s.version;
  if (s.tracking && s.version == s.target) {
    Measure(s.base, s.predicted, s.weights, s.stats);
    s.tracking = false;
  }
}

BufferView CpuDevice::Buffer(int32_t stage, int32_t record, RecordPart part) {
  StageData& s = At(stage);
  return RecordPartView(s, record, part);
}

BufferView CpuDevice::Gradient(int32_t stage) {
  StageData& s = At(stage);
  return {s.grad.data(), s.params};
}

BufferView CpuDevice::ReduceBuffer(int32_t stage, int32_t slot) {
  StageData& s = At(stage);
  PIPECAST_CHECK(slot >= 0 && slot < s.reduce_slots)
      << name_ << " stage " << stage << ": reduction buffer " << slot << " of " << s.reduce_slots;
  return {s.Reduce(slot), s.params};
}

// Replica order, left to right: one pass per buffer keeps every element's sum
// ((g_0 + g_1) + g_2) + ..., whatever the buffers' arrival order was.
void CpuDevice::SumGradients(int32_t stage, int32_t count) {
  StageData& s = At(stage);
  PIPECAST_CHECK(count >= 0 && count <= s.reduce_slots)
      << name_ << " stage " << stage << ": sum of " << count << " buffers";
  float* g = s.grad.data();
  for (int32_t k = 0; k < count; ++k) {
    const float* b = s.Reduce(k);
    for (int64_t i = 0; i < s.params; ++i) g[i] += b[i];
  }
}

BufferView CpuDevice::Weights(int32_t stage) {
  StageData& s = At(stage);
  return {s.weights.data(), s.params};
}

BufferView CpuDevice::Reference(int32_t stage) {
  StageData& s = At(stage);
  PIPECAST_CHECK(static_cast<int64_t>(s.reference.size()) == s.params)
      << name_ << " stage " << stage << ": no reference weights (the program does not average it)";
  return {s.reference.data(), s.params};
}

// Element by element, the sum over the copies in replica order, then both updates from the old
// reference t: the same bits whatever order the copies' weights arrived in.
void CpuDevice::ElasticAverage(int32_t stage, int32_t count, double alpha) {
  StageData& s = At(stage);
  PIPECAST_CHECK(count >= 0 && count <= s.reduce_slots)
      << name_ << " stage " << stage << ": average of " << count << " buffers";
  const float a = static_cast<float>(alpha);
  float* w = s.weights.data();
  float* ref = Reference(stage).data;
  for (int64_t i = 0; i < s.params; ++i) {
    const float t = ref[i];
    float sum = w[i] - t;
    for (int32_t k = 0; k < count; ++k) sum += s.Reduce(k)[i] - t;
    w[i] = w[i] - a * (w[i] - t);
    ref[i] = t + a * sum;
  }
}

void CpuDevice::ElasticPull(int32_t stage, double alpha) {
  StageData& s = At(stage);
  const float a = static_cast<float>(alpha);
  float* w = s.weights.data();
  const float* ref = Reference(stage).data;
  for (int64_t i = 0; i < s.params; ++i) w[i] = w[i] - a * (w[i] - ref[i]);
}

Event CpuDevice::Record(Lane lane) { return {static_cast<int32_t>(lane), -1}; }
void CpuDevice::Wait(Lane, Event) {}
void CpuDevice::HostWait(Event) {}

void CpuDevice::EvalLoadInput(int32_t stage, std::span<const float> x, int64_t rows) {
  StageData& s = At(stage);
  PIPECAST_CHECK(rows <= s.eval_rows && static_cast<int64_t>(x.size()) == rows * s.in);
  std::copy(x.begin(), x.end(), s.eval_x.begin());
}

void CpuDevice::EvalForward(int32_t stage, int64_t rows) {
  StageData& s = At(stage);
  PIPECAST_CHECK(rows <= s.eval_rows &&
                 s.layers.Memory(rows).saved <= static_cast<int64_t>(s.eval_saved.size()))
      << "stage " << stage << ": evaluation chunk of " << rows << " rows";
  s.layers.ForwardInto(s.weights, Const(s.eval_x.data(), rows, s.in),
                       Mut(s.eval_y.data(), rows, s.out), s.eval_saved, scratch_);
}

void CpuDevice::EvalHandOver(int32_t stage, int32_t to_stage, int64_t rows) {
  StageData& from = At(stage);
  StageData& to = At(to_stage);
  std::copy_n(from.eval_y.begin(), rows * from.out, to.eval_x.begin());
}

BufferView CpuDevice::EvalBuffer(int32_t stage, RecordPart part, int64_t rows) {
  StageData& s = At(stage);
  PIPECAST_CHECK(part == RecordPart::kInput || part == RecordPart::kOutput);
  return part == RecordPart::kInput ? BufferView{s.eval_x.data(), rows * s.in}
                                    : BufferView{s.eval_y.data(), rows * s.out};
}

void CpuDevice::EvalLoss(int32_t stage, std::span<const int32_t> labels, int64_t rows) {
  StageData& s = At(stage);
  const auto y = Const(s.eval_y.data(), rows, s.out);
  const double loss =
      models::SoftmaxCrossEntropyInto<float>(y, labels, 1.0, models::View<float>(nullptr, 0, 0));
  eval_loss_ += loss * static_cast<double>(rows);
  eval_correct_ += models::CountCorrect<float>(y, labels);
  eval_rows_done_ += rows;
}

}  // namespace pipecast::runtime
