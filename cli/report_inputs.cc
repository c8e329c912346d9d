#include "cli/report_inputs.h"

#include <algorithm>
#include <string>
#include <vector>

#include "cli/report_documents.h"
#include "cli/report_json.h"
#include "common/input_file.h"
#include "sim/report.h"

namespace pipecast::cli::report {
namespace {

constexpr const char* kWhatWeRead =
    "pipecast report reads the JSON that pipecast sim, pipecast run and pipecast plan write with "
    "--format json";

struct Schema {
  const char* name;
  int version;
  const char* command;  // how to write a file of this schema
  const char* older;    // what older versions lacked, or ""
};

constexpr Schema kSchemas[] = {
    {kSimSchema, kSimSchemaVersion, "pipecast sim SCENARIO --format json -o FILE", ""},
    {kRunSchema, kRunSchemaVersion, "pipecast run JOB --format json -o FILE",
     "; version 1 had no seeds, summary or per-stage means"},
    {kPlanSchema, kPlanSchemaVersion, "pipecast plan SCENARIO --format json -o FILE", ""},
};

const Schema* FindSchema(const std::string& name) {
  // "pipecast-plan" is read as the plan's schema too, in the spelling of the other two.
  const std::string want = name == "pipecast-plan" ? kPlanSchema : name;
  for (const Schema& s : kSchemas)
    if (want == s.name) return &s;
  return nullptr;
}

// The root's "schema" and "schema_version": a schema this build reads, in the version it reads.
Result<const Schema*> CheckSchema(const std::string& file, const Json& doc) {
  if (!doc.is_object()) {
    return InvalidArgument(file + ": expected a JSON object at the top, got " + JsonKind(doc) +
                           ": not a pipecast result; " + kWhatWeRead);
  }
  if (doc.contains("format") && doc["format"] == "pipecast-schedule") {
    return InvalidArgument(file +
                           ": format: a schedule, not results; simulate it first "
                           "(pipecast sim SCENARIO --methods " +
                           file + " --format json -o results.json) and report that");
  }
  if (!doc.contains("schema") || !doc["schema"].is_string()) {
    return InvalidArgument(file + ": schema: missing: not a pipecast result; " + kWhatWeRead);
  }
  const std::string name = doc["schema"].get<std::string>();
  const Schema* schema = FindSchema(name);
  if (schema == nullptr) {
    return InvalidArgument(file + ": schema: '" + name + "' is not one pipecast report reads (" +
                           kSimSchema + ", " + kRunSchema + ", " + kPlanSchema + "); " +
                           kWhatWeRead);
  }
  if (!doc.contains("schema_version") || !doc["schema_version"].is_number_integer()) {
    return InvalidArgument(file +
                           ": schema_version: missing or not an integer; re-create it "
                           "with " +
                           schema->command);
  }
  const int64_t version = doc["schema_version"].get<int64_t>();
  const std::string reads =
      std::string(name) + " version " + std::to_string(schema->version) + schema->older;
  if (version < schema->version) {
    return UnsupportedVersion(file + ": schema_version: " + std::to_string(version) +
                              " is older than this pipecast reads (" + reads +
                              "); re-create it with " + schema->command);
  }
  if (version > schema->version) {
    return UnsupportedVersion(
        file + ": schema_version: " + std::to_string(version) +
        " is newer than this pipecast reads (" + reads +
        "); update pipecast, or re-create the file with this one: " + schema->command);
  }
  return schema;
}

// Where a scenario (or job) name comes from, for the consistency checks' messages.
struct Named {
  std::string file, key, name;
  bool run = false;
};

std::vector<Named> ScenarioNames(const Inputs& in) {
  std::vector<Named> names;
  for (const SimInput& s : in.sims) names.push_back({s.file, "scenario.name", s.scenario_name});
  for (const PlanInput& p : in.plans) names.push_back({p.file, "scenario.name", p.scenario_name});
  for (const RunInput& r : in.runs) names.push_back({r.file, "job.name", r.job_name, true});
  return names;
}

Status CheckScenarios(const Inputs& in) {
  const std::vector<Named> names = ScenarioNames(in);
  for (size_t i = 1; i < names.size(); ++i) {
    const Named& a = names[0];
    const Named& b = names[i];
    if (SameScenario(a.name, b.name)) continue;
    const std::string fix =
        a.run != b.run ? "report a run with the simulation of its job's own profile "
                         "(pipecast run JOB --profile-out p.yaml, then pipecast sim p.yaml "
                         "--format json), or make one report per scenario"
                       : "make one report per scenario";
    return InvalidArgument(b.file + ": " + b.key + ": '" + b.name + "' is another scenario than " +
                           a.file + "'s " + a.key + " '" + a.name +
                           "'; a report shows the results of one scenario: " + fix);
  }
  return Status::Ok();
}

// The pipeline every simulated method and every run must share with the first run.
Status CheckPipelines(const Inputs& in) {
  if (in.runs.empty()) return Status::Ok();
  const RunInput& first = in.runs[0];
  const std::string shape = std::to_string(first.stages) + " stages x " +
                            std::to_string(first.microbatches) + " microbatches of " +
                            std::to_string(first.microbatch_size);
  for (const RunInput& r : in.runs) {
    if (r.stages != first.stages || r.microbatches != first.microbatches ||
        r.microbatch_size != first.microbatch_size) {
      return InvalidArgument(r.file + ": job.stages: the run trained another pipeline than " +
                             first.file + " (" + shape + "); make one report per job");
    }
  }
  for (const SimInput& s : in.sims) {
    for (size_t i = 0; i < s.results.size(); ++i) {
      const SimMethod& m = s.results[i];
      if (m.devices == first.stages && m.microbatches == first.microbatches &&
          m.microbatch_size == first.microbatch_size) {
        continue;
      }
      return InvalidArgument(
          s.file + ": " + JsonPath(JsonPath("results", i), "devices") + ": " + m.label +
          " was simulated on " + std::to_string(m.devices) + " stages x " +
          std::to_string(m.microbatches) + " microbatches of " + std::to_string(m.microbatch_size) +
          ", but " + first.file + " trained " + shape +
          "; simulate the job's pipeline (pipecast run JOB --profile-out p.yaml, then pipecast "
          "sim p.yaml --format json)");
    }
  }
  return Status::Ok();
}

Status CheckDuplicates(const Inputs& in) {
  std::vector<std::pair<std::string, std::string>> seen;  // key, where
  auto add = [&](const std::string& key, const std::string& where) -> Status {
    for (const auto& [k, w] : seen) {
      if (k == key) {
        return InvalidArgument(where + ": " + key + " is also in " + w +
                               "; give each method (and seed) once");
      }
    }
    seen.emplace_back(key, where);
    return Status::Ok();
  };
  for (const SimInput& s : in.sims)
    for (size_t i = 0; i < s.results.size(); ++i)
      PIPECAST_RETURN_IF_ERROR(
          add("simulated " + s.results[i].label, s.file + ": " + JsonPath("results", i)));
  for (const RunInput& r : in.runs)
    for (size_t i = 0; i < r.results.size(); ++i)
      PIPECAST_RETURN_IF_ERROR(
          add(r.results[i].label + " seed " + std::to_string(r.results[i].seed),
              r.file + ": " + JsonPath("results", i)));
  if (in.plans.size() > 1) {
    return InvalidArgument(in.plans[1].file + ": a second plan (the first is " + in.plans[0].file +
                           "); a report shows one plan: make one per plan");
  }
  return Status::Ok();
}

}  // namespace

bool SimMethod::over_memory() const {
  return std::any_of(stages.begin(), stages.end(), [](const SimStage& s) { return s.over_memory; });
}

int64_t SimMethod::peak_memory() const {
  int64_t peak = 0;
  for (const SimStage& s : stages) peak = std::max(peak, s.peak_memory_bytes);
  return peak;
}

int64_t SimMethod::delay_max() const {
  int64_t d = 0;
  for (const SimStage& s : stages) d = std::max(d, s.staleness.delay_max);
  return d;
}

int64_t SimMethod::gap_max() const {
  int64_t g = 0;
  for (const SimStage& s : stages) g = std::max(g, s.staleness.gap_max);
  return g;
}

std::string SimLabel(const std::string& method, const std::map<std::string, std::string>& params) {
  sim::MethodRun run;
  run.method = method;
  run.params = params;
  return sim::MethodLabel(run);
}

bool SameScenario(const std::string& a, const std::string& b) {
  if (a == b) return true;
  const std::string& shorter = a.size() < b.size() ? a : b;
  const std::string& longer = a.size() < b.size() ? b : a;
  return !shorter.empty() && longer.compare(0, shorter.size(), shorter) == 0 &&
         longer[shorter.size()] == '-';
}

Status AddInput(const std::string& file, std::string_view text, Inputs& inputs) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return InvalidArgument(file + ": the file is empty; " + kWhatWeRead);
  }
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return ParseError(file + ": not JSON (" + e.what() + "); " + kWhatWeRead +
                      " (not a table or CSV)");
  }
  Result<const Schema*> schema = CheckSchema(file, doc);
  if (!schema.ok()) return schema.status();
  FieldReader r(file, std::string("re-create it with ") + (*schema)->command);
  const std::string name = (*schema)->name;
  if (name == kSimSchema) {
    inputs.sims.push_back(ReadSimDocument(r, doc));
  } else if (name == kRunSchema) {
    inputs.runs.push_back(ReadRunDocument(r, doc));
  } else {
    inputs.plans.push_back(ReadPlanDocument(r, doc));
  }
  return r.status();
}

Status CheckConsistent(const Inputs& inputs) {
  PIPECAST_RETURN_IF_ERROR(CheckScenarios(inputs));
  PIPECAST_RETURN_IF_ERROR(CheckPipelines(inputs));
  return CheckDuplicates(inputs);
}

Result<Inputs> ReadInputs(const std::vector<std::string>& files) {
  if (files.empty()) {
    return InvalidArgument("no input files; " + std::string(kWhatWeRead) +
                           ", e.g. pipecast sim --format json -o sim.json; pipecast report "
                           "sim.json -o report.html");
  }
  Inputs inputs;
  for (const std::string& file : files) {
    Result<std::string> text = ir::ReadInputFile(file, "input file");
    if (!text.ok()) return text.status();
    PIPECAST_RETURN_IF_ERROR(AddInput(ir::InputName(file), *text, inputs));
  }
  PIPECAST_RETURN_IF_ERROR(CheckConsistent(inputs));
  return inputs;
}

}  // namespace pipecast::cli::report
