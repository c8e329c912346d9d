#include "common/job.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/input_file.h"
#include "common/limits.h"
#include "common/yaml_document.h"

namespace pipecast::ir {
namespace {

using YAML::Node;

// Parsing context: the file name for messages, and the first error.
class JobReader {
 public:
  explicit JobReader(std::string_view filename) : file_(filename) {}

  std::string At(const Node& n) const { return internal::WhereIs(file_, n.Mark()) + ": "; }
  // Every key of `map` must be one of `known`; else an error with a suggestion.
  Status CheckKeys(const Node& map, const std::string& where,
                   const std::vector<std::string_view>& known) const {
    if (!map.IsMap()) return InvalidArgument(At(map) + where + " must be a map");
    std::vector<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return InvalidArgument(At(kv.first) + "duplicate key '" +
                               (where.empty() ? "" : where + ".") + key + "'");
      }
      seen.push_back(key);
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      std::string msg =
          At(kv.first) + "unknown key '" + (where.empty() ? "" : where + ".") + key + "'";
      const std::string guess = ClosestMatch(key, known);
      if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
      return InvalidArgument(msg);
    }
    return Status::Ok();
  }
  template <typename T>
  Status Get(const Node& parent, const char* key, const std::string& path, T* out,
             double min = -1e300, double max = 1e300) const {
    const Node n = parent[key];
    if (!n) return Status::Ok();
    try {
      *out = n.as<T>();
    } catch (const YAML::Exception&) {
      return InvalidArgument(At(n) + path + ": expected " + TypeName<T>() + ", got '" +
                             (n.IsScalar() ? n.Scalar() : std::string("a list or map")) + "'");
    }
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const double v = static_cast<double>(*out);
      if (!std::isfinite(v) || v < min || v > max) {
        return InvalidArgument(At(n) + path + " must be between " + Num(min) + " and " + Num(max) +
                               ", got " + n.Scalar());
      }
    }
    return Status::Ok();
  }

 private:
  template <typename T>
  static std::string TypeName() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    return "a string";
  }
  static std::string Num(double x) {
    std::ostringstream s;
    s << x;
    return s.str();
  }
  std::string_view file_;
};

}  // namespace

