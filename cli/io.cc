#include "cli/io.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/format_json.h"
#include "common/format_text.h"
#include "common/format_torch_csv.h"
#include "common/input_file.h"
#include "common/lower.h"
#include "common/schedule_source.h"
#include "common/validate.h"

namespace pipecast::cli {

Result<std::string> ReadFile(const std::string& path) {
  return ir::ReadInputFile(path, "schedule file");
}

Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return IoError(path + ": cannot be opened for writing (check the directory exists)");
    out << contents;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return IoError(path + ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return IoError(path + ": cannot replace the file: " + ec.message());
  }
  return Status::Ok();
}

Status MakeDirectories(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return IoError(path + ": cannot create the directory: " + ec.message());
  return Status::Ok();
}

Result<LoadedSchedule> LoadSchedule(const std::string& path, const std::string& format,
                                    int32_t minibatches) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::string f = format;
  if (f == "auto") {
    const std::filesystem::path p(path);
    const size_t first = text->find_first_not_of(" \t\r\n");
    if (p.extension() == ".json" || (first != std::string::npos && (*text)[first] == '{')) {
      f = "json";
    } else if (p.extension() == ".csv") {
      f = "torch-csv";
    } else {
      f = "text";
    }
  }
  LoadedSchedule loaded;
  const std::string name = ir::InputName(path);
  Result<ir::Program> program =
      f == "json"        ? ir::ParseProgramJson(*text, name, &loaded.source)
      : f == "torch-csv" ? ir::ParseTorchCsv(*text, name, minibatches, &loaded.source)
      : f == "text"      ? ir::ParseProgramText(*text, name, &loaded.source)
                         : Result<ir::Program>(InvalidArgument("unknown schedule format '" + f +
                                                               "'; use auto, text, json or "
                                                                    "torch-csv"));
  if (!program.ok()) return program.status();
  PIPECAST_RETURN_IF_ERROR(ir::ValidateInSource(*program, loaded.source));
  loaded.program = std::move(*program);
  return loaded;
}

std::string FileSafe(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '=';
    out += ok ? c : '_';
  }
  return out.empty() ? "run" : out;
}

std::string LabelFileName(const std::string& label) {
  std::string out;
  for (char c : label) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (ok) {
      out += c;
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "run" : out;
}
}  // namespace pipecast::cli
