#include "runtime/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace pipecast::runtime {
namespace {

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) return IoError(path + ": write failed: " + std::strerror(errno));
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status WriteSafetensors(const std::string& path, const SafetensorsFile& file) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& [name, t] : file.tensors) {
    int64_t count = 1;
    for (int64_t d : t.shape) count *= d;
    if (count != static_cast<int64_t>(t.data.size()))
      return InvalidArgument("tensor '" + name + "': shape does not match its data");
    const size_t bytes = t.data.size() * sizeof(float);
    header[name] = {
        {"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';  // align the data as the format recommends
  const uint64_t n = text.size();
  char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return IoError(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  Status s = WriteAll(fd, len, 8, path);
  if (s.ok()) s = WriteAll(fd, text.data(), text.size(), path);
  for (const auto& [name, t] : file.tensors) {
    if (!s.ok()) break;
    s = WriteAll(fd, reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float),
                 path);
  }
  if (s.ok() && ::fsync(fd) != 0) s = IoError(path + ": fsync failed: " + std::strerror(errno));
  ::close(fd);
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0)
    s = IoError(path + ": rename failed: " + std::strerror(errno));
  if (!s.ok()) std::remove(tmp.c_str());
  return s;
}

Result<SafetensorsFile> ReadSafetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open the checkpoint");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string bytes = buf.str();
  auto corrupt = [&](const std::string& why) {
    return InvalidArgument(path + ": not a valid safetensors checkpoint: " + why);
  };
  if (bytes.size() < 8) return corrupt("shorter than its 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8)
    return corrupt("header length " + std::to_string(n) + " exceeds the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, n));
  } catch (const nlohmann::json::exception& e) {
    return corrupt(std::string("header is not JSON: ") + e.what());
  }
  if (!header.is_object()) return corrupt("header is not a JSON object");
  const size_t data_begin = 8 + n;
  const size_t data_size = bytes.size() - data_begin;
  SafetensorsFile out;
  try {
    for (const auto& [name, v] : header.items()) {
      if (name == "__metadata__") {
        for (const auto& [k, val] : v.items()) out.metadata[k] = val.get<std::string>();
        continue;
      }
      const std::string dtype = v.at("dtype").get<std::string>();
      const auto shape = v.at("shape").get<std::vector<int64_t>>();
      const auto offsets = v.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
        return corrupt("tensor '" + name + "' has data offsets outside the file (truncated?)");
      int64_t count = 1;
      for (int64_t d : shape) {
        if (d < 0) return corrupt("tensor '" + name + "' has a negative dimension");
        count *= d;
      }
      const size_t width = dtype == "F32" ? 4 : dtype == "I64" ? 8 : 0;
      if (width == 0) return corrupt("tensor '" + name + "' has unsupported dtype " + dtype);
      if (offsets[1] - offsets[0] != static_cast<uint64_t>(count) * width)
        return corrupt("tensor '" + name + "': shape and byte size disagree");
      NamedTensor t;
      t.shape = shape;
      t.data.resize(static_cast<size_t>(count));
      const char* src = bytes.data() + data_begin + offsets[0];
      if (width == 4) {
        std::memcpy(t.data.data(), src, static_cast<size_t>(count) * 4);
      } else {
        for (int64_t i = 0; i < count; ++i) {
          int64_t x;
          std::memcpy(&x, src + 8 * i, 8);
          t.data[static_cast<size_t>(i)] = static_cast<float>(x);
        }
      }
      out.tensors[name] = std::move(t);
    }
  } catch (const nlohmann::json::exception& e) {
    return corrupt(std::string("bad header entry: ") + e.what());
  }
  return out;
}

}  // namespace pipecast::runtime
