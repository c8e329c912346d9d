// RunExecutor with today's runtime API, set up the way runtime/trainer.cc sets up a segment:
// generate and lower the program, one CpuStageBackend and ModelOptimizer per virtual stage (with
// the dW rule the trainer picks for the method and optimizer), a LoaderFeed from microbatch 0,
// threads over an InProcessTransport.
#include "runtime/executor_adapter.h"

#include <memory>
#include <string>

#include "common/generators.h"
#include "common/lower.h"
#include "runtime/cpu_backend.h"
#include "runtime/executor.h"
#include "runtime/inproc_transport.h"

namespace pipecast::runtime::testing {
namespace {

// The dW rule weight prediction uses: the trainer's choice (runtime/trainer.cc, RuleFor).
Result<models::DeltaRule> RuleFor(const ir::Program& p, models::OptimizerKind kind) {
  const bool adam = kind == models::OptimizerKind::kAdam || kind == models::OptimizerKind::kAdamW;
  if (p.method == "pipeoptim") return models::ParseDeltaRule(p.params.at("delta"));
  if (p.method == "spectrain" && kind == models::OptimizerKind::kSgd)
    return models::DeltaRule::kSpecTrain;
  if (p.method == "xpipe" && adam) return models::DeltaRule::kXPipe;
  return models::DeltaRule::kPaper;
}

}  // namespace

Result<std::vector<std::vector<float>>> RunExecutor(const MethodCase& c) {
  auto generated = ir::Generate(
      {c.method, c.stages, c.microbatches, c.minibatches, c.microbatch_size, c.params});
  if (!generated.ok()) return generated.status();
  const ir::Program program = ir::InsertCommunication(*generated);
  auto stages = models::Partition(*c.model, program.num_stages);
  if (!stages.ok()) return stages.status();
  auto rule = RuleFor(program, c.optimizer.kind);
  if (!rule.ok()) return rule.status();

  std::vector<std::unique_ptr<StageBackend>> backends;
  std::vector<std::unique_ptr<StageOptimizer>> optimizers;
  for (const models::Stage<float>& s : *stages) {
    backends.push_back(std::make_unique<CpuStageBackend>(s));
    auto o = models::Optimizer::Create(c.optimizer, static_cast<size_t>(s.num_params()));
    if (!o.ok()) return o.status();
    if (Status st = (*o)->SupportsRule(*rule); !st.ok()) return st;
    optimizers.push_back(std::make_unique<ModelOptimizer>(std::move(*o), *rule));
  }
  LoaderFeed feed(*c.loader, c.microbatch_size, 0);
  InProcessTransport transport(program.num_devices);
  ExecutorConfig config;
  config.learning_rate = c.learning_rate;
  config.pipemare_decay = c.method == "pipemare" ? std::stod(program.params.at("decay")) : 0.5;
  const std::vector<float> init = c.model->Init(c.init_seed);
  auto r =
      Execute(program, backends, optimizers, StageSlices(*stages, init), feed, transport, config);
  if (!r.ok()) return r.status();
  return std::move(r->weights);
}

}  // namespace pipecast::runtime::testing
