// Convergence profiles: how fast each method trains a job's model, measured by `pipecast run
// --convergence-out` and read by `pipecast plan` (a scenario's `plan.convergence`) to predict
// time to a target loss. A versioned JSON document (docs/outputs.md): per method and seed, the
// losses and accuracy at each evaluation against optimizer steps and samples, with the job the
// numbers come from (model, data set, optimizer, pipeline), so a plan can refuse a profile of
// another model or data set.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace pipecast::ir {

inline constexpr const char* kConvergenceSchemaName = "pipecast.convergence";
inline constexpr int kConvergenceSchemaVersion = 1;

struct ConvergencePoint {
  double steps = 0;         // optimizer steps of stage 0 so far
  int64_t samples = 0;      // training samples so far
  int64_t minibatches = 0;  // minibatches so far
  double epoch = 0;
  double train_loss = 0;
  double test_loss = 0;
  double test_accuracy = 0;
  friend bool operator==(const ConvergencePoint&, const ConvergencePoint&) = default;
};

struct ConvergenceSeed {
  uint64_t seed = 1;
  std::vector<ConvergencePoint> points;  // in training order
  friend bool operator==(const ConvergenceSeed&, const ConvergenceSeed&) = default;
};

struct ConvergenceMethod {
  std::string label;  // as `pipecast run` prints it
  std::string method;
  std::map<std::string, std::string> params;  // as the job gave them
  bool asynchronous = false;
  double steps_per_minibatch = 1;  // optimizer steps of stage 0 per minibatch of the job
  std::vector<ConvergenceSeed> seeds;
  friend bool operator==(const ConvergenceMethod&, const ConvergenceMethod&) = default;
};

struct ConvergenceProfile {
  std::string job_name;
  std::string job_source;
  std::string model_type;  // "mlp", "gpt"
  std::string model;       // the job's model in words ("gpt: 2 layers, hidden 64, ...")
  std::string dataset;
  std::string optimizer;
  int32_t stages = 1;
  int32_t microbatches = 1;
  int32_t microbatch_size = 1;
  std::vector<ConvergenceMethod> methods;
  std::string source;  // the file it was read from (not written)
  int64_t global_batch() const { return static_cast<int64_t>(microbatches) * microbatch_size; }
  bool operator==(const ConvergenceProfile& o) const;
};

// The JSON document, pretty-printed, ending with a newline.
std::string FormatConvergenceJson(const ConvergenceProfile& profile);

// Errors name the file and the key: not JSON, another document (a `pipecast run` report),
// another schema_version (with the command that writes the current one), a missing or mistyped
// field.
Result<ConvergenceProfile> ParseConvergenceJson(std::string_view text, std::string_view filename);
Result<ConvergenceProfile> LoadConvergenceFile(const std::string& path);

}  // namespace pipecast::ir
