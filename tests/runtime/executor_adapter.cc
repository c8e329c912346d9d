// RunExecutor and RunOnCpu with the runtime's API, set up the way runtime/trainer.cc sets up a
// segment: generate and lower the program, plan its buffers, one CpuDevice per pipeline device
// holding its virtual stages (optimizer and ΔW rule as the program's options and the optimizer
// imply), a LoaderFeed from microbatch 0, threads over an InProcessTransport.
#include "runtime/executor_adapter.h"

#include <memory>
#include <string>

#include "common/generators.h"
#include "common/lower.h"
#include "runtime/cpu/cpu_device.h"
#include "runtime/inproc_transport.h"
#include "runtime/loader_feed.h"

namespace pipecast::runtime::testing {

Result<CpuRun> RunOnCpu(const ir::Program& program, const std::vector<models::Stage<float>>& stages,
                        const models::OptimizerConfig& optimizer,
                        const std::vector<std::vector<float>>& init, DataFeed& feed,
                        const CpuRunOptions& options) {
  CpuRun run;
  run.plan = ir::BuildVersionPlan(program, ir::PlanDetail::kExecution);
  std::vector<std::unique_ptr<CpuDevice>> cpus;
  std::vector<Device*> devices(program.num_devices, nullptr);
  const int64_t rows = static_cast<int64_t>(program.microbatch_size) * options.rows_per_example;
  for (int32_t d = 0; d < program.num_devices; ++d) {
    std::vector<CpuStageSpec> specs;
    for (int32_t s = 0; s < program.num_stages; ++s)
      if (program.holds(d, s)) specs.push_back({s, stages[s], optimizer});
    auto cpu = CpuDevice::Create(std::move(specs));
    if (!cpu.ok()) return cpu.status();
    for (int32_t s = 0; s < program.num_stages; ++s)
      if (program.holds(d, s)) (*cpu)->SetWeights(s, init[s]);
    devices[d] = options.wrap ? options.wrap(d, cpu->get()) : cpu->get();
    DeviceSetup setup{
        &program, &run.plan, d, static_cast<int32_t>(rows), 0, options.track_predictions_every};
    PIPECAST_RETURN_IF_ERROR(devices[d]->Prepare(setup));
    cpus.push_back(std::move(*cpu));
  }
  InProcessTransport local(program.num_devices, TrainingSpace(program));
  Transport& transport = options.transport != nullptr ? *options.transport : local;
  auto r = Execute(program, run.plan, devices, feed, transport, options.config);
  if (!r.ok()) return r.status();
  run.exec = std::move(*r);
  for (int32_t s = 0; s < program.num_stages; ++s) {
    std::vector<float> w(static_cast<size_t>(stages[s].num_params()));
    cpus[program.device_of(s)]->ReadWeights(s, w);
    run.weights.push_back(std::move(w));
    run.predictions.push_back(cpus[program.device_of(s)]->Predictions(s));
  }
  run.copies.resize(program.replicas);
  run.references.resize(program.replicas);
  for (int32_t r = 0; r < program.replicas; ++r) {
    for (int32_t s = 0; s < program.num_stages; ++s) {
      CpuDevice& cpu = *cpus[program.device_of_replica(s, r)];
      std::vector<float> w(static_cast<size_t>(stages[s].num_params()));
      cpu.ReadWeights(s, w);
      run.copies[r].push_back(std::move(w));
      auto state = cpu.State(s);
      if (!state.ok()) return state.status();
      run.references[r].emplace_back();
      for (auto& [name, values] : state->tensors)
        if (name == "reference") run.references[r].back() = std::move(values);
    }
  }
  return run;
}

Result<CpuRun> RunExecutorOnCpu(const MethodCase& c, CpuRunOptions options) {
  auto generated = ir::Generate({c.method, c.stages, c.microbatches, c.minibatches,
                                 c.microbatch_size, c.params, c.data_parallel});
  if (!generated.ok()) return generated.status();
  const ir::Program program = ir::InsertCommunication(*generated);
  auto stages = models::Partition(*c.model, program.num_stages);
  if (!stages.ok()) return stages.status();
  LoaderFeed feed(*c.loader, c.microbatch_size, 0);
  options.config.learning_rate = c.learning_rate;
  const std::vector<float> init = c.model->Init(c.init_seed);
  return RunOnCpu(program, *stages, c.optimizer, StageSlices(*stages, init), feed, options);
}

Result<std::vector<std::vector<float>>> RunExecutor(const MethodCase& c) {
  auto r = RunExecutorOnCpu(c);
  if (!r.ok()) return r.status();
  return std::move(r->weights);
}

}  // namespace pipecast::runtime::testing
