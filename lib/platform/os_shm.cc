// Shared-memory half of OsPlatform (sealed memfds), and the Platform
// defaults for implementations without it.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "platform/os_platform.h"

namespace daxstore {

Result<int> Platform::MakeSharedMemory(const std::string&, uint64_t) {
  return Unsupported("this platform has no shared memory files");
}
Result<bool> Platform::SizeIsSealed(int) {
  return Unsupported("this platform has no shared memory files");
}

namespace {
constexpr int kSizeSeals = F_SEAL_SHRINK | F_SEAL_GROW;
}  // namespace

Result<int> OsPlatform::MakeSharedMemory(const std::string& name,
                                         uint64_t size) {
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return FromErrno(errno, "memfd_create");
  int err = 0;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
    err = errno;
  else if (::fcntl(fd, F_ADD_SEALS, kSizeSeals | F_SEAL_SEAL) != 0)
    err = errno;
  if (err != 0) {
    ::close(fd);
    return FromErrno(
        err, "sizing shared memory of " + std::to_string(size) + " bytes");
  }
  return fd;
}

Result<bool> OsPlatform::SizeIsSealed(int fd) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    if (errno == EINVAL) return false;  // not a file that supports seals
    return FromErrno(errno, "reading the seals of a descriptor");
  }
  return (seals & kSizeSeals) == kSizeSeals;
}

}  // namespace daxstore
