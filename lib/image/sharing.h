// Content classes of data blocks, shared by the sharing report
// (sharing.cc) and dedup (dedup.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "image/engine.h"

namespace daxstore::image {

inline constexpr uint32_t kNoClass = ~0u;        // a hole (or a bad entry)
inline constexpr uint32_t kZeroClass = ~0u - 1;  // all zeros
inline constexpr uint32_t kBadClass = ~0u - 2;   // on bad media: unread

// Gives every data block a content class: blocks of one class hold the
// same bytes (an XXH3-128 match confirmed by a byte comparison). Each data
// block is read once; later map entries naming it reuse its class.
class ContentIndex {
 public:
  explicit ContentIndex(const Image::State& s);
  ~ContentIndex();
  ContentIndex(const ContentIndex&) = delete;
  ContentIndex& operator=(const ContentIndex&) = delete;

  // The class of block lba of volume `slot` (kNoClass for a hole), the map
  // entry the class belongs to in *entry. Reads as Image::Read does, so it
  // may run while other threads write.
  uint32_t ClassOf(uint32_t slot, uint64_t lba, uint64_t* entry);

 private:
  struct Buckets;
  uint32_t Classify(uint64_t pba, const uint8_t* data);

  const Image::State& s_;
  std::vector<uint8_t> buf_, other_;
  uint64_t zero_lo_ = 0, zero_hi_ = 0;  // XXH3-128 of a zero block
  std::unique_ptr<Buckets> buckets_;
  std::vector<uint64_t> reps_;                       // by class
  std::unordered_map<uint64_t, uint32_t> class_of_;  // data block -> class
};

// Called, when set, before a dedup pass (Image::Dedup) scans each block
// and before each remap, holding of the pass's locks only dedup_mu and a
// shared vol_mu, which no guest write takes: the crash test issues guest
// writes there, interleaving them with the pass deterministically on one
// thread. Set only while no pass runs.
extern std::function<void()> dedup_step_hook;

}  // namespace daxstore::image
