// File helpers for the CLI: reading inputs, writing outputs atomically (a temporary file in the
// same directory, then rename, so a reader never sees half a file and an old result is never
// lost to a failed write), and loading schedule files in any supported format.
#pragma once

#include <string>

#include "common/ir.h"
#include "common/status.h"

namespace pipecast::cli {

Result<std::string> ReadFile(const std::string& path);
Status WriteFileAtomically(const std::string& path, const std::string& contents);
Status MakeDirectories(const std::string& path);

// Loads a schedule: format "auto" picks by extension (.json, .csv) or content (a leading '{'),
// else the text format. The program is lowered (sends/receives inserted) if it has none, then
// validated; every problem is reported.
Result<ir::Program> LoadSchedule(const std::string& path, const std::string& format);

// A name safe for a file: letters, digits, '-', '_', '.', '=' kept; anything else becomes '_'.
std::string FileSafe(const std::string& name);

}  // namespace pipecast::cli
