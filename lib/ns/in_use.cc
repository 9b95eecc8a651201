#include "ns/in_use.h"

#include <fcntl.h>

#include <cerrno>

namespace daxstore::ns {

Result<bool> LockedByAnotherOpen(Platform& p, const std::string& path) {
  if (!p.Exists(path)) return false;
  DAXSTORE_ASSIGN_OR_RETURN(int fd, p.Open(path, O_RDONLY));
  // An exclusive try on our own open conflicts with any other holder's
  // shared or exclusive lock; closing the fd drops ours.
  Status st = p.TryLock(fd, /*exclusive=*/true);
  p.Close(fd);
  if (st.ok()) return false;
  if (st.kind() == ErrorKind::kBusy) return true;
  return st.WithContext(path);
}

Result<bool> BlockDeviceBusy(Platform& p, const std::string& path) {
  auto fd = p.Open(path, O_RDWR | O_EXCL);
  if (fd.ok()) {
    p.Close(*fd);
    return false;
  }
  if (fd.status().sys_errno() == EBUSY) return true;
  if (fd.status().sys_errno() == ENOENT) return false;
  return fd.status();
}

}  // namespace daxstore::ns
