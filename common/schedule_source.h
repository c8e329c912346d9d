// Where the parts of a schedule file were written, so that problems found after parsing (by the
// validator, or against a scenario) are reported in the file's own terms: the token as the user
// wrote it and its line:column (text, torch CSV) or JSON path, not an action index of a program
// the user never saw. The parsers (format_text.h, format_json.h, format_torch_csv.h) fill it
// when asked.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ir.h"
#include "common/status.h"
#include "common/validate.h"

namespace pipecast::ir {

// 1-based line and column; line 0 when the format has no text positions (JSON).
struct SourcePosition {
  int32_t line = 0;
  int32_t column = 0;
};

struct ScheduleSource {
  enum class Format { kText, kJson, kTorchCsv };
  Format format = Format::kText;
  std::string file;                 // as the user named it
  std::string text;                 // the file's content (text and CSV), for tokens as written
  std::vector<size_t> line_starts;  // byte offset of every line of `text`
  std::vector<std::vector<SourcePosition>> actions;  // [device][action index]
  std::vector<SourcePosition> devices;               // each device's line (text) or row (CSV)
  std::map<std::string, SourcePosition> keys;        // the header keys the file gives

  // "s.txt:7:14", "s.json: programs[1][2]", "r.csv:2:5"; the file alone when unknown.
  std::string Where(int32_t device, int32_t index) const;
  std::string WhereDevice(int32_t device) const;
  std::string WhereKey(const std::string& key) const;  // "s.txt:3:1", "s.json: microbatches"
  // The token of action `index` of `device` as written ('B3', '0F1'), or as `program` prints it.
  std::string Token(const Program& program, int32_t device, int32_t index) const;
  // "'B3@stash' (7:14)" or "'0B3' (programs[0][5])": how messages about this file name an action.
  std::string Describe(const Program& program, int32_t device, int32_t index) const;
  bool Has(const std::string& key) const { return keys.count(key) != 0; }
};

// Validates `program` (read from `source`) and reports in the file's terms: kInvalidSchedule
// listing every problem as "s.txt:7:14: token 'B3': <message>" (device problems at the device's
// line, the others at the file), every action a message refers to named the same way. For a
// program without sends and receives, the order of the transfers lowering would insert is
// checked too.
Status ValidateInSource(const Program& program, const ScheduleSource& source);

}  // namespace pipecast::ir
