// DeviceWrapper: a Device that forwards every operation to another device, for tests that
// inject faults (override one operation and forward the rest), in the spirit of leveldb's
// EnvWrapper. Owns nothing.
#pragma once

#include "runtime/device.h"

namespace pipecast::runtime {

class DeviceWrapper : public Device {
 public:
  explicit DeviceWrapper(Device* target) : target_(target) {}
  Device* target() const { return target_; }

  std::string name() const override { return target_->name(); }
  Status Prepare(const DeviceSetup& setup) override { return target_->Prepare(setup); }
  void SetWeights(int32_t stage, std::span<const float> weights) override {
    target_->SetWeights(stage, weights);
  }
  void ReadWeights(int32_t stage, std::span<float> out) override {
    target_->ReadWeights(stage, out);
  }
  void Apply(const ir::WeightOp& op, double lr) override { target_->Apply(op, lr); }
  void LoadInput(int32_t stage, int32_t record, std::span<const float> x) override {
    target_->LoadInput(stage, record, x);
  }
  void Forward(const ir::Action& action, int32_t record, int32_t weights) override {
    target_->Forward(action, record, weights);
  }
  void Loss(int32_t stage, int32_t record, int32_t microbatch, std::span<const int32_t> labels,
            float scale) override {
    target_->Loss(stage, record, microbatch, labels, scale);
  }
  void BackwardInput(const ir::Action& action, int32_t record, int32_t weights,
                     bool need_dx) override {
    target_->BackwardInput(action, record, weights, need_dx);
  }
  void BackwardWeight(int32_t stage, int32_t record) override {
    target_->BackwardWeight(stage, record);
  }
  void HandOver(int32_t stage, int32_t record, int32_t to_stage, int32_t to_record,
                bool gradient) override {
    target_->HandOver(stage, record, to_stage, to_record, gradient);
  }
  void Step(int32_t stage, const StepArgs& args) override { target_->Step(stage, args); }
  BufferView Buffer(int32_t stage, int32_t record, RecordPart part) override {
    return target_->Buffer(stage, record, part);
  }
  BufferView Gradient(int32_t stage) override { return target_->Gradient(stage); }
  BufferView ReduceBuffer(int32_t stage, int32_t slot) override {
    return target_->ReduceBuffer(stage, slot);
  }
  void SumGradients(int32_t stage, int32_t count) override { target_->SumGradients(stage, count); }
  BufferView Weights(int32_t stage) override { return target_->Weights(stage); }
  BufferView Reference(int32_t stage) override { return target_->Reference(stage); }
  void ElasticAverage(int32_t stage, int32_t count, double alpha) override {
    target_->ElasticAverage(stage, count, alpha);
  }
  void ElasticPull(int32_t stage, double alpha) override { target_->ElasticPull(stage, alpha); }
  Event Record(Lane lane) override { return target_->Record(lane); }
  void Wait(Lane lane, Event event) override { target_->Wait(lane, event); }
  void HostWait(Event event) override { target_->HostWait(event); }
  Status Synchronize(Clock::time_point deadline) override { return target_->Synchronize(deadline); }
  void ReadLosses(std::span<double> losses, int64_t* correct) override {
    target_->ReadLosses(losses, correct);
  }
  std::span<const ServedWeights> Served() override { return target_->Served(); }
  PredictionStats Predictions(int32_t stage) override { return target_->Predictions(stage); }
  void EvalLoadInput(int32_t stage, std::span<const float> x, int64_t rows) override {
    target_->EvalLoadInput(stage, x, rows);
  }
  void EvalForward(int32_t stage, int64_t rows) override { target_->EvalForward(stage, rows); }
  void EvalHandOver(int32_t stage, int32_t to_stage, int64_t rows) override {
    target_->EvalHandOver(stage, to_stage, rows);
  }
  BufferView EvalBuffer(int32_t stage, RecordPart part, int64_t rows) override {
    return target_->EvalBuffer(stage, part, rows);
  }
  void EvalLoss(int32_t stage, std::span<const int32_t> labels, int64_t rows) override {
    target_->EvalLoss(stage, labels, rows);
  }
  void ReadEval(double* loss_sum, int64_t* correct, int64_t* rows) override {
    target_->ReadEval(loss_sum, correct, rows);
  }
  Result<StageState> State(int32_t stage) override { return target_->State(stage); }
  Status LoadState(int32_t stage, const StageState& state) override {
    return target_->LoadState(stage, state);
  }

 private:
  Device* target_;
};

}  // namespace pipecast::runtime
