// CudaDevice: the operations (weight ops, passes, steps, collectives' local parts, evaluation),
// each enqueued on the compute stream, allocating nothing and synchronising nothing (except the
// pinned staging ring's reuse, which waits for an upload eight uploads old). What they enqueue
// is checked as the kernels' launches are (launch_check.h): a fault of earlier work is left for
// Synchronize to report with its stage and lane.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_device_impl.h"
#include "runtime/cuda/cuda_optimizer.h"
#include "runtime/cuda/cuda_stage.h"
#include "runtime/cuda/cuda_status.h"
#include "runtime/cuda/device_kernels.h"
#include "runtime/cuda/launch_check.h"
#include "runtime/device_setup.h"

namespace pipecast::runtime::cuda {
namespace {

// A HostWait longer than this is a hang: the executor only host-waits for work it enqueued
// itself, which never depends on another device.
constexpr auto kHostWaitLimit = std::chrono::minutes(10);

size_t Bytes(int64_t floats) { return static_cast<size_t>(floats) * sizeof(float); }

}  // namespace

const float* CudaDevice::WeightsOf(StageData& s, int32_t slot) {
  if (slot == ir::kCurrentWeights) return s.weights;
  PIPECAST_CHECK(slot >= 0 && slot < s.weight_copies && s.tags[slot].version >= 0)
      << name_ << " stage " << s.stage << ": weights from an empty slot " << slot;
  return s.Copy(slot);
}

void CudaDevice::Serve(const ir::Action& a, const StageData& s, int32_t slot) {
  const StageData::Tag tag =
      slot == ir::kCurrentWeights ? StageData::Tag{s.version, 0} : s.tags[slot];
  served_.push_back({a.kind, a.stage, a.microbatch, s.version, tag.version, tag.horizon});
}

void CudaDevice::Apply(const ir::WeightOp& op, double lr) {
  StageData& s = At(op.stage);
  const bool fuse = op.kind == ir::WeightOpKind::kPredict && impl_->pending.stage == op.stage;
  if (fuse) {
    MakeCurrent();
  } else {
    Bind();
  }
  PIPECAST_CHECK(op.slot >= 0 && op.slot < s.weight_copies)
      << name_ << " stage " << op.stage << ": slot " << op.slot << " beyond the plan";
  cudaStream_t st = streams_[0];
  float* slot = s.Copy(op.slot);
  StageData::Tag& tag = s.tags[op.slot];
  impl_->last_op = "a weight operation";
  impl_->last_stage = op.stage;
  switch (op.kind) {
    case ir::WeightOpKind::kSaveCurrent:
      CheckEnqueued(cudaMemcpyAsync(slot, s.weights, Bytes(s.params), cudaMemcpyDeviceToDevice, st),
                    "saving the weights");
      tag = {s.version, 0};
      return;
    case ir::WeightOpKind::kPredict:
      if (fuse) {  // the deferred step of this stage and this prediction, in one pass
        LaunchPendingStep(slot, lr, op.value);
      } else {
        s.optimizer->Predict(s.weights, lr, op.value, s.rule.rule, slot, st);
      }
      tag = {s.version, op.value};
      if (s.track_every > 0 && !s.tracking && s.version >= s.next_base) {
        CheckEnqueued(
            cudaMemcpyAsync(s.base, s.weights, Bytes(s.params), cudaMemcpyDeviceToDevice, st),
            "keeping a tracked prediction's base");
        CheckEnqueued(
            cudaMemcpyAsync(s.predicted, slot, Bytes(s.params), cudaMemcpyDeviceToDevice, st),
            "keeping a tracked prediction");
        s.target = s.version + op.value;
        s.next_base = s.version + s.track_every;
        s.tracking = true;
      }
      return;
    case ir::WeightOpKind::kCorrect:
      PIPECAST_CHECK(s.velocity != nullptr)
          << "stage " << op.stage << ": correction without velocity";
      Correct(s.weights, s.velocity, static_cast<float>(op.value), slot, s.params, st);
      tag = {s.version, op.value};
      return;
    case ir::WeightOpKind::kRelease:
      tag = {};
      return;
  }
}

void CudaDevice::Upload(void* device, const void* host, size_t bytes) {
  Impl& m = *impl_;
  PIPECAST_CHECK(static_cast<int64_t>(bytes) <= m.slot_bytes)
      << name_ << ": upload of " << bytes << " bytes into staging of " << m.slot_bytes;
  const int32_t k = m.next_slot;
  m.next_slot = (k + 1) % kStagingSlots;
  if (m.slot_used[k]) {
    const Status st =
        PollEvent(m.slot_events[k], Clock::now() + kHostWaitLimit, name_ + ": staging an input");
    // A device error is a fault of earlier work (sticky): the copy will not run, Synchronize
    // reports the fault.
    PIPECAST_CHECK(st.ok() || st.code() == StatusCode::kDeviceError) << st.message();
  }
  char* pinned = static_cast<char*>(m.pinned) + static_cast<int64_t>(k) * m.slot_bytes;
  std::memcpy(pinned, host, bytes);
  CheckEnqueued(cudaMemcpyAsync(device, pinned, bytes, cudaMemcpyHostToDevice, streams_[0]),
                "uploading an input");
  CheckEnqueued(cudaEventRecord(m.slot_events[k], streams_[0]), "recording an upload");
  m.slot_used[k] = true;
}

void CudaDevice::LoadInput(int32_t stage, int32_t record, std::span<const float> x) {
  StageData& s = At(stage);
  Bind();
  PIPECAST_CHECK(static_cast<int64_t>(x.size()) == s.rows * s.in)
      << "stage " << stage << ": input of " << x.size() << " values, expected " << s.rows * s.in;
  Upload(s.X(record), x.data(), x.size_bytes());
}

void CudaDevice::Forward(const ir::Action& a, int32_t record, int32_t weights) {
  StageData& s = At(a.stage);
  Bind();
  Serve(a, s, weights);
  impl_->last_op = "a forward";
  impl_->last_stage = a.stage;
  s.layers.Forward(WeightsOf(s, weights), s.X(record), s.Y(record), s.Saved(record), impl_->scratch,
                   s.rows, impl_->ctx);
}

void CudaDevice::Loss(int32_t stage, int32_t record, int32_t microbatch,
                      std::span<const int32_t> labels, float scale) {
  StageData& s = At(stage);
  Bind();
  Impl& m = *impl_;
  PIPECAST_CHECK(static_cast<int64_t>(labels.size()) == s.rows)
      << "stage " << stage << ": " << labels.size() << " labels for " << s.rows << " rows";
  Upload(s.labels, labels.data(), labels.size_bytes());
  m.last_op = "the loss";
  m.last_stage = stage;
  SoftmaxCrossEntropy(s.Y(record), s.labels, s.rows, s.out, static_cast<double>(scale),
                      s.DY(record), m.losses + microbatch, m.correct, m.dscratch, streams_[0]);
  m.has_loss[microbatch] = 1;
  m.checks.push_back({true, stage, microbatch, -1});
}

void CudaDevice::BackwardInput(const ir::Action& a, int32_t record, int32_t weights, bool need_dx) {
  StageData& s = At(a.stage);
  Bind();
  Serve(a, s, weights);
  impl_->last_op = "an input gradient";
  impl_->last_stage = a.stage;
  s.layers.BackwardInput(WeightsOf(s, weights), s.X(record), s.Y(record), s.DY(record),
                         need_dx ? s.DX(record) : nullptr, s.Saved(record), impl_->scratch, s.rows,
                         impl_->ctx);
}

void CudaDevice::BackwardWeight(int32_t stage, int32_t record) {
  StageData& s = At(stage);
  Bind();
  impl_->last_op = "a weight gradient";
  impl_->last_stage = stage;
  s.layers.BackwardWeight(s.X(record), s.Y(record), s.DY(record), s.Saved(record), s.grad,
                          impl_->scratch, s.rows, impl_->ctx);
}

void CudaDevice::HandOver(int32_t stage, int32_t record, int32_t to_stage, int32_t to_record,
                          bool gradient) {
  StageData& from = At(stage);
  StageData& to = At(to_stage);
  Bind();
  const int64_t n = gradient ? from.rows * from.in : from.rows * from.out;
  PIPECAST_CHECK(n == (gradient ? to.rows * to.out : to.rows * to.in)) << "hand-over shapes";
  const float* src = gradient ? from.DX(record) : from.Y(record);
  float* dst = gradient ? to.DY(to_record) : to.X(to_record);
  CheckEnqueued(cudaMemcpyAsync(dst, src, Bytes(n), cudaMemcpyDeviceToDevice, streams_[0]),
                "a hand-over");
}

void CudaDevice::Step(int32_t stage, const StepArgs& args) {
  StageData& s = At(stage);
  Bind();  // launches an earlier deferred step
  Impl& m = *impl_;
  cudaStream_t st = streams_[0];
  m.last_op = "an optimizer step";
  m.last_stage = stage;
  if (args.apply) {
    PIPECAST_CHECK(m.flags_used < m.flag_capacity) << name_ << ": more steps than the program has";
    const int32_t flag = m.flags_used++;
    FlagNonFinite(s.grad, s.params, m.flags + flag, st);
    m.checks.push_back({false, stage, args.step, flag});
    m.pending = {stage, args.lr, -1};
  }
  ++s.version;
  if (s.tracking && s.version == s.target) {
    PIPECAST_CHECK(m.measures_used < m.measure_capacity) << name_ << ": measurement slots";
    const int32_t slot = m.measures_used++;
    s.measured.push_back(slot);
    s.tracking = false;
    if (args.apply) {
      m.pending.measure_slot = slot;  // measured once the deferred step has run
    } else {
      MeasurePrediction(s.base, s.predicted, s.weights, s.params, m.measures + 4 * slot, m.dscratch,
                        st);
    }
  }
}

void CudaDevice::LaunchPendingStep(float* predicted, double predict_lr, int32_t horizon) {
  Impl& m = *impl_;
  const Impl::PendingStep p = m.pending;
  m.pending = {};
  StageData& s = At(p.stage);
  cudaStream_t st = streams_[0];
  StepExtras extras;
  extras.velocity = s.velocity;
  extras.gamma = s.gamma;
  if (predicted != nullptr) {
    extras.predicted = predicted;
    extras.predict_lr = predict_lr;
    extras.predict_s = horizon;
    extras.rule = s.rule.rule;
  }
  s.optimizer->Step(s.weights, s.grad, p.lr, st, extras);
  CheckEnqueued(cudaMemsetAsync(s.grad, 0, Bytes(s.params), st), "zeroing a gradient");
  if (p.measure_slot >= 0) {
    MeasurePrediction(s.base, s.predicted, s.weights, s.params, m.measures + 4 * p.measure_slot,
                      m.dscratch, st);
  }
}

BufferView CudaDevice::Buffer(int32_t stage, int32_t record, RecordPart part) {
  StageData& s = At(stage);
  return RecordPartView(s, record, part);
}

BufferView CudaDevice::Gradient(int32_t stage) {
  StageData& s = At(stage);
  return {s.grad, s.params};
}

BufferView CudaDevice::ReduceBuffer(int32_t stage, int32_t slot) {
  StageData& s = At(stage);
  PIPECAST_CHECK(slot >= 0 && slot < s.reduce_slots)
      << name_ << " stage " << stage << ": reduction buffer " << slot << " of " << s.reduce_slots;
  return {s.Reduce(slot), s.params};
}

void CudaDevice::SumGradients(int32_t stage, int32_t count) {
  StageData& s = At(stage);
  Bind();
  PIPECAST_CHECK(count >= 0 && count <= s.reduce_slots)
      << name_ << " stage " << stage << ": sum of " << count << " buffers";
  std::vector<const float*>& buffers = impl_->buffers;  // capacity from Prepare
  buffers.clear();
  for (int32_t k = 0; k < count; ++k) buffers.push_back(s.Reduce(k));
  impl_->last_op = "a gradient sum";
  impl_->last_stage = stage;
  SumInto(s.grad, buffers.data(), count, s.params, streams_[0]);
}

BufferView CudaDevice::Weights(int32_t stage) {
  StageData& s = At(stage);
  return {s.weights, s.params};
}

BufferView CudaDevice::Reference(int32_t stage) {
  StageData& s = At(stage);
  PIPECAST_CHECK(s.has_reference) << name_ << " stage " << stage
                                  << ": no reference weights (the program does not average it)";
  return {s.reference, s.params};
}

void CudaDevice::ElasticAverage(int32_t stage, int32_t count, double alpha) {
  StageData& s = At(stage);
  Bind();
  PIPECAST_CHECK(count >= 0 && count <= s.reduce_slots)
      << name_ << " stage " << stage << ": average of " << count << " buffers";
  PIPECAST_CHECK(s.has_reference) << name_ << " stage " << stage << ": no reference weights";
  std::vector<const float*>& buffers = impl_->buffers;  // capacity from Prepare
  buffers.clear();
  for (int32_t k = 0; k < count; ++k) buffers.push_back(s.Reduce(k));
  impl_->last_op = "an elastic average";
  impl_->last_stage = stage;
  cuda::ElasticAverage(s.weights, s.reference, buffers.data(), count, static_cast<float>(alpha),
                       s.params, streams_[0]);
}

void CudaDevice::ElasticPull(int32_t stage, double alpha) {
  StageData& s = At(stage);
  Bind();
  PIPECAST_CHECK(s.has_reference) << name_ << " stage " << stage << ": no reference weights";
  impl_->last_op = "an elastic pull";
  impl_->last_stage = stage;
  cuda::ElasticPull(s.weights, s.reference, static_cast<float>(alpha), s.params, streams_[0]);
}

Event CudaDevice::Record(Lane lane) {
  Impl& m = *impl_;
  Bind();
  const int l = static_cast<int>(lane);
  const int64_t seq = m.recorded[l]++;
  CheckEnqueued(cudaEventRecord(m.ring[l][seq % kEventRing], streams_[l]), "recording an event");
  return {l, seq};
}

void CudaDevice::Wait(Lane lane, Event e) {
  cudaEvent_t ev = event(e);
  if (ev == nullptr) return;
  Bind();
  CheckEnqueued(cudaStreamWaitEvent(streams_[static_cast<int>(lane)], ev, 0),
                "waiting for an event");
}

void CudaDevice::HostWait(Event e) {
  cudaEvent_t ev = event(e);
  if (ev == nullptr) return;
  const Status st = PollEvent(ev, Clock::now() + kHostWaitLimit, name_ + ": a host wait");
  // A device error is a fault of earlier work (sticky), which Synchronize reports.
  PIPECAST_CHECK(st.ok() || st.code() == StatusCode::kDeviceError) << st.message();
}

void CudaDevice::EvalLoadInput(int32_t stage, std::span<const float> x, int64_t rows) {
  StageData& s = At(stage);
  Bind();
  PIPECAST_CHECK(rows <= s.eval_rows && static_cast<int64_t>(x.size()) == rows * s.in);
  Upload(s.eval_x, x.data(), x.size_bytes());
}

void CudaDevice::EvalForward(int32_t stage, int64_t rows) {
  StageData& s = At(stage);
  Bind();
  PIPECAST_CHECK(rows <= s.eval_rows) << "stage " << stage << ": evaluation chunk of " << rows;
  impl_->last_op = "an evaluation forward";
  impl_->last_stage = stage;
  s.layers.Forward(s.weights, s.eval_x, s.eval_y, s.eval_saved, impl_->scratch, rows, impl_->ctx);
}

void CudaDevice::EvalHandOver(int32_t stage, int32_t to_stage, int64_t rows) {
  StageData& from = At(stage);
  StageData& to = At(to_stage);
  Bind();
  CheckEnqueued(cudaMemcpyAsync(to.eval_x, from.eval_y, Bytes(rows * from.out),
                                cudaMemcpyDeviceToDevice, streams_[0]),
                "an evaluation hand-over");
}

BufferView CudaDevice::EvalBuffer(int32_t stage, RecordPart part, int64_t rows) {
  StageData& s = At(stage);
  PIPECAST_CHECK(part == RecordPart::kInput || part == RecordPart::kOutput);
  return part == RecordPart::kInput ? BufferView{s.eval_x, rows * s.in}
                                    : BufferView{s.eval_y, rows * s.out};
}

void CudaDevice::EvalLoss(int32_t stage, std::span<const int32_t> labels, int64_t rows) {
  StageData& s = At(stage);
  Bind();
  Impl& m = *impl_;
  Upload(s.labels, labels.data(), labels.size_bytes());
  m.last_op = "an evaluation loss";
  m.last_stage = stage;
  SoftmaxCrossEntropy(s.eval_y, s.labels, rows, s.out, 1.0, nullptr, m.eval_loss, m.eval_correct,
                      m.dscratch, streams_[0]);
  AccumulateScaled(m.eval_loss + 1, m.eval_loss, static_cast<double>(rows), streams_[0]);
  m.eval_rows_done += rows;
}

}  // namespace pipecast::runtime::cuda
