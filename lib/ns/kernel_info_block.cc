// Clearing a namespace's old personality before it is reconfigured or
// destroyed, as ndctl does: the kernel finds a pfn (fsdax), dax (devdax)
// or btt (sector) info block at 4 KiB into the namespace, and a stale one
// would be detected again by a namespace later laid over the same bytes
// (a label-less namespace comes back in its old mode on every enable).
#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "ns/kernel.h"

namespace daxstore::ns {

namespace {
constexpr size_t kInfoBytes = 8192;  // ndctl's span: 0 .. end of the block

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
}  // namespace

Status KernelBackend::ClearInfoBlock(ndctl_namespace* ndns) {
  const std::string dev = ndctl_namespace_get_devname(ndns);
  // Raw: the block device then shows the namespace's own first bytes.
  ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_RAW);
  ndctl_namespace_set_raw_mode(ndns, 1);
  Status st = Status::Ok();
  // Like ndctl, a namespace that cannot come up raw (no nd_pmem) is left
  // as it is: there is no block device to clear it through.
  const char* bdev = ndctl_namespace_enable(ndns) < 0
                         ? nullptr
                         : ndctl_namespace_get_block_device(ndns);
  if (bdev != nullptr && *bdev != '\0') {
    const std::string path = std::string("/dev/") + bdev;
    // O_DIRECT: straight to the media, past the page cache; O_EXCL: no
    // one mounted it meanwhile. The zeros are durable on return (the pmem
    // driver flushes its copy), before the caller changes the label; a
    // power cut in between leaves the old label over a cleared block, as
    // with ndctl (the kernel tier covers this path; the simulator cannot).
    std::unique_ptr<char, FreeDeleter> buf(
        static_cast<char*>(std::aligned_alloc(4096, 2 * kInfoBytes)));
    auto fd = platform_->Open(path, O_RDWR | O_DIRECT | O_EXCL);
    st = !buf ? Internal("out of memory") : fd.status();
    if (st.ok()) {
      char* old = buf.get();
      char* zero = buf.get() + kInfoBytes;
      std::memset(zero, 0, kInfoBytes);
      auto got = platform_->PRead(*fd, old, kInfoBytes, 0);
      st = got.status();
      if (st.ok() &&
          (*got != kInfoBytes || std::memcmp(old, zero, kInfoBytes) != 0)) {
        auto put = platform_->PWrite(*fd, zero, kInfoBytes, 0);
        st = put.status();
        if (st.ok() && *put != kInfoBytes) {
          st = IoError("short write to " + path, EIO);
        }
      }
    }
    if (fd.ok()) platform_->Close(*fd);
    st = st.WithContext("clear the info block of " + dev);
  }
  ndctl_namespace_set_raw_mode(ndns, 0);
  ndctl_namespace_disable_invalidate(ndns);
  return st;
}

}  // namespace daxstore::ns
