// Reading the files a user gives (scenarios, schedules, jobs): one reader with a size cap, so a
// huge or endless input (/dev/zero, a FIFO) fails within a fraction of a second with a message
// instead of filling memory, and "-" reads standard input.
#pragma once

#include <cstdint>
#include <string>

#include "common/limits.h"
#include "common/status.h"

namespace pipecast::ir {

// The whole content of `path`, or of standard input when `path` is "-". Errors: kNotFound (no
// such file), kIoError (a directory, unreadable, or a read error), kInvalidArgument (more than
// `max_bytes` bytes; the message names the file and the limit). `what` names the file's role in
// messages ("scenario file", "schedule file").
Result<std::string> ReadInputFile(const std::string& path, const std::string& what,
                                  int64_t max_bytes = kMaxInputBytes);

// How a file is named in messages: its path, or "standard input" for "-".
std::string InputName(const std::string& path);

}  // namespace pipecast::ir
