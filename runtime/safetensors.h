// Reading and writing the safetensors format (the Hugging Face tensor file format): an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape and byte range,
// an optional "__metadata__" map of strings, then the raw little-endian data.
//
// Only F32 tensors are written; F32 and I64 are read. Writes are atomic: the file is written to
// a temporary name in the same directory, flushed to disk, then renamed over the target, so a
// crash never leaves a half-written checkpoint and never destroys the previous one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace pipecast::runtime {

struct NamedTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

struct SafetensorsFile {
  std::map<std::string, NamedTensor> tensors;
  std::map<std::string, std::string> metadata;
};

Status WriteSafetensors(const std::string& path, const SafetensorsFile& file);
// Errors name the file and what is wrong (truncated, bad header JSON, offsets out of range,
// unsupported dtype, shape and size disagreeing).
Result<SafetensorsFile> ReadSafetensors(const std::string& path);

}  // namespace pipecast::runtime
