// IDX files through zlib, and Fashion-MNIST on top of them (data.h).
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "common/check.h"
#include "models/data.h"

namespace pipecast::models {
namespace {

constexpr uint8_t kIdxUnsignedByte = 0x08;
// No IDX file we read is anywhere near this; a header that claims more is corrupt.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 34;
constexpr int32_t kFashionSide = 28;
constexpr int32_t kFashionClasses = 10;
constexpr char kFashionInstallHint[] = "install it with `apt-get install dataset-fashion-mnist`";

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// zlib's description of the stream's error, without the "<path>: " prefix gzerror adds.
std::string ZlibMessage(gzFile file, const std::string& path) {
  int err = Z_OK;
  const char* message = gzerror(file, &err);
  std::string text = message != nullptr ? message : "unknown zlib error";
  if (text.rfind(path + ": ", 0) == 0) text.erase(0, path.size() + 2);
  return text;
}

bool StreamFailed(gzFile file) {
  int err = Z_OK;
  gzerror(file, &err);
  return err != Z_OK && err != Z_STREAM_END;
}

// Reads exactly `n` bytes, or says why not: a zlib error (a corrupt or truncated stream; zlib
// reads ahead, so it may report one before the part being read), or the decompressed data
// ending early. `what` names the part being read, for the message.
Status ReadExactly(gzFile file, const std::string& path, uint8_t* out, uint64_t n,
                   const char* what) {
  uint64_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(n - done, 1u << 30));
    const int got = gzread(file, out + done, chunk);
    if (got < 0 || StreamFailed(file)) {
      return IoError(path + ": corrupt or truncated gzip file (zlib: " + ZlibMessage(file, path) +
                     ")");
    }
    if (got == 0) {
      return ParseError(path + ": file ends after " + std::to_string(done) + " of the " +
                        std::to_string(n) + " bytes of the " + what + " (truncated?)");
    }
    done += static_cast<uint64_t>(got);
  }
  return Status::Ok();
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string FashionFile(FashionMnistSplit split, const char* kind) {
  return std::string(split == FashionMnistSplit::kTrain ? "train" : "t10k") + "-" + kind + ".gz";
}

}  // namespace

Result<IdxArray> ReadIdxFile(const std::string& path, int64_t max_items) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound(path + ": no such file");
  }
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) return IoError(path + ": cannot open");
  gzbuffer(file.get(), 1 << 17);

  uint8_t magic[4];
  PIPECAST_RETURN_IF_ERROR(ReadExactly(file.get(), path, magic, 4, "IDX magic number"));
  if (magic[0] != 0 || magic[1] != 0) {
    char found[8];
    std::snprintf(found, sizeof(found), "%02x %02x", magic[0], magic[1]);
    return ParseError(path + ": not an IDX file (magic number starts " + found +
                      ", expected 00 00)");
  }
  if (magic[2] != kIdxUnsignedByte) {
    return ParseError(path + ": IDX data type " + std::to_string(magic[2]) +
                      " is not supported (only 8, unsigned byte)");
  }
  const int ndims = magic[3];
  if (ndims < 1) return ParseError(path + ": IDX header has 0 dimensions");
  std::vector<uint8_t> raw(static_cast<size_t>(ndims) * 4);
  PIPECAST_RETURN_IF_ERROR(ReadExactly(file.get(), path, raw.data(), raw.size(), "IDX dimensions"));
  IdxArray array;
  uint64_t item_bytes = 1;
  for (int d = 0; d < ndims; ++d) {
    array.dims.push_back(BigEndian32(raw.data() + 4 * d));
    if (d > 0) item_bytes *= array.dims.back();
    if (item_bytes > kMaxIdxBytes) return ParseError(path + ": implausible IDX dimensions");
  }
  uint64_t items = array.dims[0];
  const bool partial = max_items >= 0 && static_cast<uint64_t>(max_items) < items;
  if (partial) items = static_cast<uint64_t>(max_items);
  if (items * item_bytes > kMaxIdxBytes) return ParseError(path + ": implausible IDX dimensions");
  array.dims[0] = static_cast<uint32_t>(items);
  array.values.resize(items * item_bytes);
  PIPECAST_RETURN_IF_ERROR(
      ReadExactly(file.get(), path, array.values.data(), array.values.size(), "IDX data"));
  if (!partial) {
    uint8_t extra;
    const int got = gzread(file.get(), &extra, 1);
    if (got < 0 || StreamFailed(file.get())) {
      return IoError(
          path + ": corrupt or truncated gzip file (zlib: " + ZlibMessage(file.get(), path) + ")");
    }
    if (got > 0) {
      return ParseError(path + ": trailing bytes after the " + std::to_string(items) +
                        " items the IDX header declares");
    }
  }
  return array;
}

Result<ClassificationData> LoadFashionMnist(FashionMnistSplit split, const std::string& dir,
                                            int64_t max_examples) {
  const std::string images_path = dir + "/" + FashionFile(split, "images-idx3-ubyte");
  const std::string labels_path = dir + "/" + FashionFile(split, "labels-idx1-ubyte");
  for (const std::string& path : {images_path, labels_path}) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return NotFound("Fashion-MNIST not found at " + path + ": " + kFashionInstallHint);
    }
  }
  Result<IdxArray> images = ReadIdxFile(images_path, max_examples);
  if (!images.ok()) return images.status();
  Result<IdxArray> labels = ReadIdxFile(labels_path, max_examples);
  if (!labels.ok()) return labels.status();
  if (images->dims.size() != 3 || images->dims[1] != kFashionSide ||
      images->dims[2] != kFashionSide) {
    return ParseError(images_path + ": expected images of 28x28 (3 dimensions)");
  }
  if (labels->dims.size() != 1) {
    return ParseError(labels_path + ": expected 1 dimension, found " +
                      std::to_string(labels->dims.size()));
  }
  if (images->dims[0] != labels->dims[0]) {
    return ParseError(images_path + " has " + std::to_string(images->dims[0]) + " images but " +
                      labels_path + " has " + std::to_string(labels->dims[0]) + " labels");
  }
  ClassificationData data;
  data.count = images->dims[0];
  data.features = kFashionSide * kFashionSide;
  data.num_classes = kFashionClasses;
  for (size_t i = 0; i < labels->values.size(); ++i) {
    if (labels->values[i] >= kFashionClasses) {
      return ParseError(labels_path + ": label " + std::to_string(labels->values[i]) +
                        " of example " + std::to_string(i) + " is not in 0..9");
    }
  }
  data.labels = std::move(labels->values);
  data.x.resize(images->values.size());
  for (size_t i = 0; i < data.x.size(); ++i) {
    data.x[i] = static_cast<float>(images->values[i]) / 255.0f;
  }
  return data;
}

}  // namespace pipecast::models
