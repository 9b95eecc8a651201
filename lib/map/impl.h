// Mapping's private state: what the control path needs, off the hot path.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "daxstore/mapping.h"

namespace daxstore {

struct Mapping::Impl {
  ~Impl();  // deletes the pmem2 map, unmaps, closes

  // Binds the persist functions for info.granularity into m.
  Status BindPmem2(Mapping& m);

  std::shared_ptr<Platform> platform;
  int fd = -1;
  void* map_addr = nullptr;
  size_t map_len = 0;
  MappingInfo info;
  // Page granularity: where page_persist tracks this mapping (page_persist.h).
  const void* tracked = nullptr;
  // FromMemory mappings: whatever keeps the memory alive.
  std::shared_ptr<void> owner;
  // Emulated mappings: bad ranges from "<path>.badblocks".
  mutable std::mutex bad_mu;
  std::vector<ByteRange> emulated_bad;
};

namespace map {
// Reads "<path>.badblocks" (absent: none). Lines: "offset length" in bytes.
Result<std::vector<ByteRange>> ReadEmulatedBadBlocks(Platform& p,
                                                     const std::string& path);
Status WriteEmulatedBadBlocks(Platform& p, const std::string& path,
                              const std::vector<ByteRange>& bad);
// [a) minus [b): zero, one or two pieces.
std::vector<ByteRange> Subtract(const ByteRange& a, const ByteRange& b);
bool Overlaps(const ByteRange& a, const ByteRange& b);
}  // namespace map

}  // namespace daxstore
