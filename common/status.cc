#include "common/status.h"

namespace pipecast {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kParseError:
      return "parse error";
    case StatusCode::kInvalidSchedule:
      return "invalid schedule";
    case StatusCode::kNotFound:
      return "not found";
    case StatusCode::kIoError:
      return "I/O error";
    case StatusCode::kDeadlock:
      return "deadlock";
    case StatusCode::kDeadlineExceeded:
      return "deadline exceeded";
    case StatusCode::kCancelled:
      return "cancelled";
    case StatusCode::kNonFinite:
      return "non-finite";
    case StatusCode::kDeviceError:
      return "device error";
    case StatusCode::kUnsupportedVersion:
      return "unsupported version";
  }
  return "unknown";
}

}  // namespace pipecast
