// Status and Result<T>: how pipecast reports expected failures (bad files, bad flags, invalid
// schedules). Invariant violations use PIPECAST_CHECK (check.h) instead and abort.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace pipecast {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // a value the user gave is wrong (flag, key, unit, parameter)
  kParseError,        // a file could not be parsed (syntax)
  kInvalidSchedule,   // a program failed validation
  kNotFound,          // a file, method or key does not exist
  kIoError,           // reading or writing a file failed
  kDeadlock,          // the simulator found actions that can never run
  kDeadlineExceeded,  // a wait of the executor passed its deadline
  kCancelled,         // the run was stopped because another device or rank failed
  kNonFinite,         // a loss or gradient became NaN or Inf
  kDeviceError,       // the device failed (out of memory, a kernel error, a lost peer)
  // a file of a schema version this build does not read (older or newer)
  kUnsupportedVersion,
};

// A short name of the code, for reports ("deadline exceeded", "non-finite", ...).
const char* StatusCodeName(StatusCode code);

// A success, or an error code with a message meant for the user.
class Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status ParseError(std::string m) { return {StatusCode::kParseError, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) {
  return {StatusCode::kDeadlineExceeded, std::move(m)};
}
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status NonFinite(std::string m) { return {StatusCode::kNonFinite, std::move(m)}; }
inline Status DeviceError(std::string m) { return {StatusCode::kDeviceError, std::move(m)}; }
inline Status UnsupportedVersion(std::string m) {
  return {StatusCode::kUnsupportedVersion, std::move(m)};
}

// Either a value or a non-ok Status.
template <typename T>
class Result {
 public:
  Result(T value) : data_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(data_);
  }
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace pipecast

// Returns early from a function returning Status or Result<U> when `expr` is not ok.
#define PIPECAST_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    auto pipecast_status_ = (expr);                      \
    if (!pipecast_status_.ok()) return pipecast_status_; \
  } while (0)
