#include "common/convergence.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/input_file.h"

namespace pipecast::ir {
namespace {

using Json = nlohmann::ordered_json;

Json PointJson(const ConvergencePoint& p) {
  return {{"steps", p.steps},
          {"samples", p.samples},
          {"minibatches", p.minibatches},
          {"epoch", p.epoch},
          {"train_loss", p.train_loss},
          {"test_loss", p.test_loss},
          {"test_accuracy", p.test_accuracy}};
}

Json MethodJson(const ConvergenceMethod& m) {
  Json j = {{"label", m.label},
            {"method", m.method},
            {"params", m.params},
            {"asynchronous", m.asynchronous},
            {"steps_per_minibatch", m.steps_per_minibatch},
            {"seeds", Json::array()}};
  for (const ConvergenceSeed& s : m.seeds) {
    Json points = Json::array();
    for (const ConvergencePoint& p : s.points) points.push_back(PointJson(p));
    j["seeds"].push_back({{"seed", s.seed}, {"points", points}});
  }
  return j;
}

// Reads typed fields of one object; the first error names the file and the field's path.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  template <typename T>
  Status Get(const Json& obj, const std::string& path, const char* key, T* out) const {
    const auto it = obj.find(key);
    if (it == obj.end()) return Fail(path + key, "is missing");
    try {
      *out = it->template get<T>();
    } catch (const nlohmann::json::exception&) {
      return Fail(path + key, "has the wrong type (" + std::string(it->type_name()) + ")");
    }
    return Status::Ok();
  }
  Status Fail(const std::string& key, const std::string& what) const {
    return InvalidArgument(
        fmt::format("{}: {} {}; write the profile again with pipecast run "
                    "JOB --convergence-out FILE",
                    file_, key, what));
  }

 private:
  std::string file_;
};

Status ReadPoint(const Reader& r, const Json& j, const std::string& at, ConvergencePoint* p) {
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "steps", &p->steps));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "samples", &p->samples));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "minibatches", &p->minibatches));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "epoch", &p->epoch));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "train_loss", &p->train_loss));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "test_loss", &p->test_loss));
  return r.Get(j, at, "test_accuracy", &p->test_accuracy);
}

Status ReadMethod(const Reader& r, const Json& j, const std::string& at, ConvergenceMethod* m) {
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "label", &m->label));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "method", &m->method));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "params", &m->params));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "asynchronous", &m->asynchronous));
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "steps_per_minibatch", &m->steps_per_minibatch));
  Json seeds;
  PIPECAST_RETURN_IF_ERROR(r.Get(j, at, "seeds", &seeds));
  if (!seeds.is_array() || seeds.empty()) return r.Fail(at + "seeds", "is empty");
  for (size_t s = 0; s < seeds.size(); ++s) {
    const std::string sat = fmt::format("{}seeds[{}].", at, s);
    ConvergenceSeed seed;
    PIPECAST_RETURN_IF_ERROR(r.Get(seeds[s], sat, "seed", &seed.seed));
    Json points;
    PIPECAST_RETURN_IF_ERROR(r.Get(seeds[s], sat, "points", &points));
    if (!points.is_array() || points.empty()) return r.Fail(sat + "points", "is empty");
    for (size_t p = 0; p < points.size(); ++p) {
      ConvergencePoint point;
      PIPECAST_RETURN_IF_ERROR(
          ReadPoint(r, points[p], fmt::format("{}points[{}].", sat, p), &point));
      seed.points.push_back(point);
    }
    m->seeds.push_back(std::move(seed));
  }
  if (!(m->steps_per_minibatch > 0)) return r.Fail(at + "steps_per_minibatch", "is not positive");
  return Status::Ok();
}

Status ReadJob(const Reader& r, const Json& job, ConvergenceProfile* p) {
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "name", &p->job_name));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "source", &p->job_source));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "model_type", &p->model_type));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "model", &p->model));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "dataset", &p->dataset));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "optimizer", &p->optimizer));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "stages", &p->stages));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "microbatches", &p->microbatches));
  PIPECAST_RETURN_IF_ERROR(r.Get(job, "job.", "microbatch_size", &p->microbatch_size));
  if (p->microbatches < 1 || p->microbatch_size < 1) {
    return r.Fail("job.microbatches", "and job.microbatch_size must be positive");
  }
  return Status::Ok();
}

