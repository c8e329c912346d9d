#include "common/job_writer.h"

#include <yaml-cpp/yaml.h>

#include <exception>

#include "common/job.h"
#include "common/scenario_writer.h"
#include "common/yaml_document.h"

namespace pipecast::ir {

Result<std::string> ConfiguredJobYaml(std::string_view job_text, std::string_view filename,
                                      const PlanConfig& config, const std::string& comment) {
  if (Result<Job> job = ParseJob(job_text, filename); !job.ok()) return job.status();
  std::string text;
  try {
    Result<YAML::Node> root = internal::LoadOneDocument(job_text, filename, "a job file");
    if (!root.ok()) return root.status();
    YAML::Node pipeline = (*root)["pipeline"];
    pipeline["stages"] = config.stages;
    pipeline["microbatches"] = config.microbatches;
    pipeline["microbatch_size"] = config.microbatch_size;
    YAML::Node method;
    method["name"] = config.method;
    for (const auto& [k, v] : config.params) method[k] = v;
    YAML::Node methods(YAML::NodeType::Sequence);
    methods.push_back(method);
    (*root)["methods"] = methods;
    YAML::Emitter out;
    out << *root;
    text = YamlComment(comment) + out.c_str() + "\n";
  } catch (const std::exception& e) {
    return ParseError(std::string(filename) + ": " + e.what());
  }
  if (Result<Job> back = ParseJob(text, filename); !back.ok()) return back.status();
  return text;
}

}  // namespace pipecast::ir
