// `pipecast schedule`, `pipecast validate` and `pipecast methods`.
#include <iostream>

#include "cli/commands.h"
#include "cli/io.h"
#include "common/format_json.h"
#include "common/format_text.h"
#include "common/format_torch_csv.h"
#include "common/generators.h"
#include "common/input_file.h"
#include "common/limits.h"
#include "common/lower.h"
#include "common/validate.h"

namespace pipecast::cli {

int RunSchedule(const ScheduleOptions& options) {
  ir::GenerateOptions o;
  o.method = options.method;
  o.devices = options.stages;
  o.microbatches = options.microbatches;
  o.minibatches = options.minibatches;
  o.microbatch_size = options.microbatch_size;
  o.data_parallel = options.data_parallel;
  for (const std::string& kv : options.params) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "pipecast schedule: --param '" << kv
                << "' is not key=value (example: --param chunks=2)\n";
      return kExitError;
    }
    if (!o.params.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second) {
      std::cerr << "pipecast schedule: --param '" << kv.substr(0, eq)
                << "' is given twice; give each parameter once\n";
      return kExitError;
    }
  }
  // A printed schedule is a schedule file: it holds at most kMaxCells pairs.
  if (auto size = ir::SizeOf(o); size.ok() && size->cells() > ir::kMaxCells) {
    std::cerr << "pipecast schedule: " << size->stages << " stages x " << size->microbatches
              << " microbatches is " << size->cells() << " stage-microbatch pairs, more than the "
              << ir::kMaxCells << " a schedule file holds; print a smaller schedule (the "
              << "simulator takes larger sizes from a scenario: pipecast sim)\n";
    return kExitError;
  }
  auto program = ir::Generate(o);
  if (!program.ok()) {
    std::cerr << "pipecast schedule: " << program.status().message() << "\n";
    return kExitError;
  }
  const ir::Program p = options.lowered ? ir::InsertCommunication(*program) : *program;
  std::string text;
  if (options.format == "json") {
    text = ir::ProgramToJson(p);
  } else if (options.format == "torch-csv") {
    text = ir::ProgramToTorchCsv(p);
  } else {
    text = ir::ProgramToText(p);
  }
  if (options.output.empty()) {
    std::cout << text;
    return kExitOk;
  }
  if (Status s = WriteFileAtomically(options.output, text); !s.ok()) {
    std::cerr << "pipecast schedule: " << s.message() << "\n";
    return kExitError;
  }
  return kExitOk;
}

int RunValidate(const ValidateOptions& options) {
  auto loaded = LoadSchedule(options.file, options.format, options.minibatches);
  if (!loaded.ok()) {
    std::cerr << loaded.status().message() << "\n";
    return kExitError;
  }
  const ir::Program& p = loaded->program;
  std::cout << ir::InputName(options.file) << ": valid " << p.method
            << " schedule: " << p.num_devices << " devices, " << p.num_stages << " stages, "
            << p.total_microbatches() << " microbatches, " << p.num_actions() << " actions ("
            << ir::InsertCommunication(p).num_actions() << " with sends and receives)\n";
  return kExitOk;
}

int RunMethods() {
  for (const ir::MethodInfo& m : ir::Methods()) {
    std::cout << m.name << (m.asynchronous ? "  [asynchronous]" : "  [synchronous]") << "\n    "
              << m.summary << "\n";
    for (const ir::ParamInfo& p : m.params) {
      std::cout << "    " << p.name
                << " (default: " << (p.default_value.empty() ? "see help" : p.default_value) << ")";
      switch (p.type) {
        case ir::ParamType::kChoice:
          std::cout << " one of:";
          for (const auto& c : p.choices) std::cout << " " << c;
          break;
        case ir::ParamType::kPositiveInt:
          std::cout << " a positive integer";
          break;
        case ir::ParamType::kNonNegativeInt:
          std::cout << " a non-negative integer";
          break;
        case ir::ParamType::kFraction:
          std::cout << " a number in [0, 1)";
          break;
        case ir::ParamType::kPositiveIntOrAuto:
          std::cout << " a positive integer or auto";
          break;
      }
      std::cout << "\n        " << p.help << "\n";
    }
  }
  return kExitOk;
}

}  // namespace pipecast::cli
