// The on-media format of a daxstore image. All integers little-endian, all
// offsets from the start of the mapping, every region 4 KiB aligned:
//
//   0                 superblock (primary), one 4 KiB page
//   lane_offset       redo records: one 256-byte slot per lane (an Optane
//                     XPLine, so lanes never share a line or a media buffer)
//   volume_offset     volume table, reserved for snapshots and clones
//                     (kMaxVolumes x 256-byte entries, zero today)
//   map_offset        block map: one 8-byte entry per virtual block
//   ref_offset        refcounts: one 4-byte count per data block
//   data_offset       data blocks, block_size each (aligned to block_size)
//   backup_offset     superblock backup: the last 4 KiB page of the mapping
//
// A map entry is 0 for a hole, or kEntryPresent | physical block number.
// Bits 48..62 are reserved and must be 0. Entries are published with one
// aligned 8-byte store, the only store x86 pmem keeps or loses whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "daxstore/image.h"
#include "daxstore/status.h"

namespace daxstore::image {

inline constexpr uint64_t kMagic = 0x31474d4958414444ull;  // "DDAXIMG1"
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kPage = 4096;
inline constexpr uint64_t kLaneSlot = 256;
inline constexpr uint32_t kMaxVolumes = 64;
inline constexpr uint64_t kVolumeEntry = 256;
inline constexpr uint32_t kMaxLanes = 1024;
inline constexpr uint64_t kEntryPresent = 1ull << 63;
inline constexpr uint64_t kEntryPbaMask = (1ull << 48) - 1;
inline constexpr uint64_t kEntryReserved = ~(kEntryPresent | kEntryPbaMask);
inline constexpr uint64_t kNoBlock = ~0ull;
inline constexpr uint64_t kRedoValid = 0x4f44455256494c41ull;  // "ALIVREDO"

struct Superblock {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size;  // sizeof(Superblock)
  uint64_t virtual_size;
  uint32_t logical_block_size;
  uint32_t block_size;
  uint64_t virtual_blocks;
  uint64_t data_blocks;
  uint32_t lanes;
  uint32_t max_volumes;
  uint64_t lane_offset;
  uint64_t volume_offset;
  uint64_t map_offset;
  uint64_t ref_offset;
  uint64_t data_offset;
  uint64_t backup_offset;
  uint64_t total_size;
  uint64_t reserved[16];  // zero; room for the volume-table generation etc.
  uint64_t checksum;      // Checksum of every byte before this field
};
static_assert(sizeof(Superblock) == 248);

// One lane's redo record, at the start of its slot. Values are absolute, so
// replaying a record twice is the same as replaying it once.
struct RedoRecord {
  uint64_t valid;          // kRedoValid: must be replayed; 0: nothing to do
  uint64_t seq;            // per-lane counter: consecutive records differ
  uint64_t lba;            // virtual block
  uint64_t old_entry;      // map[lba] before (0: hole)
  uint64_t new_entry;      // map[lba] after (0: hole)
  uint32_t ref_new;        // ref[new block] after (1), if new_entry is a block
  uint32_t ref_old_after;  // ref[old block] after, if old_entry is a block
  uint64_t reserved;
  uint64_t checksum;  // Checksum of the 56 bytes before this field; 0 when
                      // cleared, so a cleared record can never pass again
};
static_assert(sizeof(RedoRecord) == 64);

// FNV-1a, 64 bit.
uint64_t Checksum(const void* p, size_t n);

inline bool EntryPresent(uint64_t e) { return e & kEntryPresent; }
inline uint64_t EntryPba(uint64_t e) { return e & kEntryPbaMask; }
inline uint64_t MakeEntry(uint64_t pba) { return kEntryPresent | pba; }

// Computes every offset for `o` in a mapping of `available` bytes (0: the
// size the layout needs, with data_blocks = virtual blocks unless set).
Result<Superblock> ComputeLayout(const ImageOptions& o, uint64_t available);

// Checks magic, version, checksum and that every field is sane and every
// region lies inside `mapping_size` without overlapping. The message says
// which field is wrong.
Status ValidateSuperblock(const Superblock& sb, uint64_t mapping_size);

void SealSuperblock(Superblock& sb);  // sets checksum
void SealRecord(RedoRecord& r);       // sets checksum
bool RecordValid(const RedoRecord& r);

// Backup superblock position for a mapping of this size.
inline uint64_t BackupOffset(uint64_t mapping_size) {
  return (mapping_size / kPage) * kPage - kPage;
}

}  // namespace daxstore::image
