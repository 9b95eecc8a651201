#include "platform/page_persist.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <shared_mutex>

namespace daxstore::page_persist {

namespace {
constexpr unsigned kNoDrain = 1u << 0;
constexpr unsigned kNoFlush = 1u << 5;
// Noted ranges a thread keeps before it syncs them without waiting for
// Drain (syncing early is always allowed: write-back may happen any time).
constexpr size_t kMaxPending = 32;

uintptr_t PageSize() {
  static const uintptr_t size = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

struct Range {
  uintptr_t lo, hi;  // lo page-aligned
};

// Tracked mappings: start -> end.
struct Registry {
  std::shared_mutex mu;
  std::map<uintptr_t, uintptr_t> maps;
};
Registry& Tracked() {
  static Registry* r = new Registry;  // never destroyed: used at exit too
  return *r;
}

// Plain arrays: no destructor, so a Mapping destroyed after this thread's
// thread_locals (a static one, at exit) still persists safely.
thread_local Range pending[kMaxPending];
thread_local size_t npending = 0;
thread_local uint64_t sync_count = 0;

void Sync(uintptr_t lo, uintptr_t hi) {
  sync_count++;
  int rc;
  do {
    rc = ::msync(reinterpret_cast<void*>(lo), hi - lo, MS_SYNC);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    std::fprintf(stderr, "daxstore: msync failed: %s\n", std::strerror(errno));
    std::abort();
  }
}

void FlushUnlessAsked(void* dst, size_t n, unsigned flags) {
  if (flags & kNoFlush) return;
  if (flags & kNoDrain) {
    Flush(dst, n);
  } else {
    Persist(dst, n);
  }
}
}  // namespace

void Track(const void* addr, size_t len) {
  auto a = reinterpret_cast<uintptr_t>(addr);
  std::unique_lock lock(Tracked().mu);
  Tracked().maps[a] = a + len;
}

void Untrack(const void* addr) {
  std::unique_lock lock(Tracked().mu);
  Tracked().maps.erase(reinterpret_cast<uintptr_t>(addr));
}

void Flush(const void* p, size_t n) {
  if (n == 0) return;
  auto lo = reinterpret_cast<uintptr_t>(p) & ~(PageSize() - 1);
  auto hi = reinterpret_cast<uintptr_t>(p) + n;
  if (npending > 0) {
    Range& last = pending[npending - 1];
    if (lo <= last.hi && hi >= last.lo) {
      last.lo = std::min(last.lo, lo);
      last.hi = std::max(last.hi, hi);
      return;
    }
  }
  if (npending == kMaxPending) Drain();
  pending[npending++] = {lo, hi};
}

void Drain() {
  if (npending == 0) return;
  // One range per tracked mapping: from its lowest noted page to the end of
  // its highest. msync writes back only the dirty pages in it (the page
  // cache tags them) and the file system flushes the device once. A range
  // in no tracked mapping belonged to one unmapped since: nothing to sync.
  Range hulls[kMaxPending];
  size_t nhulls = 0;
  {
    Registry& reg = Tracked();
    std::shared_lock lock(reg.mu);
    for (size_t i = 0; i < npending; i++) {
      const Range& r = pending[i];
      auto it = reg.maps.upper_bound(r.lo);
      if (it == reg.maps.begin()) continue;
      --it;
      if (r.lo >= it->second) continue;
      // A range running past its mapping's end breaks Flush's contract: it
      // is synced alone, and msync reports what lies beyond.
      Range* h = nullptr;
      if (r.hi <= it->second) {
        for (size_t j = 0; j < nhulls; j++) {
          if (hulls[j].lo >= it->first && hulls[j].hi <= it->second) {
            h = &hulls[j];
          }
        }
      }
      if (h) {
        h->lo = std::min(h->lo, r.lo);
        h->hi = std::max(h->hi, r.hi);
      } else {
        hulls[nhulls++] = r;
      }
    }
  }
  npending = 0;
  for (size_t j = 0; j < nhulls; j++) Sync(hulls[j].lo, hulls[j].hi);
}

void Persist(const void* p, size_t n) {
  Flush(p, n);
  Drain();
}

uint64_t SyncCount() { return sync_count; }

void* Memcpy(void* dst, const void* src, size_t n, unsigned flags) {
  std::memcpy(dst, src, n);
  FlushUnlessAsked(dst, n, flags);
  return dst;
}

void* Memmove(void* dst, const void* src, size_t n, unsigned flags) {
  std::memmove(dst, src, n);
  FlushUnlessAsked(dst, n, flags);
  return dst;
}

void* Memset(void* dst, int c, size_t n, unsigned flags) {
  std::memset(dst, c, n);
  FlushUnlessAsked(dst, n, flags);
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