Result<Job> ParseJob(std::string_view text, std::string_view filename) {
  JobReader r(filename);
  Result<Node> loaded = internal::LoadOneDocument(text, filename, "a job file");
  if (!loaded.ok()) return loaded.status();
  const Node root = *loaded;
  Job job;
  job.source = std::string(filename);
  job.name = std::filesystem::path(std::string(filename)).stem().string();
  try {
    if (!root.IsMap()) return InvalidArgument(std::string(filename) + ": a job file is a map");
    PIPECAST_RETURN_IF_ERROR(r.CheckKeys(
        root, "",
        {"name", "description", "model", "data", "optimizer", "lr_schedule", "pipeline", "methods",
         "epochs", "evaluations", "seed", "device", "gpus", "sm_partition", "precision"}));
    PIPECAST_RETURN_IF_ERROR(r.Get(root, "name", "name", &job.name));
    for (const char* required : {"model", "data", "optimizer", "pipeline", "methods"}) {
      if (!root[required])
        return InvalidArgument(std::string(filename) + ": '" + required + "' is required");
    }
    const Node model = root["model"];
    PIPECAST_RETURN_IF_ERROR(r.CheckKeys(
        model, "model", {"type", "hidden_sizes", "layers", "hidden", "heads", "sequence"}));
    PIPECAST_RETURN_IF_ERROR(r.Get(model, "type", "model.type", &job.model.type));
    if (job.model.type != "mlp" && job.model.type != "gpt")
      return InvalidArgument(r.At(model["type"]) + "model.type must be mlp or gpt, got '" +
                             job.model.type + "'");
    PIPECAST_RETURN_IF_ERROR(
        r.Get(model, "hidden_sizes", "model.hidden_sizes", &job.model.hidden_sizes));
    for (int64_t h : job.model.hidden_sizes)
      if (h < 1 || h > (1 << 20))
        return InvalidArgument(r.At(model["hidden_sizes"]) +
                               "model.hidden_sizes: every width must be in [1, 1048576]");
    PIPECAST_RETURN_IF_ERROR(r.Get(model, "layers", "model.layers", &job.model.layers, 0, 4096));
    PIPECAST_RETURN_IF_ERROR(r.Get(model, "hidden", "model.hidden", &job.model.hidden, 1, 1 << 16));
    PIPECAST_RETURN_IF_ERROR(r.Get(model, "heads", "model.heads", &job.model.heads, 1, 1 << 12));
    PIPECAST_RETURN_IF_ERROR(
        r.Get(model, "sequence", "model.sequence", &job.model.sequence, 1, 1 << 16));

    const Node data = root["data"];
    PIPECAST_RETURN_IF_ERROR(
        r.CheckKeys(data, "data", {"dataset", "train_examples", "test_examples"}));
    PIPECAST_RETURN_IF_ERROR(r.Get(data, "dataset", "data.dataset", &job.data.dataset));
    const std::vector<std::string_view> datasets = {"fashion-mnist", "fortunes", "synthetic",
                                                    "synthetic-text"};
    if (std::find(datasets.begin(), datasets.end(), job.data.dataset) == datasets.end()) {
      std::string msg = r.At(data["dataset"]) + "data.dataset '" + job.data.dataset +
                        "' is not one of fashion-mnist, fortunes, synthetic, synthetic-text";
      const std::string guess = ClosestMatch(job.data.dataset, datasets);
      if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
      return InvalidArgument(msg);
    }
    PIPECAST_RETURN_IF_ERROR(
        r.Get(data, "train_examples", "data.train_examples", &job.data.train_examples, 0, 1e9));
    PIPECAST_RETURN_IF_ERROR(
        r.Get(data, "test_examples", "data.test_examples", &job.data.test_examples, 0, 1e9));

    const Node opt = root["optimizer"];
    PIPECAST_RETURN_IF_ERROR(r.CheckKeys(opt, "optimizer",
                                         {"name", "lr", "momentum", "dampening", "nesterov",
                                          "weight_decay", "beta1", "beta2", "eps"}));
    JobOptimizer& o = job.optimizer;
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "name", "optimizer.name", &o.name));
    const std::vector<std::string_view> optimizers = {"sgd", "adam", "adamw", "rmsprop", "lion"};
    if (std::find(optimizers.begin(), optimizers.end(), o.name) == optimizers.end()) {
      std::string msg = r.At(opt["name"]) + "optimizer.name '" + o.name +
                        "' is not one of sgd, adam, adamw, rmsprop, lion";
      const std::string guess = ClosestMatch(o.name, optimizers);
      if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
      return InvalidArgument(msg);
    }
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "lr", "optimizer.lr", &o.lr, 0, 1e3));
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "momentum", "optimizer.momentum", &o.momentum, 0, 1));
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "dampening", "optimizer.dampening", &o.dampening, 0, 1));
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "nesterov", "optimizer.nesterov", &o.nesterov));
    PIPECAST_RETURN_IF_ERROR(
        r.Get(opt, "weight_decay", "optimizer.weight_decay", &o.weight_decay, 0, 1e3));
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "beta1", "optimizer.beta1", &o.beta1, 0, 0.999999));
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "beta2", "optimizer.beta2", &o.beta2, 0, 0.999999));
    PIPECAST_RETURN_IF_ERROR(r.Get(opt, "eps", "optimizer.eps", &o.eps, 0, 1));

    if (const Node s = root["lr_schedule"]) {
      PIPECAST_RETURN_IF_ERROR(
          r.CheckKeys(s, "lr_schedule", {"type", "milestones", "gamma", "warmup", "floor"}));
      JobSchedule& ls = job.lr_schedule;
      PIPECAST_RETURN_IF_ERROR(r.Get(s, "type", "lr_schedule.type", &ls.type));
      if (ls.type != "constant" && ls.type != "step" && ls.type != "cosine")
        return InvalidArgument(r.At(s["type"]) + "lr_schedule.type must be constant, step or " +
                               "cosine, got '" + ls.type + "'");
      PIPECAST_RETURN_IF_ERROR(r.Get(s, "milestones", "lr_schedule.milestones", &ls.milestones));
      PIPECAST_RETURN_IF_ERROR(r.Get(s, "gamma", "lr_schedule.gamma", &ls.gamma, 0, 1e3));
      PIPECAST_RETURN_IF_ERROR(r.Get(s, "warmup", "lr_schedule.warmup", &ls.warmup, 0, 0.99));
      PIPECAST_RETURN_IF_ERROR(r.Get(s, "floor", "lr_schedule.floor", &ls.floor, 0, 1));
    }

    const Node pipe = root["pipeline"];
    PIPECAST_RETURN_IF_ERROR(r.CheckKeys(
        pipe, "pipeline", {"stages", "microbatches", "microbatch_size", "data_parallel"}));
    for (const char* key : {"stages", "microbatches", "microbatch_size"})
      if (!pipe[key]) return InvalidArgument(r.At(pipe) + "pipeline." + key + " is required");
    // The limits every parser shares (common/limits.h).
    PIPECAST_RETURN_IF_ERROR(
        r.Get(pipe, "stages", "pipeline.stages", &job.pipeline.stages, 1, kMaxCount));
    PIPECAST_RETURN_IF_ERROR(r.Get(pipe, "microbatches", "pipeline.microbatches",
                                   &job.pipeline.microbatches, 1, kMaxCount));
    PIPECAST_RETURN_IF_ERROR(r.Get(pipe, "microbatch_size", "pipeline.microbatch_size",
                                   &job.pipeline.microbatch_size, 1, kMaxMicrobatchSize));
    // Optional: copies of the pipeline (common/replicate.h), 1 when absent.
    PIPECAST_RETURN_IF_ERROR(r.Get(pipe, "data_parallel", "pipeline.data_parallel",
                                   &job.pipeline.data_parallel, 1, kMaxCount));

    const Node methods = root["methods"];
    if (!methods.IsSequence() || methods.size() == 0)
      return InvalidArgument(r.At(methods) + "methods must be a non-empty list");
    for (const Node& m : methods) {
      MethodSpec spec;
      spec.line = m.Mark().line + 1;
      spec.column = m.Mark().column + 1;
      if (m.IsScalar()) {
        spec.name = m.Scalar();
      } else if (m.IsMap()) {
        for (const auto& kv : m) {
          const std::string key = kv.first.as<std::string>();
          if (key != "name" && spec.params.count(key) != 0)
            return InvalidArgument(r.At(kv.first) + "methods: duplicate parameter '" + key + "'");
          if (!kv.second.IsScalar())
            return InvalidArgument(r.At(kv.second) + "methods: '" + key + "' must be a value");
          if (key == "name") {
            spec.name = kv.second.Scalar();
          } else {
            spec.params[key] = kv.second.Scalar();
          }
        }
        if (spec.name.empty())
          return InvalidArgument(r.At(m) + "a method entry needs a name (e.g. {name: paci})");
      } else {
        return InvalidArgument(r.At(m) + "a method is a name or a map with a name");
      }
      job.methods.push_back(spec);
    }
    PIPECAST_RETURN_IF_ERROR(r.Get(root, "epochs", "epochs", &job.epochs, 1e-6, 1e4));
    PIPECAST_RETURN_IF_ERROR(
        r.Get(root, "evaluations", "evaluations", &job.evaluations, 0, 100000));
    PIPECAST_RETURN_IF_ERROR(r.Get(root, "seed", "seed", &job.seed));
    if (const Node dev = root["device"]) {
      std::string name;
      PIPECAST_RETURN_IF_ERROR(r.Get(root, "device", "device", &name));
      if (name == "cpu") {
        job.device = JobDevice::kCpu;
      } else if (name == "cuda") {
        job.device = JobDevice::kCuda;
      } else {
        return InvalidArgument(r.At(dev) + "device must be cpu or cuda, got '" + name + "'");
      }
    }
    PIPECAST_RETURN_IF_ERROR(r.Get(root, "gpus", "gpus", &job.gpus, 0, 1 << 16));
    PIPECAST_RETURN_IF_ERROR(r.Get(root, "sm_partition", "sm_partition", &job.sm_partition));
    if (const Node prec = root["precision"]) {
      std::string name;
      PIPECAST_RETURN_IF_ERROR(r.Get(root, "precision", "precision", &name));
      if (name != "fp32" && name != "bf16")
        return InvalidArgument(r.At(prec) + "precision must be fp32 or bf16, got '" + name + "'");
      job.bf16 = name == "bf16";
    }
    if ((root["gpus"] || root["sm_partition"] || job.bf16) && job.device != JobDevice::kCuda) {
      const Node at = root["gpus"]           ? root["gpus"]
                      : root["sm_partition"] ? root["sm_partition"]
                                             : root["precision"];
      return InvalidArgument(r.At(at) +
                             "gpus, sm_partition and precision: bf16 apply to device: cuda; add "
                             "it or remove them");
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string(filename) + ":" + std::to_string(e.mark.line + 1) + ": " +
                           e.msg);
  }
  return job;
}

const char* JobDeviceName(JobDevice device) { return device == JobDevice::kCuda ? "cuda" : "cpu"; }

Result<Job> LoadJobFile(const std::string& path) {
  Result<std::string> text = ReadInputFile(path, "job file");
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return NotFound(path + ": no such job file");
    return text.status();
  }
  return ParseJob(*text, InputName(path));
}

}  // namespace pipecast::ir
