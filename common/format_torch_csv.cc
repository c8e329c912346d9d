#include "common/format_torch_csv.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

#include "common/format_text.h"
#include "common/schedule_source.h"
#include "common/validate.h"

namespace pipecast::ir {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsTypeChar(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// A decimal number below kMaxCount, or nullopt.
std::optional<int32_t> ParseIndex(std::string_view s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), IsDigit)) return std::nullopt;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value >= kMaxCount) return std::nullopt;
  return static_cast<int32_t>(value);
}

// torch's _ComputationType values that are not compute actions.
constexpr std::string_view kTorchOtherTypes[] = {
    "UNSHARD", "RESHARD", "SEND_F", "RECV_F", "SEND_B", "RECV_B", "REDUCE_GRAD", "OVERLAP_F_B"};

std::string_view TorchType(ActionKind kind) {
  switch (kind) {
    case ActionKind::kForward:
      return "F";
    case ActionKind::kBackward:
      return "B";
    case ActionKind::kBackwardInput:
      return "I";
    case ActionKind::kWeightGrad:
      return "W";
    default:
      return "";
  }
}

// Parses one non-empty cell "<stage><type><microbatch>" into a compute action.
Result<Action> ParseCell(std::string_view cell) {
  size_t pos = 0;
  auto take = [&](bool (*accept)(char)) {
    const size_t start = pos;
    while (pos < cell.size() && accept(cell[pos])) ++pos;
    return cell.substr(start, pos - start);
  };
  if (cell.front() == '(') {
    return ParseError("an OVERLAP_F_B group; only compute_only schedules are supported");
  }
  const std::string_view stage_text = take(IsDigit);
  const std::string_view type = take(IsTypeChar);
  const std::string_view microbatch_text = take(IsDigit);
  if (stage_text.empty() || type.empty()) {
    return ParseError("expected <stage><type><microbatch>, e.g. '0F1'");
  }
  Action a;
  if (type == "F") {
    a.kind = ActionKind::kForward;
  } else if (type == "B") {
    a.kind = ActionKind::kBackward;
  } else if (type == "I") {
    a.kind = ActionKind::kBackwardInput;
  } else if (type == "W") {
    a.kind = ActionKind::kWeightGrad;
  } else if (type == "BW") {
    return ParseError(
        "'BW' is the full backward of older torch releases, where 'B' meant backward-input; "
        "this reader follows current torch (B full backward, I backward-input, W weight)");
  } else if (std::find(std::begin(kTorchOtherTypes), std::end(kTorchOtherTypes), type) !=
             std::end(kTorchOtherTypes)) {
    return ParseError("a torch " + std::string(type) +
                      " action; only compute_only schedules (F, B, I, W) are supported");
  } else {
    return ParseError("unknown action type '" + std::string(type) + "'" +
                      DidYouMeanSuffix(type, {"F", "B", "I", "W"}));
  }
  if (microbatch_text.empty()) return ParseError("missing microbatch index");
  if (pos < cell.size()) {
    return ParseError("unexpected '" + std::string(cell.substr(pos)) + "' after the microbatch");
  }
  const std::optional<int32_t> stage = ParseIndex(stage_text);
  const std::optional<int32_t> microbatch = ParseIndex(microbatch_text);
  if (!stage) return ParseError("stage index out of range [0, " + std::to_string(kMaxCount) + ")");
  if (!microbatch) {
    return ParseError("microbatch index out of range [0, " + std::to_string(kMaxCount) + ")");
  }
  a.stage = *stage;
  a.microbatch = *microbatch;
  return a;
}

}  // namespace

std::string ProgramToTorchCsv(const Program& p) {
  std::string out;
  for (const std::vector<Action>& program : p.devices) {
    bool first = true;
    for (const Action& a : program) {
      if (!IsCompute(a.kind)) continue;
      if (!first) out += ',';
      first = false;
      out += std::to_string(a.stage);
      out += TorchType(a.kind);
      out += std::to_string(a.microbatch);
    }
    out += "\r\n";
  }
  return out;
}

namespace {

// A Step after each device's last compute action of every minibatch of `m` microbatches.
void InsertSteps(Program& p, int32_t m) {
  for (std::vector<Action>& program : p.devices) {
    std::vector<size_t> last(static_cast<size_t>(p.minibatches), program.size());
    for (size_t i = 0; i < program.size(); ++i) last[program[i].microbatch / m] = i;
    std::vector<Action> out;
    out.reserve(program.size() + p.minibatches);
    std::vector<bool> ends(program.size(), false);
    for (size_t e : last)
      if (e < program.size()) ends[e] = true;
    for (size_t i = 0; i < program.size(); ++i) {
      out.push_back(program[i]);
      if (ends[i]) out.push_back({ActionKind::kStep, -1, -1, {}});
    }
    if (out.size() == program.size()) out.push_back({ActionKind::kStep, -1, -1, {}});
    program = std::move(out);
  }
}

}  // namespace

