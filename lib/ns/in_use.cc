#include "ns/in_use.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <vector>

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

Result<bool> StoresData(Platform& p, const std::string& path) {
  constexpr uint64_t kScanLimit = 64ull << 20;
  if (!p.Exists(path)) return false;
  DAXSTORE_ASSIGN_OR_RETURN(int fd, p.Open(path, O_RDONLY));
  struct Closer {
    Platform& p;
    int fd;
    ~Closer() { p.Close(fd); }
  } closer{p, fd};
  std::vector<uint8_t> buf(1 << 20);
  uint64_t at = 0, scanned = 0;
  for (;;) {
    auto ext = p.NextData(fd, at);
    if (!ext.ok()) return true;  // extents unknown: assume data
    if (!ext->has_value()) return false;
    const uint64_t end = (*ext)->offset + (*ext)->length;
    for (uint64_t off = (*ext)->offset; off < end;) {
      if (scanned >= kScanLimit) return true;
      DAXSTORE_ASSIGN_OR_RETURN(
          size_t n, p.PRead(fd, buf.data(),
                            std::min<uint64_t>(buf.size(), end - off), off));
      if (n == 0) return false;  // the file ended under us
      if (std::any_of(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n),
                      [](uint8_t b) { return b != 0; })) {
        return true;
      }
      off += n;
      scanned += n;
    }
    at = end;
  }
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
