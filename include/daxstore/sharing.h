// Content sharing between the volumes of an image, in the terms of the
// studies of memory sharing between virtual machines (zero pages,
// self-sharing, inter-VM sharing): what Image::Sharing reports. The unit
// is the image's block (ImageInfo::block_size). docs/dedup.md explains
// each figure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace daxstore {

// The figures of one volume, or of every volume reported together.
struct SharingCounts {
  uint64_t virtual_blocks = 0;  // blocks of the virtual disk(s)
  uint64_t holes = 0;           // blocks with no data block (read as zeros)
  uint64_t mapped_blocks = 0;   // blocks with a data block
  // Mapped blocks whose data is all zeros (a dedup makes them holes).
  uint64_t zero_blocks = 0;
  // Mapped blocks whose data block another map entry also names (a
  // snapshot, a clone, or an earlier dedup shares it).
  uint64_t shared_blocks = 0;
  // Non-zero mapped blocks whose content appears earlier in the same
  // volume: the copies beyond the first, inside one volume.
  uint64_t self_sharing_blocks = 0;
  // Non-zero contents that are a volume's first copy but that an earlier
  // volume (in the report's order) holds too: the copies beyond the first
  // across volumes, once duplicates inside each volume are set aside.
  uint64_t inter_volume_blocks = 0;
  // Non-zero contents no other block of the volume(s) holds before it
  // (the blocks that would remain if everything equal were one block).
  uint64_t distinct_blocks = 0;
  // Mapped blocks on bad media: not read, counted nowhere else.
  uint64_t unreadable_blocks = 0;
  // Data blocks `image dedup` would free with --scope volume and with
  // --scope group (zero blocks becoming holes included).
  uint64_t dedup_volume_blocks = 0;
  uint64_t dedup_group_blocks = 0;
};

struct VolumeSharing {
  std::string name;
  std::string group;  // its sharing group ("" : the volume only)
  SharingCounts counts;
};

// What Image::Dedup may share: blocks inside each volume, or also between
// the volumes of one sharing group.
enum class DedupScope { kVolume, kGroup };

struct DedupReport {
  uint64_t remapped_blocks = 0;  // map entries moved onto an equal block
  uint64_t zero_blocks = 0;      // zero blocks made holes
  uint64_t freed_blocks = 0;     // data blocks freed
  // Duplicates left alone because a write changed them (or their target)
  // after the scan hashed them, or they sat on bad media.
  uint64_t skipped_blocks = 0;
};

struct SharingReport {
  uint32_t block_size = 0;
  std::vector<VolumeSharing> volumes;  // in slot order
  // Sums over the volumes, except: distinct_blocks counts contents over
  // every volume at once, and shared_blocks counts map entries (a block
  // two volumes share counts twice).
  SharingCounts total;
  // Data blocks that hold the mapped blocks of the volumes reported.
  uint64_t data_blocks_used = 0;
};

}  // namespace daxstore
