// CpuDevice: the Device of device.h in host memory, over models/ (the layers' *Into passes,
// the optimizers and their ΔW rules, the softmax cross-entropy).
//
// Per stage it holds the weights, the gradient, the optimizer (with its state), the plan's copy
// slots, PipeMare's velocity, `records` activation records of [x | y | dy | dx | layers'
// saved memory], and, for a stage whose replica-0 copy it holds in a program with replicas,
// replicas - 1 reduction buffers, and for a stage the program averages (AvgPipe) the reference
// weights W~ (device.h); one scratch buffer serves every pass of the device. Prepare sizes
// the per-program buffers (reusing their capacity) after checking the total against a memory limit;
// the operations then allocate nothing. Every operation runs on the calling thread before it
// returns, so events are complete when recorded and HostWait returns at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "models/optimizer.h"
#include "models/stage.h"
#include "runtime/device.h"

namespace pipecast::runtime {

// One virtual stage a CpuDevice runs.
struct CpuStageSpec {
  int32_t stage = 0;  // the program's virtual stage
  models::Stage<float> layers;
  models::OptimizerConfig optimizer;
};

class CpuDevice final : public Device {
 public:
  // Errors: an optimizer configuration Optimizer::Create rejects. `memory_limit_bytes` bounds
  // what Prepare may allocate (0: the machine's physical memory).
  static Result<std::unique_ptr<CpuDevice>> Create(std::vector<CpuStageSpec> stages,
                                                   std::string name = "cpu",
                                                   int64_t memory_limit_bytes = 0);
  ~CpuDevice() override;

  std::string name() const override { return name_; }
  PIPECAST_DEVICE_OVERRIDES;
  std::span<const ServedWeights> Served() override { return served_; }

  // The ΔW rule the stage's optimizer uses for the prepared program, and whether it is a
  // fallback (models::EffectiveDeltaRule).
  models::EffectiveRule rule(int32_t stage) const;

  struct StageData;  // cpu_device.cc

 private:
  CpuDevice(std::string name, int64_t memory_limit_bytes);
  StageData& At(int32_t stage);
  const StageData& At(int32_t stage) const;
  // The weights of `slot` (kCurrentWeights or a copy slot) and their tag.
  std::span<const float> WeightsOf(const StageData& s, int32_t slot) const;
  void Serve(const ir::Action& action, const StageData& s, int32_t slot);
  void NoteNonFinite(bool loss, int32_t stage, int64_t where);

  std::string name_;
  int64_t memory_limit_;
  std::vector<std::unique_ptr<StageData>> stages_;
  std::vector<int32_t> index_;  // program stage -> position in stages_, or -1
  std::string method_;
  int32_t device_ = 0;
  std::vector<float> scratch_;
  std::vector<double> losses_;
  std::vector<uint8_t> has_loss_;
  int64_t correct_ = 0;
  std::vector<ServedWeights> served_;
  double eval_loss_ = 0;
  int64_t eval_correct_ = 0, eval_rows_done_ = 0;
  // The first non-finite value: a loss (where = microbatch) or a gradient (where = step).
  bool bad_ = false, bad_loss_ = false;
  int32_t bad_stage_ = 0;
  int64_t bad_where_ = 0;
};

}  // namespace pipecast::runtime
