#include "common/input_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

namespace pipecast::ir {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f != nullptr && f != stdin) std::fclose(f);
  }
};

// "64 MiB" for whole mebibytes, else the byte count.
std::string LimitText(int64_t bytes) {
  if (bytes >= (1 << 20) && bytes % (1 << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

std::string InputName(const std::string& path) { return path == "-" ? "standard input" : path; }

Result<std::string> ReadInputFile(const std::string& path, const std::string& what,
                                  int64_t max_bytes) {
  const bool from_stdin = path == "-";
  const std::string name = from_stdin ? what + " on standard input" : what + " '" + path + "'";
  if (!from_stdin) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) return NotFound(name + " not found");
    if (std::filesystem::is_directory(status)) return IoError(name + " is a directory");
  }
  std::unique_ptr<std::FILE, FileCloser> file(from_stdin ? stdin : std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return IoError("cannot open " + name + ": " + std::strerror(errno));
  // Read in chunks up to one byte past the cap: a regular file, a pipe and a device all look the
  // same, and an endless input stops at the cap.
  std::string text;
  constexpr size_t kChunk = 1 << 16;
  char buffer[kChunk];
  while (true) {
    const size_t n = std::fread(buffer, 1, kChunk, file.get());
    text.append(buffer, n);
    if (static_cast<int64_t>(text.size()) > max_bytes) {
      return InvalidArgument(name + " is larger than " + LimitText(max_bytes) +
                             ", the most pipecast reads from one input file; schedule and "
                             "scenario files are text of at most a few MiB");
    }
    if (n < kChunk) break;
  }
  if (std::ferror(file.get())) return IoError("cannot read " + name + ": " + std::strerror(errno));
  return text;
}

}  // namespace pipecast::ir
