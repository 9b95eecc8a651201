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
#include <memory>
#include <mutex>
#include <vector>

namespace daxstore::image {

// The engine's set of bad data blocks; thread-safe. The data path asks
// any() first: a relaxed load of a pointer that stays null on healthy
// media, so the common case costs one predictable branch. Reads of a
// degraded image take no lock either: the set is an immutable sorted list
// that Add replaces (old lists live as long as the set, since a reader may
// still search one; bad blocks are few and are added in one batch at Open).
class BadBlockSet {
 public:
  bool any() const { return list_.load(std::memory_order_relaxed) != nullptr; }
  bool Contains(uint64_t pba) const {
    const Blocks* l = list_.load(std::memory_order_acquire);
    return l && std::binary_search(l->begin(), l->end(), pba);
  }
  // Adds every block of `pbas`; returns how many were new.
  size_t Add(const std::vector<uint64_t>& pbas) {
    std::lock_guard lock(mu_);
    const Blocks* old = list_.load(std::memory_order_relaxed);
    auto next = std::make_unique<Blocks>(old ? *old : Blocks{});
    next->insert(next->end(), pbas.begin(), pbas.end());
    std::sort(next->begin(), next->end());
    next->erase(std::unique(next->begin(), next->end()), next->end());
    const size_t added = next->size() - (old ? old->size() : 0);
    if (added == 0) return 0;
    // The list's content is visible before the pointer to it.
    list_.store(next.get(), std::memory_order_release);
    versions_.push_back(std::move(next));
    return added;
  }
  size_t Add(uint64_t pba) {
    if (Contains(pba)) return 0;
    return Add(std::vector<uint64_t>{pba});
  }
  // Every bad block, ascending.
  std::vector<uint64_t> List() const {
    const auto* l = list_.load(std::memory_order_acquire);
    return l ? *l : std::vector<uint64_t>{};
  }

 private:
  using Blocks = std::vector<uint64_t>;
  std::atomic<const Blocks*> list_{nullptr};
  std::mutex mu_;
  std::vector<std::unique_ptr<Blocks>> versions_;  // every list ever published
};

}  // namespace daxstore::image
