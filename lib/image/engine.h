// The in-memory engine behind daxstore::Image.
//
// Locks, always taken in this order (never two of one kind at once):
//   lane mutex -> stripe lock (of the virtual block) -> shared_ref_mu ->
//   group mutex (of a data block).
// - A lane (thread slot) owns one redo record and a scratch block.
// - A stripe lock guards map entries hashing to it: readers hold it shared
//   while they copy a block, so the block cannot be freed and reused under
//   them; writers hold it exclusive while they log, apply and clear.
// - shared_ref_mu is held from logging to clearing when the old block is
//   shared (ref > 1), so no two valid records ever touch one refcount.
// - A group mutex guards one group's in-memory free list. A group's free list
//   is built by scanning its refcounts the first time a lane allocates there;
//   a block is pushed back by the writer that drops its ref to 0, which holds
//   the group mutex from that store until the push, so a scan never sees a
//   block that is about to be pushed.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <vector>

#include "daxstore/image.h"
#include "daxstore/mapping.h"
#include "image/format.h"

namespace daxstore {

namespace image {

inline constexpr uint64_t kGroupBlocks = 4096;
inline constexpr size_t kStripes = 1024;

struct alignas(64) Lane {
  std::mutex mu;
  RedoRecord* record = nullptr;  // in pmem
  std::vector<uint8_t> scratch;  // one block
  uint64_t group = 0;            // where this lane allocates next
};

struct alignas(64) Stripe {
  std::shared_mutex mu;
};

struct alignas(64) Group {
  std::mutex mu;
  bool scanned = false;
  std::vector<uint64_t> free;  // descending: back() is the lowest block
};

}  // namespace image

struct Image::State {
  Mapping m;
  image::Superblock sb{};
  bool writable = true;
  uint32_t recovered = 0;
  uint64_t* map = nullptr;  // in pmem
  uint32_t* ref = nullptr;  // in pmem
  uint8_t* data = nullptr;  // in pmem
  std::unique_ptr<image::Lane[]> lanes;
  std::unique_ptr<image::Stripe[]> stripes;
  std::unique_ptr<image::Group[]> groups;
  uint64_t ngroups = 0;
  std::atomic<uint64_t> next_group{0};
  std::mutex shared_ref_mu;

  explicit State(Mapping mapping) : m(std::move(mapping)) {}

  uint64_t bs() const { return sb.block_size; }
  uint8_t* Block(uint64_t pba) const { return data + pba * sb.block_size; }
  image::Stripe& StripeOf(uint64_t lba) const {
    return stripes[(lba * 0x9e3779b97f4a7c15ull >> 32) % image::kStripes];
  }
  image::Lane& MyLane() const;

  uint64_t LoadEntry(uint64_t lba) const {
    return std::atomic_ref<uint64_t>(map[lba]).load(std::memory_order_acquire);
  }
  uint32_t LoadRef(uint64_t pba) const {
    return std::atomic_ref<uint32_t>(ref[pba]).load(std::memory_order_relaxed);
  }
  void StoreRef(uint64_t pba, uint32_t v) const {
    std::atomic_ref<uint32_t>(ref[pba]).store(v, std::memory_order_relaxed);
  }

  // Sets up pointers, lanes, stripes and groups from sb (no media access).
  void Attach();

  // --- alloc.cc ---
  // A free data block, now owned by the caller (ref still 0 on media).
  Result<uint64_t> Allocate(image::Lane& lane);
  // Returns an unpublished block to free space.
  void Release(uint64_t pba);
  // Forgets every free list (after Check repaired refcounts).
  void ResetFreeSpace();

  // --- commit.cc ---
  // Moves map[lba] from old_entry to new_entry (0: hole; otherwise a block
  // the caller allocated and persisted) through the lane's redo record.
  // Caller holds the lane and the stripe lock exclusive.
  Status Commit(image::Lane& lane, uint64_t lba, uint64_t old_entry,
                uint64_t new_entry);
  // Replays and clears every valid redo record (Open).
  Status Recover();
  // Checks that an entry is well formed and in range.
  Status ValidateEntry(uint64_t lba, uint64_t entry) const;
};

}  // namespace daxstore
