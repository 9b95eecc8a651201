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

Result<std::vector<Extent>> Image::Changes(const std::string& from) const {
  const State& s = *s_;
  int other;
  {
    std::shared_lock lock(s.vol_mu);
    other = s.FindVolume(from);
  }
  if (other < 0) {
    return NotFound("image " + s.m.info().path + " has no volume '" + from +
                    "'; list them with 'daxstore image list'");
  }
  const uint32_t o = static_cast<uint32_t>(other);
  const uint64_t bs = s.bs();
  std::vector<Extent> out;
  for (uint64_t lba = 0; lba < s.sb.virtual_blocks; lba++) {
    uint64_t mine, theirs;
    {
      std::shared_lock lock(s.StripeOf(vol_, lba).mu);
      mine = s.LoadEntry(vol_, lba);
    }
    {
      std::shared_lock lock(s.StripeOf(o, lba).mu);
      theirs = s.LoadEntry(o, lba);
    }
    DAXSTORE_RETURN_IF_ERROR(s.ValidateEntry(lba, mine));
    DAXSTORE_RETURN_IF_ERROR(s.ValidateEntry(lba, theirs));
    const bool here = image::EntryPresent(mine);
    const bool there = image::EntryPresent(theirs);
    if (here == there &&
        (!here || image::EntryPba(mine) == image::EntryPba(theirs))) {
      continue;
    }
    const bool hole = !here;
    if (!out.empty() && out.back().hole == hole &&
        out.back().offset + out.back().length == lba * bs) {
      out.back().length += bs;
    } else {
      out.push_back({lba * bs, bs, hole});
    }
  }
  // The last block may run past the virtual size.
  if (!out.empty() &&
      out.back().offset + out.back().length > s.sb.virtual_size) {
    out.back().length = s.sb.virtual_size - out.back().offset;
  }
  return out;
}

}  // namespace daxstore
