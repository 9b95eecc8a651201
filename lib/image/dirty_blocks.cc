// DirtyBlocks (include/daxstore/dirty_blocks.h): one bit per block in
// atomic words; Take exchanges each non-zero word with 0.
#include "daxstore/dirty_blocks.h"

#include <algorithm>
#include <bit>

namespace daxstore {

DirtyBlocks::DirtyBlocks(uint64_t blocks)
    : blocks_(blocks),
      words_((blocks + 63) / 64),
      bits_(new std::atomic<uint64_t>[words_]) {
  for (uint64_t i = 0; i < words_; i++) {
    bits_[i].store(0, std::memory_order_relaxed);
  }
}

void DirtyBlocks::Mark(uint64_t first, uint64_t last) {
  if (last > blocks_) last = blocks_;
  while (first < last) {
    const uint64_t w = first / 64;
    const uint64_t lo = first % 64;
    const uint64_t n = std::min<uint64_t>(64 - lo, last - first);
    const uint64_t mask =
        n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1) << lo;
    // Release: the writer's data is published before its mark is seen. An
    // RMW always (no load first): a stale load could see a mark a Take has
    // just taken, before the write it stands for had landed.
    bits_[w].fetch_or(mask, std::memory_order_release);
    first += n;
  }
}

std::vector<uint64_t> DirtyBlocks::Take() {
  std::vector<uint64_t> out;
  for (uint64_t w = 0; w < words_; w++) {
    if (bits_[w].load(std::memory_order_relaxed) == 0) continue;
    uint64_t v = bits_[w].exchange(0, std::memory_order_acquire);
    while (v) {
      out.push_back(w * 64 + static_cast<uint64_t>(std::countr_zero(v)));
      v &= v - 1;
    }
  }
  return out;
}

uint64_t DirtyBlocks::Count() const {
  uint64_t n = 0;
  for (uint64_t w = 0; w < words_; w++) {
    n += static_cast<uint64_t>(
        std::popcount(bits_[w].load(std::memory_order_relaxed)));
  }
  return n;
}

}  // namespace daxstore
