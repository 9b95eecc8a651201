// Free space: per-group free lists built lazily from the refcounts, so that
// opening an image never scans the refcount table.
#include <algorithm>
#include <thread>
#include <utility>

#include "image/engine.h"

namespace daxstore {

using image::Group;
using image::kGroupBlocks;
using image::Lane;

// Passes over busy lanes before a write calls the image full.
constexpr int kBusyLaneRounds = 10000;

namespace {

// Caller holds g.mu.
void Scan(const Image::State& s, uint64_t gi, Group& g) {
  uint64_t lo = gi * kGroupBlocks;
  uint64_t hi = std::min(s.sb.data_blocks, lo + kGroupBlocks);
  g.free.clear();
  for (uint64_t pba = hi; pba-- > lo;) {
    if (s.LoadRef(pba) == 0) g.free.push_back(pba);
  }
  g.scanned = true;
}

// Pops a free block of group gi, or returns kNoBlock.
uint64_t TakeFrom(const Image::State& s, uint64_t gi) {
  Group& g = s.groups[gi];
  std::lock_guard lock(g.mu);
  if (!g.scanned) Scan(s, gi, g);
  if (g.free.empty()) return image::kNoBlock;
  uint64_t pba = g.free.back();
  g.free.pop_back();
  return pba;
}

}  // namespace

Result<uint64_t> Image::State::Allocate(Lane& lane) {
  for (;;) {
    DAXSTORE_ASSIGN_OR_RETURN(uint64_t pba, TakeFree(lane));
    // A free block a read found poisoned (or Open could not retire) is
    // retired here rather than handed out.
    if (!bad.any() || !bad.Contains(pba)) [[likely]]
      return pba;
    RetireBlock(pba);
  }
}

Result<uint64_t> Image::State::TakeFree(Lane& lane) {
  if (lane.spare != image::kNoBlock) {
    return std::exchange(lane.spare, image::kNoBlock);
  }
  // Stay in the lane's group while it has space, then move to the next
  // group nobody has claimed yet; lanes thus fill different groups.
  for (uint64_t tries = 0; tries <= ngroups; tries++) {
    uint64_t pba = TakeFrom(*this, lane.group);
    if (pba != image::kNoBlock) return pba;
    lane.group = next_group.fetch_add(1, std::memory_order_relaxed) % ngroups;
  }
  // Other lanes moved the cursor under us: sweep every group once.
  for (uint64_t gi = 0; gi < ngroups; gi++) {
    uint64_t pba = TakeFrom(*this, gi);
    if (pba != image::kNoBlock) {
      lane.group = gi;
      return pba;
    }
  }
  // Blocks this lane's valid records freed: retiring them frees the
  // blocks (two fences; only on an image otherwise full).
  if (lane.held[0] != image::kNoBlock || lane.held[1] != image::kNoBlock) {
    Retire(lane);
    if (lane.spare != image::kNoBlock) {
      return std::exchange(lane.spare, image::kNoBlock);
    }
  }
  // Last, another lane's spare or held blocks. try_lock: the caller holds
  // its own lane (and maybe a stripe lock), so waiting here could
  // deadlock. A lane that is busy may be the one holding the free blocks
  // (a write holds its lane for microseconds): try again, yielding, before
  // calling the image full.
  for (int round = 0; round < kBusyLaneRounds; round++) {
    bool busy = false;
    for (uint32_t i = 0; i < sb.lanes; i++) {
      Lane& other = lanes[i];
      if (&other == &lane) continue;
      std::unique_lock lock(other.mu, std::try_to_lock);
      if (!lock) {
        busy = true;
        continue;
      }
      if (other.spare == image::kNoBlock && other.held[0] == image::kNoBlock &&
          other.held[1] == image::kNoBlock) {
        continue;
      }
      // Its kept records are cleared (durably) before a block changes
      // hands; that frees its held blocks too.
      Retire(other);
      if (other.spare != image::kNoBlock) {
        return std::exchange(other.spare, image::kNoBlock);
      }
    }
    if (!busy) break;
    std::this_thread::yield();
  }
  return NoSpace("image " + m.info().path + ": all " +
                 std::to_string(sb.data_blocks) + " data blocks are in use");
}

void Image::State::Release(uint64_t pba) {
  Group& g = groups[pba / kGroupBlocks];
  std::lock_guard lock(g.mu);
  // An unscanned group finds the block itself when it is scanned.
  if (g.scanned) g.free.push_back(pba);
}

void Image::State::GiveBack(Lane& lane, uint64_t pba) {
  if (lane.spare == image::kNoBlock) {
    lane.spare = pba;
  } else {
    Release(pba);
  }
}

void Image::State::ReleaseHeld(Lane& lane, uint32_t k) {
  // The record in slot k is gone from media (cleared or overwritten,
  // durably) before a remap may change its new block's refcount.
  lane.fresh[k].store(image::kNoBlock, std::memory_order_release);
  const uint64_t pba = std::exchange(lane.held[k], image::kNoBlock);
  if (pba != image::kNoBlock) GiveBack(lane, pba);
}

void Image::State::ResetFreeSpace() {
  // Spares become ordinary free blocks that a scan finds, so no record
  // may name them any more.
  RetireAll();
  for (uint32_t i = 0; i < sb.lanes; i++) {
    lanes[i].spare = image::kNoBlock;
    for (uint64_t& h : lanes[i].held) h = image::kNoBlock;
  }
  for (uint64_t gi = 0; gi < ngroups; gi++) {
    std::lock_guard lock(groups[gi].mu);
    groups[gi].scanned = false;
    groups[gi].free.clear();
    groups[gi].free.shrink_to_fit();
  }
}

}  // namespace daxstore
