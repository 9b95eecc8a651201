// Errors as values: Status for operations without a result, Result<T> for
// those with one. No exception crosses the public API.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace daxstore {

enum class ErrorKind {
  kOk = 0,
  kInvalidArgument,  // the caller asked for something malformed
  kNotFound,         // a path, device or object does not exist
  kUnsupported,      // the media or kernel cannot do what was asked
  kBusy,             // in use (mounted, mapped, locked)
  kNoSpace,          // not enough capacity
  kIoError,          // the OS or the media failed (errno in code())
  kCorruption,       // on-media data is inconsistent
  kInternal,         // a bug in daxstore
};

std::string_view ErrorKindName(ErrorKind kind);

// Cheap on success (no allocation). A failure carries a kind, a message a
// person can act on, and the errno that caused it (0 if none).
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(ErrorKind kind, std::string message, int sys_errno = 0) {
    assert(kind != ErrorKind::kOk);
    return Status(kind, std::move(message), sys_errno);
  }

  bool ok() const { return kind_ == ErrorKind::kOk; }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  int sys_errno() const { return errno_; }

  // "kind: message" for logs; message() alone for users.
  std::string ToString() const;

  // Prepends context: "mapping /x: " + message. No-op on success.
  Status WithContext(std::string_view context) const;

 private:
  Status(ErrorKind kind, std::string message, int sys_errno)
      : kind_(kind), errno_(sys_errno), message_(std::move(message)) {}

  ErrorKind kind_ = ErrorKind::kOk;
  int errno_ = 0;
  std::string message_;
};

// Shorthands used throughout the code.
Status InvalidArgument(std::string message);
Status NotFound(std::string message, int sys_errno = 0);
Status Unsupported(std::string message, int sys_errno = 0);
Status Busy(std::string message, int sys_errno = 0);
Status NoSpace(std::string message, int sys_errno = 0);
Status IoError(std::string message, int sys_errno);
Status Corruption(std::string message);
Status Internal(std::string message);
// Maps an errno to the closest kind, with strerror appended to message.
Status FromErrno(int sys_errno, std::string message);
// The errno every front end reports for a failed Status (positive; 0 for
// success): the C ABI (negated), the nbdkit plugin and the control channel
// share this one table. kIoError keeps the errno that caused it (else EIO),
// kCorruption is EUCLEAN, kInternal EPROTO.
int ErrnoOf(const Status& status);

// A value or a failed Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Ok() when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace daxstore

// Returns early with the failed Status of expr.
#define DAXSTORE_RETURN_IF_ERROR(expr) \
  do {                                 \
    ::daxstore::Status _st = (expr);   \
    if (!_st.ok()) return _st;         \
  } while (0)

#define DAXSTORE_CONCAT_INNER(a, b) a##b
#define DAXSTORE_CONCAT(a, b) DAXSTORE_CONCAT_INNER(a, b)
#define DAXSTORE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
// Declares or assigns lhs from a Result, or returns its Status.
#define DAXSTORE_ASSIGN_OR_RETURN(lhs, expr) \
  DAXSTORE_ASSIGN_OR_RETURN_IMPL(DAXSTORE_CONCAT(_res_, __LINE__), lhs, expr)
