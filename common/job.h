// Job files: what `pipecast run` trains. A job names a model, a data set, an optimizer and its
// learning-rate schedule, the pipeline shape, the methods to compare, how long to train, how
// often to evaluate, and a seed (docs/jobs.md lists every key). Plain data, checked on parsing:
// consumers do not re-check. Method names and parameters are only parsed; ir::Generate checks
// them. Errors are "file:line:column: message" naming the key, with "did you mean" for typos.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/scenario.h"
#include "common/status.h"

namespace pipecast::ir {

struct JobModel {
  std::string type = "mlp";           // "mlp" or "gpt"
  std::vector<int64_t> hidden_sizes;  // mlp: widths of the hidden layers
  int32_t layers = 2;                 // gpt: blocks
  int32_t hidden = 64;                // gpt: width
  int32_t heads = 4;                  // gpt
  int32_t sequence = 32;              // gpt: tokens per example
};

struct JobData {
  // "fashion-mnist", "fortunes" (characters), "synthetic" (Gaussian clusters) or
  // "synthetic-text" (seeded token sequences).
  std::string dataset = "fashion-mnist";
  int64_t train_examples = 0;  // use only the first N training examples (0 = all)
  int64_t test_examples = 0;   // evaluate on the first N test examples (0 = all)
};

struct JobOptimizer {
  std::string name = "sgd";  // sgd, adam, adamw, rmsprop, lion
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;
  double weight_decay = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

struct JobSchedule {
  std::string type = "constant";   // constant, step, cosine
  std::vector<double> milestones;  // step: in epochs (may be fractional)
  double gamma = 0.1;              // step
  double warmup = 0.01;            // cosine: fraction of training
  double floor = 0.1;              // cosine: final lr as a fraction of the peak
};

// Which Device trains the job (runtime/device.h).
enum class JobDevice : uint8_t { kCpu = 0, kCuda = 1 };
// "cpu", "cuda".
const char* JobDeviceName(JobDevice device);

struct Job {
  std::string name;
  std::string source;
  JobModel model;
  JobData data;
  JobOptimizer optimizer;
  JobSchedule lr_schedule;
  // stages, microbatches per minibatch, microbatch_size, data_parallel (optional, default 1:
  // copies of the pipeline, each with its own stages devices and microbatches per minibatch);
  // minibatches unused.
  PipelineSpec pipeline;
  std::vector<MethodSpec> methods;
  double epochs = 1;        // training length in epochs (fractions allowed)
  int32_t evaluations = 0;  // evaluations over the run (0 = one per epoch, at least one)
  uint64_t seed = 1;
  JobDevice device = JobDevice::kCpu;
  // device: cuda, one process: the GPUs the pipeline's devices are spread over, device k on
  // GPU k mod gpus (0: every GPU the process sees; more than it sees is an error when the run
  // starts). Under a launcher each rank takes the GPU of its local rank instead.
  int32_t gpus = 0;
  // device: cuda: when several devices share a GPU, give each an equal share of its SMs (green
  // contexts), so that one GPU shows the pipeline's bubbles (docs/executor.md).
  bool sm_partition = false;
  // device: cuda: the GEMMs' inputs in bfloat16 (with fp32 accumulation, fp32 master weights
  // and fp32 everywhere else) instead of fp32.
  bool bf16 = false;
};

Result<Job> ParseJob(std::string_view yaml_text, std::string_view filename);
Result<Job> LoadJobFile(const std::string& path);

}  // namespace pipecast::ir
