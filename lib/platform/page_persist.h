// Persist functions for page granularity (an ordinary file through the page
// cache): durability comes from msync(MS_SYNC) of the pages a range touches.
// libpmem2 1.12.1's page-granularity functions spin forever on mappings made
// with pmem2_map_from_existing (msync of length 0 in a loop), so these stand
// in for them. Same signatures as libpmem2's function pointers.
//
// Each msync of a file costs the file system a write-back and a cache flush
// of the device, so Flush only notes its range (per thread) and Drain syncs
// what the thread noted with one msync per mapping: the smallest range that
// covers the mapping's noted pages. That needs to know where each mapping
// lies, so page-granularity Mappings are tracked while they exist.
#pragma once

#include <cstddef>
#include <cstdint>

namespace daxstore::page_persist {

// [addr, addr + len) is a page-granularity mapping until Untrack(addr).
void Track(const void* addr, size_t len);
void Untrack(const void* addr);

void Persist(const void* p, size_t n);  // Flush, then Drain
void Flush(const void* p, size_t n);    // notes the range for Drain
// Syncs every range this thread noted since its last Drain (msync; aborts
// on failure, as libpmem2 does: no error channel).
void Drain();
void* Memcpy(void* dst, const void* src, size_t n, unsigned flags);
void* Memmove(void* dst, const void* src, size_t n, unsigned flags);
void* Memset(void* dst, int c, size_t n, unsigned flags);

// msync calls this thread made (tests count them).
uint64_t SyncCount();

}  // namespace daxstore::page_persist

// For a page-cache file on a file system that keeps data in memory only
// (tmpfs, ramfs): the stores themselves are all there is, so nothing is
// synced. The data survives a process crash (the stores are in the shared
// page cache once executed), not a reboot. Being out-of-line calls through
// a pointer, they still keep the compiler from moving stores across them.
namespace daxstore::memory_only {

void Persist(const void* p, size_t n);  // nothing to write back
void Drain();
void* Memcpy(void* dst, const void* src, size_t n, unsigned flags);
void* Memmove(void* dst, const void* src, size_t n, unsigned flags);
void* Memset(void* dst, int c, size_t n, unsigned flags);

}  // namespace daxstore::memory_only
