#include "daxstore/status.h"

#include <cerrno>
#include <cstring>

namespace daxstore {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk:
      return "ok";
    case ErrorKind::kInvalidArgument:
      return "invalid argument";
    case ErrorKind::kNotFound:
      return "not found";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kBusy:
      return "busy";
    case ErrorKind::kNoSpace:
      return "no space";
    case ErrorKind::kIoError:
      return "I/O error";
    case ErrorKind::kCorruption:
      return "corruption";
    case ErrorKind::kInternal:
      return "internal error";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(ErrorKindName(kind_)) + ": " + message_;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return Status(kind_, std::string(context) + ": " + message_, errno_);
}

Status InvalidArgument(std::string m) {
  return Status::Error(ErrorKind::kInvalidArgument, std::move(m));
}
Status NotFound(std::string m, int e) {
  return Status::Error(ErrorKind::kNotFound, std::move(m), e);
}
Status Unsupported(std::string m, int e) {
  return Status::Error(ErrorKind::kUnsupported, std::move(m), e);
}
Status Busy(std::string m, int e) {
  return Status::Error(ErrorKind::kBusy, std::move(m), e);
}
Status NoSpace(std::string m, int e) {
  return Status::Error(ErrorKind::kNoSpace, std::move(m), e);
}
Status IoError(std::string m, int e) {
  return Status::Error(ErrorKind::kIoError, std::move(m), e);
}
Status Corruption(std::string m) {
  return Status::Error(ErrorKind::kCorruption, std::move(m));
}
Status Internal(std::string m) {
  return Status::Error(ErrorKind::kInternal, std::move(m));
}

Status FromErrno(int e, std::string m) {
  m += ": ";
  m += std::strerror(e);
  switch (e) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return NotFound(std::move(m), e);
    case EINVAL:
      return Status::Error(ErrorKind::kInvalidArgument, std::move(m), e);
    case EOPNOTSUPP:
    case ENOTTY:
      return Unsupported(std::move(m), e);
    case EBUSY:
    case ETXTBSY:
    case EAGAIN:
      return Busy(std::move(m), e);
    case ENOSPC:
    case ENOMEM:
    case EFBIG:
      return NoSpace(std::move(m), e);
    default:
      return IoError(std::move(m), e);
  }
}

int ErrnoOf(const Status& s) {
  // An errno the failure came with says most (EACCES, EROFS, EIO, ...).
  if (s.sys_errno() > 0) return s.sys_errno();
  switch (s.kind()) {
    case ErrorKind::kOk:
      return 0;
    case ErrorKind::kInvalidArgument:
      return EINVAL;
    case ErrorKind::kNotFound:
      return ENOENT;
    case ErrorKind::kUnsupported:
      return EOPNOTSUPP;
    case ErrorKind::kBusy:
      return EBUSY;
    case ErrorKind::kNoSpace:
      return ENOSPC;
    case ErrorKind::kIoError:
      return EIO;
    case ErrorKind::kCorruption:
      return EUCLEAN;
    case ErrorKind::kInternal:
      return EPROTO;
  }
  return EIO;
}

}  // namespace daxstore
