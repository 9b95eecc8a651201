// A dirty bitmap of one volume's blocks: Image::TrackWrites attaches one,
// and from then on every write, write-zeroes and discard of that volume
// marks the blocks it touched before it returns. A mirror takes the marks
// and copies those blocks again.
//
// Thread safety: Mark, Take and Count may run on any threads at once. A
// block marked before a Take began is in that Take's result or a later
// one's; a mark is never lost, and a block is never returned twice for one
// mark.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace daxstore {

class DirtyBlocks {
 public:
  explicit DirtyBlocks(uint64_t blocks);

  uint64_t blocks() const { return blocks_; }
  // Marks blocks [first, last); last is capped at blocks().
  void Mark(uint64_t first, uint64_t last);
  // The marked blocks in ascending order, unmarked as they are taken.
  std::vector<uint64_t> Take();
  // How many blocks are marked now (a snapshot while writers run).
  uint64_t Count() const;

 private:
  uint64_t blocks_;
  uint64_t words_;
  std::unique_ptr<std::atomic<uint64_t>[]> bits_;
};

}  // namespace daxstore
