// File helpers for the CLI: reading inputs, writing outputs atomically (a temporary file in the
// same directory, then rename, so a reader never sees half a file and an old result is never
// lost to a failed write), and loading schedule files in any supported format.
#pragma once

#include <string>

#include "common/ir.h"
#include "common/schedule_source.h"
#include "common/status.h"

namespace pipecast::cli {

Result<std::string> ReadFile(const std::string& path);
Status WriteFileAtomically(const std::string& path, const std::string& contents);
Status MakeDirectories(const std::string& path);

// A schedule file read and validated: the program as written (sends and receives only if the
// file has them; the simulator derives the others) and where everything in it was written.
struct LoadedSchedule {
  ir::Program program;
  ir::ScheduleSource source;
};

// Loads a schedule: format "auto" picks by extension (.json, .csv) or content (a leading '{'),
// else the text format; "-" reads standard input. `minibatches` splits a torch CSV's
// microbatches (each minibatch gets its optimizer step). The program is validated as written
// (and, without sends and receives, the transfers lowering would insert are checked too); every
// problem is reported with the token and line:column (or JSON path) the user wrote.
Result<LoadedSchedule> LoadSchedule(const std::string& path, const std::string& format,
                                    int32_t minibatches = 1);

// A name safe for a file: letters, digits, '-', '_', '.', '=' kept; anything else becomes '_'.
std::string FileSafe(const std::string& name);

// A file name for a run's label, without '=' and '_' noise: "interleaved(chunks=3)" ->
// "interleaved-chunks-3"; letters, digits, '.' and '-' kept, every other run of characters one
// '-'.
std::string LabelFileName(const std::string& label);

}  // namespace pipecast::cli
