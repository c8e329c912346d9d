#include "cli/run_convergence.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/generators.h"

namespace pipecast::cli {
namespace {

std::string ModelInWords(const ir::JobModel& m) {
  if (m.type == "gpt") {
    return fmt::format("gpt: {} layers, hidden {}, {} heads, sequence {}", m.layers, m.hidden,
                       m.heads, m.sequence);
  }
  return fmt::format("mlp: hidden sizes [{}]", fmt::join(m.hidden_sizes, ", "));
}

// Optimizer steps of device 0 per minibatch over the whole run (the same on every device for
// every method pipecast generates).
double StepsPerMinibatch(const runtime::MethodTraining& t) {
  if (t.versions.empty() || t.evaluations.empty() || t.evaluations.back().minibatches == 0) {
    return 1;
  }
  return static_cast<double>(t.versions[0].steps) /
         static_cast<double>(t.evaluations.back().minibatches);
}

}  // namespace

ir::ConvergenceProfile ConvergenceProfileOf(const ir::Job& job,
                                            const std::vector<MethodRuns>& results) {
  ir::ConvergenceProfile p;
  p.job_name = job.name;
  p.job_source = job.source;
  p.model_type = job.model.type;
  p.model = ModelInWords(job.model);
  p.dataset = job.data.dataset;
  p.optimizer = job.optimizer.name;
  p.stages = job.pipeline.stages;
  p.microbatches = job.pipeline.microbatches;
  p.microbatch_size = job.pipeline.microbatch_size;
  for (const MethodRuns& runs : results) {
    ir::ConvergenceMethod m;
    m.label = Label(runs[0]);
    m.method = runs[0].method;
    m.params = runs[0].params;
    const ir::MethodInfo* info = ir::FindMethod(m.method);
    m.asynchronous = info != nullptr && info->asynchronous;
    m.steps_per_minibatch = StepsPerMinibatch(runs[0]);
    for (const runtime::MethodTraining& t : runs) {
      ir::ConvergenceSeed seed;
      seed.seed = t.seed;
      for (const runtime::Evaluation& e : t.evaluations) {
        seed.points.push_back({static_cast<double>(e.minibatches) * m.steps_per_minibatch,
                               e.minibatches * p.global_batch(), e.minibatches, e.epoch,
                               e.train_loss, e.test_loss, e.test_accuracy});
      }
      m.seeds.push_back(std::move(seed));
    }
    p.methods.push_back(std::move(m));
  }
  return p;
}

}  // namespace pipecast::cli
