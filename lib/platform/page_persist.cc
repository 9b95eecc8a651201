#include "platform/page_persist.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace daxstore::page_persist {

namespace {
constexpr unsigned kNoDrain = 1u << 0;
constexpr unsigned kNoFlush = 1u << 5;

uintptr_t PageSize() {
  static const uintptr_t size = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

void PersistUnlessAsked(void* dst, size_t n, unsigned flags) {
  // NODRAIN still syncs: a page cache has no separate fence to defer.
  if (!(flags & kNoFlush)) Persist(dst, n);
  (void)kNoDrain;
}
}  // namespace

void Persist(const void* p, size_t n) {
  if (n == 0) return;
  auto start = reinterpret_cast<uintptr_t>(p) & ~(PageSize() - 1);
  size_t len = reinterpret_cast<uintptr_t>(p) + n - start;
  int rc;
  do {
    rc = ::msync(reinterpret_cast<void*>(start), len, MS_SYNC);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    std::fprintf(stderr, "daxstore: msync failed: %s\n", std::strerror(errno));
    std::abort();
  }
}

void Drain() {}

void* Memcpy(void* dst, const void* src, size_t n, unsigned flags) {
  std::memcpy(dst, src, n);
  PersistUnlessAsked(dst, n, flags);
  return dst;
}

void* Memmove(void* dst, const void* src, size_t n, unsigned flags) {
  std::memmove(dst, src, n);
  PersistUnlessAsked(dst, n, flags);
  return dst;
}

void* Memset(void* dst, int c, size_t n, unsigned flags) {
  std::memset(dst, c, n);
  PersistUnlessAsked(dst, n, flags);
  return dst;
}

}  // namespace daxstore::page_persist

namespace daxstore::memory_only {

void Persist(const void*, size_t) {}

void Drain() {}

void* Memcpy(void* dst, const void* src, size_t n, unsigned) {
  return std::memcpy(dst, src, n);
}

void* Memmove(void* dst, const void* src, size_t n, unsigned) {
  return std::memmove(dst, src, n);
}

void* Memset(void* dst, int c, size_t n, unsigned) {
  return std::memset(dst, c, n);
}

}  // namespace daxstore::memory_only
