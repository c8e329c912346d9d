#include "runtime/tcp_store_frame.h"

#include <cstdio>

#include "common/check.h"

namespace pipecast::runtime::store {
namespace {

// "47 45 54 20" for the first (at most four) bytes.
std::string HexBytes(std::string_view bytes) {
  std::string text;
  for (size_t i = 0; i < bytes.size() && i < 4; ++i) {
    char byte[4];
    std::snprintf(byte, sizeof(byte), "%02x", static_cast<unsigned char>(bytes[i]));
    if (!text.empty()) text += ' ';
    text += byte;
  }
  return text;
}

ParsedFrame Malformed(std::string error) {
  ParsedFrame parsed;
  parsed.kind = ParsedFrame::Kind::kMalformed;
  parsed.error = std::move(error);
  return parsed;
}

bool KnownOp(uint8_t op) {
  return (op >= static_cast<uint8_t>(Op::kHello) && op <= static_cast<uint8_t>(Op::kDelete)) ||
         (op >= static_cast<uint8_t>(Op::kOk) && op <= static_cast<uint8_t>(Op::kTimeout));
}

}  // namespace

bool IsRequest(Op op) { return static_cast<uint8_t>(op) <= static_cast<uint8_t>(Op::kDelete); }

std::string EncodeU32(uint32_t value) {
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

uint32_t DecodeU32(std::string_view bytes, size_t offset) {
  PIPECAST_CHECK(bytes.size() >= offset + 4) << bytes.size() << " bytes, offset " << offset;
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

std::string EncodeFrame(const Frame& frame) {
  PIPECAST_CHECK(frame.key.size() <= kMaxKeyBytes) << frame.key.size() << " bytes";
  PIPECAST_CHECK(frame.value.size() <= kMaxValueBytes) << frame.value.size() << " bytes";
  std::string bytes(kMagic, sizeof(kMagic));
  bytes += static_cast<char>(frame.op);
  bytes += EncodeU32(static_cast<uint32_t>(frame.key.size()));
  bytes += EncodeU32(static_cast<uint32_t>(frame.value.size()));
  bytes += frame.key;
  bytes += frame.value;
  return bytes;
}

ParsedFrame ParseFrame(std::string_view bytes) {
  const size_t magic_seen = bytes.size() < sizeof(kMagic) ? bytes.size() : sizeof(kMagic);
  if (bytes.substr(0, magic_seen) != std::string_view(kMagic, magic_seen)) {
    return Malformed("it does not start with the store's magic bytes 'PCS1' (it starts " +
                     HexBytes(bytes) + ": is another program talking to this port?)");
  }
  if (bytes.size() <= 4) return {};
  const uint8_t op = static_cast<uint8_t>(bytes[4]);
  if (!KnownOp(op)) return Malformed("unknown operation " + std::to_string(op));
  if (bytes.size() >= 9 && DecodeU32(bytes, 5) > kMaxKeyBytes) {
    return Malformed("a key of " + std::to_string(DecodeU32(bytes, 5)) +
                     " bytes (keys are at most " + std::to_string(kMaxKeyBytes) + " bytes)");
  }
  if (bytes.size() < kHeaderBytes) return {};
  const size_t key_bytes = DecodeU32(bytes, 5);
  const size_t value_bytes = DecodeU32(bytes, 9);
  if (value_bytes > kMaxValueBytes) {
    return Malformed("a value of " + std::to_string(value_bytes) + " bytes (values are at most " +
                     std::to_string(kMaxValueBytes) + " bytes, 1 MiB)");
  }
  if (bytes.size() < kHeaderBytes + key_bytes + value_bytes) return {};
  ParsedFrame parsed;
  parsed.kind = ParsedFrame::Kind::kFrame;
  parsed.used = kHeaderBytes + key_bytes + value_bytes;
  parsed.frame.op = static_cast<Op>(op);
  parsed.frame.key = std::string(bytes.substr(kHeaderBytes, key_bytes));
  parsed.frame.value = std::string(bytes.substr(kHeaderBytes + key_bytes, value_bytes));
  return parsed;
}

}  // namespace pipecast::runtime::store