Result<Program> ParseTorchCsv(std::string_view csv, std::string_view filename,
                              int32_t minibatches_hint, ScheduleSource* source) {
  const std::string file(filename);
  if (minibatches_hint < 1 || minibatches_hint > kMaxCount) {
    return InvalidArgument("minibatches hint must be in [1, " + std::to_string(kMaxCount) +
                           "], got " + std::to_string(minibatches_hint));
  }
  Program p;
  p.method = "torch-csv";
  std::vector<int32_t> row_of_stage;  // -1: not seen yet
  int32_t max_microbatch = -1;
  int32_t row = 0;
  size_t begin = 0;
  // A row per line; text after the last newline is a row only when not empty.
  if (source != nullptr) {
    source->format = ScheduleSource::Format::kTorchCsv;
    source->file = file;
    source->text = std::string(csv);
  }
  while (begin < csv.size()) {
    if (source != nullptr) {
      source->line_starts.push_back(begin);
      source->actions.emplace_back();
      source->devices.push_back({row + 1, 1});
    }
    size_t end = csv.find('\n', begin);
    if (end == std::string_view::npos) end = csv.size();
    const std::string_view line = csv.substr(begin, end - begin);
    begin = end + 1;
    if (row >= kMaxCount) {
      return ParseError(file + ": more than " + std::to_string(kMaxCount) + " rows");
    }
    std::vector<Action>& program = p.devices.emplace_back();
    size_t cell_begin = 0;
    while (cell_begin <= line.size()) {
      size_t cell_end = line.find(',', cell_begin);
      if (cell_end == std::string_view::npos) cell_end = line.size();
      const std::string_view raw = line.substr(cell_begin, cell_end - cell_begin);
      const size_t column = cell_begin + 1;
      cell_begin = cell_end + 1;
      std::string_view cell = Trim(raw);
      if (cell.size() >= 2 && cell.front() == '"' && cell.back() == '"')
        cell = Trim(cell.substr(1, cell.size() - 2));
      if (cell.empty()) continue;
      auto error = [&](const std::string& message) {
        return ParseError(file + ":" + std::to_string(row + 1) + ":" + std::to_string(column) +
                          ": cell '" + std::string(cell) + "': " + message);
      };
      Result<Action> action = ParseCell(cell);
      if (!action.ok()) return error(action.status().message());
      const int32_t stage = action->stage;
      if (row_of_stage.size() <= static_cast<size_t>(stage)) row_of_stage.resize(stage + 1, -1);
      if (row_of_stage[stage] == -1) row_of_stage[stage] = row;
      if (row_of_stage[stage] != row) {
        return error("stage " + std::to_string(stage) + " is already on row " +
                     std::to_string(row_of_stage[stage] + 1) + "; a stage lives on one rank");
      }
      max_microbatch = std::max(max_microbatch, action->microbatch);
      program.push_back(*action);
      if (source != nullptr) {
        source->actions.back().push_back({row + 1, static_cast<int32_t>(column)});
      }
    }
    ++row;
  }
  if (row_of_stage.empty()) return ParseError(file + ": no compute actions");
  for (size_t s = 0; s < row_of_stage.size(); ++s) {
    if (row_of_stage[s] == -1) {
      return ParseError(file + ": stage " + std::to_string(s) + " appears on no row (stages 0.." +
                        std::to_string(row_of_stage.size() - 1) + " must all be placed)");
    }
  }
  const int32_t total = max_microbatch + 1;
  if (total % minibatches_hint != 0) {
    return ParseError(file + ": " + std::to_string(total) + " microbatches do not split into " +
                      std::to_string(minibatches_hint) + " minibatches");
  }
  if (static_cast<int64_t>(total) * static_cast<int64_t>(row_of_stage.size()) > kMaxCells) {
    return ParseError(file + ": schedule too large (" + std::to_string(row_of_stage.size()) +
                      " stages x " + std::to_string(total) + " microbatches)");
  }
  p.num_devices = row;
  p.num_stages = static_cast<int32_t>(row_of_stage.size());
  p.placement = std::move(row_of_stage);
  p.microbatches = total / minibatches_hint;
  p.minibatches = minibatches_hint;
  InsertSteps(p, p.microbatches);
  if (source != nullptr) {  // the steps were not written: they have no position
    for (size_t d = 0; d < p.devices.size(); ++d) {
      std::vector<SourcePosition> positions;
      positions.reserve(p.devices[d].size());
      size_t next = 0;
      for (const Action& a : p.devices[d]) {
        positions.push_back(a.kind == ActionKind::kStep ? SourcePosition{}
                                                        : source->actions[d][next++]);
      }
      source->actions[d] = std::move(positions);
    }
  }
  return p;
}

}  // namespace pipecast::ir