// The document's identity: the schema and its version, with the fix for the usual mix-ups.
Status CheckSchema(const std::string& file, const Json& j) {
  const std::string schema = j.value("schema", std::string());
  const std::string fix =
      "; write a convergence profile with pipecast run JOB --convergence-out FILE";
  if (schema == "pipecast-run" || schema == "pipecast-sim" || schema == "pipecast.plan") {
    return InvalidArgument(
        fmt::format("{}: this is a {} report, not a convergence profile{}", file, schema, fix));
  }
  if (schema != kConvergenceSchemaName) {
    return InvalidArgument(fmt::format("{}: schema is '{}', expected '{}'{}", file, schema,
                                       kConvergenceSchemaName, fix));
  }
  const auto version = j.find("schema_version");
  if (version == j.end() || !version->is_number_integer()) {
    return InvalidArgument(fmt::format("{}: schema_version is missing{}", file, fix));
  }
  if (*version != kConvergenceSchemaVersion) {
    return InvalidArgument(fmt::format(
        "{}: schema_version is {}, but this pipecast reads version {} of {}; measure it again "
        "with this version (pipecast run JOB --convergence-out FILE)",
        file, version->get<int64_t>(), kConvergenceSchemaVersion, kConvergenceSchemaName));
  }
  return Status::Ok();
}

}  // namespace

bool ConvergenceProfile::operator==(const ConvergenceProfile& o) const {
  return job_name == o.job_name && job_source == o.job_source && model_type == o.model_type &&
         model == o.model && dataset == o.dataset && optimizer == o.optimizer &&
         stages == o.stages && microbatches == o.microbatches &&
         microbatch_size == o.microbatch_size && methods == o.methods;
}

std::string FormatConvergenceJson(const ConvergenceProfile& p) {
  Json j;
  j["schema"] = kConvergenceSchemaName;
  j["schema_version"] = kConvergenceSchemaVersion;
  j["job"] = {{"name", p.job_name},
              {"source", p.job_source},
              {"model_type", p.model_type},
              {"model", p.model},
              {"dataset", p.dataset},
              {"optimizer", p.optimizer},
              {"stages", p.stages},
              {"microbatches", p.microbatches},
              {"microbatch_size", p.microbatch_size}};
  j["loss"] = "test_loss";
  j["methods"] = Json::array();
  for (const ConvergenceMethod& m : p.methods) j["methods"].push_back(MethodJson(m));
  return j.dump(2) + "\n";
}

Result<ConvergenceProfile> ParseConvergenceJson(std::string_view text, std::string_view filename) {
  const std::string file(filename);
  const Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return InvalidArgument(
        fmt::format("{}: not a JSON object; a convergence profile is the JSON "
                    "that pipecast run JOB --convergence-out FILE writes",
                    file));
  }
  PIPECAST_RETURN_IF_ERROR(CheckSchema(file, j));
  const Reader r(file);
  ConvergenceProfile p;
  p.source = file;
  Json job;
  PIPECAST_RETURN_IF_ERROR(r.Get(j, "", "job", &job));
  PIPECAST_RETURN_IF_ERROR(ReadJob(r, job, &p));
  Json methods;
  PIPECAST_RETURN_IF_ERROR(r.Get(j, "", "methods", &methods));
  if (!methods.is_array() || methods.empty()) return r.Fail("methods", "is empty");
  for (size_t i = 0; i < methods.size(); ++i) {
    ConvergenceMethod m;
    PIPECAST_RETURN_IF_ERROR(ReadMethod(r, methods[i], fmt::format("methods[{}].", i), &m));
    p.methods.push_back(std::move(m));
  }
  return p;
}

Result<ConvergenceProfile> LoadConvergenceFile(const std::string& path) {
  Result<std::string> text = ReadInputFile(path, "convergence profile");
  if (!text.ok()) return text.status();
  return ParseConvergenceJson(*text, InputName(path));
}

}  // namespace pipecast::ir
