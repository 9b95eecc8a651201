// The size model shared by both backends: how many bytes of a namespace a
// mode leaves usable, which sizes and alignments a region accepts, where
// free space is, and the error messages for sizes that do not fit.
//
// Model (matches what libnvdimm does, to within the alignment):
//  - fsdax/devdax reserve an 8 KiB info block plus, with map=dev, 64 bytes
//    of struct page per 4 KiB page, rounded up to the namespace's align
//    (at least 2 MiB);
//    the rest, rounded down to align, is usable. 1 GiB, map=dev, align 2M
//    -> 1006 MiB; map=mem -> 1022 MiB.
//  - sector (BTT) keeps 4 KiB before the arena; each arena (at most
//    512 GiB) has an info block and its backup, a flog of 256 lanes x 64
//    bytes and a 4-byte map entry per block; 256 blocks are kept free.
//    1 GiB at 4096-byte sectors -> 261625 sectors = 1021.97 MiB.
//  - raw uses everything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daxstore/namespace.h"

namespace daxstore::ns {

constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
constexpr size_t kMaxNameBytes = 63;  // the label's 64 bytes hold a NUL

uint64_t DefaultAlign(NamespaceMode mode);       // 2 MiB for dax modes, else 0
uint32_t DefaultSectorSize(NamespaceMode mode);  // sector 4096, devdax 0
std::vector<uint64_t> SupportedAlignments();     // 4K, 2M, 1G
std::vector<uint32_t> SupportedSectorSizes(NamespaceMode mode);
std::vector<Capability> Capabilities();  // per mode, for -C

// Usable bytes of a namespace taking raw bytes of a region; 0 if too small.
uint64_t UsableSize(NamespaceMode mode, MapLocation map, uint64_t raw,
                    uint64_t align, uint32_t sector_size);
uint64_t BttUsableSize(uint64_t raw, uint32_t sector_size);

// Fills in defaults and validates align, map, sector size, name and uuid
// (an empty uuid stays empty: the backend generates one).
Status NormalizeRequest(CreateRequest& r);

// The unit namespace sizes in `region` must be a multiple of.
uint64_t SizeGranule(const Region& region, uint64_t align);

// Turns a SizeRequest into raw bytes for `region`, or explains why not:
// misaligned (with the nearest valid sizes), more than available, more than
// the largest free extent.
Result<uint64_t> ResolveSize(const Region& region, const SizeRequest& size,
                             uint64_t granule);

// Free ranges of a region of `size` bytes given the used ones.
std::vector<ByteRange> FreeExtents(uint64_t size, std::vector<ByteRange> used);

// "96M", "1G", "4K" or a byte count: a size as --size accepts it.
std::string SizeArg(uint64_t bytes);

// A random RFC 4122 version-4 uuid; and a check of the text form.
std::string NewUuid();
bool ValidUuid(const std::string& uuid);

}  // namespace daxstore::ns
