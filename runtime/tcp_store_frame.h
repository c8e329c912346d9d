// The wire format of the TCP store (runtime/tcp_store.h): length-prefixed binary frames with
// checked sizes. A frame is a 13-byte header, the magic bytes "PCS1", an operation (one byte),
// the key's length and the value's length (unsigned 32-bit, little-endian), then the key and
// the value. Keys are at most 256 bytes and values at most 1 MiB; a header that breaks either
// limit is refused before its payload is read. Integers inside values are little-endian too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pipecast::runtime::store {

inline constexpr char kMagic[4] = {'P', 'C', 'S', '1'};
inline constexpr size_t kHeaderBytes = 13;
inline constexpr size_t kMaxKeyBytes = 256;
inline constexpr size_t kMaxValueBytes = size_t{1} << 20;

enum class Op : uint8_t {
  // Requests, from a rank to the store; a connection's first frame is its hello.
  kHello = 1,    // value: rank, world size (int32 each)
  kSet = 2,      // key, value
  kGet = 3,      // key; value: how long to wait for it in ms (uint32)
  kBarrier = 4,  // key: the barrier's name; value: how long to wait in ms (uint32)
  kDelete = 5,   // key: forget its value (no error when it has none)
  // Replies, one per request.
  kOk = 10,       // hello accepted, value set or deleted, barrier passed
  kValue = 11,    // key, value: the answer to kGet
  kError = 12,    // value: why the request was refused
  kTimeout = 13,  // value: what was still missing when the wait's time ran out
};

bool IsRequest(Op op);

struct Frame {
  Op op = Op::kOk;
  std::string key;
  std::string value;
};

// REQUIRES: key and value within the limits above.
std::string EncodeFrame(const Frame& frame);

// The first frame of `bytes`: incomplete (more bytes are needed), a frame and the bytes it
// takes, or malformed with what is wrong (bad magic, unknown operation, a key or value over
// its limit), reported as soon as the bytes that show it have arrived.
struct ParsedFrame {
  enum class Kind { kIncomplete, kFrame, kMalformed };
  Kind kind = Kind::kIncomplete;
  size_t used = 0;
  Frame frame;
  std::string error;
};
ParsedFrame ParseFrame(std::string_view bytes);

std::string EncodeU32(uint32_t value);
// REQUIRES: bytes.size() >= 4 + offset.
uint32_t DecodeU32(std::string_view bytes, size_t offset = 0);

}  // namespace pipecast::runtime::store
