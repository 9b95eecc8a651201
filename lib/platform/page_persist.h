// Persist functions for page granularity (an ordinary file through the page
// cache): durability comes from msync(MS_SYNC) of the pages a range touches.
// libpmem2 1.12.1's page-granularity functions spin forever on mappings made
// with pmem2_map_from_existing (msync of length 0 in a loop), so these stand
// in for them. Same signatures as libpmem2's function pointers.
#pragma once

#include <cstddef>

namespace daxstore::page_persist {

void Persist(const void* p, size_t n);  // msync; aborts on failure, as
                                        // libpmem2 does: no error channel
void Drain();                           // nothing to fence: msync waited
void* Memcpy(void* dst, const void* src, size_t n, unsigned flags);
void* Memmove(void* dst, const void* src, size_t n, unsigned flags);
void* Memset(void* dst, int c, size_t n, unsigned flags);

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
