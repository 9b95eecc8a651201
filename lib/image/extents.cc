// The allocation map: which ranges of the virtual disk are holes.
#include <algorithm>
#include <shared_mutex>

#include "image/engine.h"

namespace daxstore {

Result<std::vector<Extent>> Image::Extents(uint64_t offset, uint64_t n,
                                           size_t max_extents) const {
  const State& s = *s_;
  if (offset > s.sb.virtual_size || n > s.sb.virtual_size - offset) {
    return InvalidArgument("extents at " + std::to_string(offset) + "+" +
                           std::to_string(n) + " are beyond the " +
                           std::to_string(s.sb.virtual_size) +
                           "-byte virtual size of " + s.m.info().path);
  }
  std::vector<Extent> out;
  if (max_extents == 0) return out;
  const uint64_t bs = s.bs();
  const uint64_t end = offset + n;
  while (offset < end) {
    uint64_t lba = offset / bs;
    uint64_t len = std::min(end, (lba + 1) * bs) - offset;
    uint64_t e;
    {
      // Shared, like a read: the entry is published, not half-committed.
      std::shared_lock lock(s.StripeOf(vol_, lba).mu);
      e = s.LoadEntry(vol_, lba);
    }
    DAXSTORE_RETURN_IF_ERROR(s.ValidateEntry(lba, e));
    bool hole = !image::EntryPresent(e);
    if (!out.empty() && out.back().hole == hole) {
      out.back().length += len;
    } else {
      if (out.size() == max_extents) break;
      out.push_back({offset, len, hole});
    }
    offset += len;
  }
  return out;
}

}  // namespace daxstore
