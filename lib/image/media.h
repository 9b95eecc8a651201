// Bad data blocks: blocks the mapping lists as bad (a pmem namespace's
// badblocks, an emulated namespace's list), or on which a read met poison
// (a SIGBUS, turned into an error by a guarded copy).
//
// What the engine does with them (lib/image/media.cc, io.cc, commit.cc):
//   - a read of a bad block fails that request with kIoError (EIO); the
//     process and every other block and volume keep working;
//   - a whole-block write over a bad block goes out of place, as every
//     write does; the bad block is then retired: its refcount becomes
//     kRefRetired (format.h), so the allocator never hands it out again. A
//     write of part of a bad block fails with EIO (the rest of the block
//     cannot be read);
//   - Open fails with kIoError when metadata lies on a listed bad range,
//     and retires every free data block the mapping lists as bad;
//   - Check lists the guest ranges, per volume, whose data lies on bad
//     blocks (CheckReport::media_errors).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace daxstore::image {

// The engine's set of bad data blocks; thread-safe. The data path asks
// any() first: a relaxed load of a flag that stays false on healthy media,
// so the common case costs one predictable branch.
class BadBlockSet {
 public:
  bool any() const { return any_.load(std::memory_order_relaxed); }
  bool Contains(uint64_t pba) const {
    std::lock_guard lock(mu_);
    return std::binary_search(pbas_.begin(), pbas_.end(), pba);
  }
  // Adds pba; true if it was not there yet.
  bool Add(uint64_t pba) {
    std::lock_guard lock(mu_);
    auto at = std::lower_bound(pbas_.begin(), pbas_.end(), pba);
    if (at != pbas_.end() && *at == pba) return false;
    pbas_.insert(at, pba);
    any_.store(true, std::memory_order_relaxed);
    return true;
  }
  // Every bad block, ascending.
  std::vector<uint64_t> List() const {
    std::lock_guard lock(mu_);
    return pbas_;
  }

 private:
  std::atomic<bool> any_{false};
  mutable std::mutex mu_;
  std::vector<uint64_t> pbas_;  // ascending
};

}  // namespace daxstore::image
