// Which file system an open file lives on (fstatfs), and whether it keeps
// file data in memory only.
#include <linux/magic.h>
#include <sys/vfs.h>

#include <cerrno>

#include "platform/os_platform.h"

namespace daxstore {

std::string_view FileSystemInfo::memory_fs_name() const {
  switch (magic) {
    case TMPFS_MAGIC:
      return "tmpfs";
    case RAMFS_MAGIC:
      return "ramfs";
    default:
      return "";
  }
}

bool FileSystemInfo::memory_only() const { return !memory_fs_name().empty(); }

Result<FileSystemInfo> Platform::FileSystemOf(int) {
  return Unsupported("this platform does not report file systems");
}

Result<FileSystemInfo> OsPlatform::FileSystemOf(int fd) {
  struct statfs st;
  int rc;
  do {
    rc = ::fstatfs(fd, &st);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return FromErrno(errno, "fstatfs");
  FileSystemInfo info;
  info.magic = static_cast<uint64_t>(st.f_type);
  return info;
}

}  // namespace daxstore
