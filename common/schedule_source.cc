#include "common/schedule_source.h"

#include <string>
#include <vector>

#include "common/lower.h"

namespace pipecast::ir {
namespace {

std::string Position(const std::string& file, SourcePosition p) {
  return file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
}

bool EndsToken(char c, ScheduleSource::Format format) {
  if (format == ScheduleSource::Format::kTorchCsv) return c == ',' || c == '\n' || c == '\r';
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

std::string ScheduleSource::Where(int32_t device, int32_t index) const {
  if (format == Format::kJson) {
    return file + ": programs[" + std::to_string(device) + "][" + std::to_string(index) + "]";
  }
  if (device < 0 || static_cast<size_t>(device) >= actions.size() || index < 0 ||
      static_cast<size_t>(index) >= actions[device].size() || actions[device][index].line == 0) {
    return file;
  }
  return Position(file, actions[device][index]);
}

std::string ScheduleSource::WhereDevice(int32_t device) const {
  if (device < 0 || static_cast<size_t>(device) >= devices.size() || devices[device].line == 0) {
    return format == Format::kJson ? file + ": programs[" + std::to_string(device) + "]" : file;
  }
  return Position(file, devices[device]);
}

std::string ScheduleSource::WhereKey(const std::string& key) const {
  const auto it = keys.find(key);
  if (it == keys.end() || it->second.line == 0) return file + ": " + key;
  return Position(file, it->second);
}

std::string ScheduleSource::Token(const Program& program, int32_t device, int32_t index) const {
  const Action& a = program.devices[device][index];
  if (static_cast<size_t>(device) < actions.size() &&
      static_cast<size_t>(index) < actions[device].size()) {
    const SourcePosition p = actions[device][index];
    if (p.line > 0 && static_cast<size_t>(p.line) <= line_starts.size()) {
      size_t begin = line_starts[p.line - 1] + static_cast<size_t>(p.column - 1);
      size_t end = begin;
      while (end < text.size() && !EndsToken(text[end], format)) ++end;
      while (begin < end && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
      while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
      if (end > begin) return text.substr(begin, end - begin);
    }
  }
  return ActionToken(a, true);
}

std::string ScheduleSource::Describe(const Program& program, int32_t device, int32_t index) const {
  std::string out = "'";  // built in steps: GCC 12 warns falsely on "'" + std::string&&
  out += Token(program, device, index);
  out += "' (";
  // The line of the message names the file already: "7:14" or "programs[1][2]".
  const std::string where = Where(device, index);
  const size_t skip = where.rfind(file, 0) == 0 ? file.size() : 0;
  out += where.substr(where.compare(skip, 2, ": ") == 0 ? skip + 2 : skip + (skip > 0 ? 1 : 0));
  return out + ")";
}

Status ValidateInSource(const Program& program, const ScheduleSource& source) {
  ValidateOptions options;
  options.describe = [&](int32_t d, int32_t i) { return source.Describe(program, d, i); };
  options.implicit_link_order = !HasCommunication(program);
  const std::vector<Diagnostic> found = ValidateProgram(program, options);
  std::vector<Diagnostic> lines;
  lines.reserve(found.size());
  for (const Diagnostic& d : found) {
    std::string line;
    if (d.device >= 0 && d.action_index >= 0) {
      line = source.Where(d.device, d.action_index) + ": token '" +
             source.Token(program, d.device, d.action_index) + "': " + d.message;
    } else if (d.device >= 0) {
      line =
          source.WhereDevice(d.device) + ": device " + std::to_string(d.device) + ": " + d.message;
    } else {
      line = source.file + ": " + d.message;
    }
    lines.push_back({-1, -1, "", std::move(line)});
  }
  return ValidationStatus(lines, source.file);
}

}  // namespace pipecast::ir
