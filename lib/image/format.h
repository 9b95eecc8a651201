// The on-media format of a daxstore image. All integers little-endian, all
// offsets from the start of the mapping, every region 4 KiB aligned:
//
//   0                 superblock (primary), one 4 KiB page
//   lane_offset       redo records: one 256-byte slot per lane (an Optane
//                     XPLine, so lanes never share a line or a media buffer)
//   volume_offset     volume table: kMaxVolumes x 256-byte VolumeEntry
//                     (entry i owns map slot i), then one 256-byte
//                     VolumeIntent, then one 256-byte staged VolumeEntry
//                     (a rewrite's new entry; all zero in images that
//                     never had one)
//   map_offset        block maps: max_volumes slots (set at create time,
//                     default 2), each one 8-byte entry per virtual block,
//                     page aligned (map_slot_bytes apart)
//   ref_offset        refcounts: one 4-byte count per data block
//                     (kRefRetired: a block on bad media, never used again)
//   data_offset       data blocks, block_size each (aligned to block_size)
//   backup_offset     superblock backup: the last 4 KiB page of the mapping
//
// A map entry is 0 for a hole, or kEntryPresent | physical block number.
// Bits 48..62 are reserved and must be 0. Entries are published with one
// aligned 8-byte store, the only store x86 pmem keeps or loses whole.
//
// Volumes (version 2). A refcount is the number of map entries, over every
// live volume, that point at the block; a snapshot or clone copies a map
// and adds one to the refcount of every block it names, so volumes share
// blocks and writes go copy-on-write (they always go out of place anyway).
// Volume operations (create a snapshot/clone in slot d, delete volume d)
// are crash-atomic through the VolumeIntent:
//   1. write the intent {valid, slot d}, persist;
//   2. create: copy the map into slot d and bump refcounts, persist; write
//      entry d, persist.  delete: zero entry d, persist; decrement the
//      refcounts of its blocks, persist;
//   3. clear the intent, persist.
// Rewriting a live entry in place (its sharing group) goes through the
// staged entry instead, as a 256-byte entry cannot be stored atomically:
//   1. write the new entry into the staged slot, persist;
//   2. write the intent {kIntentRewrite, slot d}, persist;
//   3. copy the staged entry over entry d, persist;
//   4. clear the intent, persist.
// Recovery with a valid rewrite intent redoes step 3 and clears the
// intent. A rewrite touches no map or refcount, so writes go on meanwhile
// and its intent may coexist with redo records. A reader that predates
// kIntentRewrite takes such an intent for a torn one and clears it,
// keeping entry d as it finds it (the old or the new entry, unless the
// crash tore step 3).
// Recovery (Open) with a valid intent zeroes entry d (rolling a create back
// and a delete forward), recounts every refcount from the maps of the live
// volumes, and clears the intent: idempotent, so a crash during recovery
// is harmless. Only this case costs O(virtual blocks x volumes) at Open;
// ordinary crashes replay lane records only. A write holds its lane for
// the whole write and volume operations hold every lane (after retiring
// kept records), so a valid intent and a valid redo record never coexist.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daxstore/image.h"
#include "daxstore/status.h"

namespace daxstore::image {

inline constexpr uint64_t kMagic = 0x31474d4958414444ull;  // "DDAXIMG1"
// Version 3 changed only how redo records are used (lib/image/commit.cc:
// records may stay valid, and recovery redoes or undoes them by the map
// entry), so that a version-2 reader cannot misread a version-3 crash
// image. Version 4 changed only the redo record's checksum (RecordChecksum:
// FNV-1a, a byte at a time, was ~9% of a 4 KiB write). Older images open as
// they are (their records checked the old way) and are upgraded in place by
// the first read-write open, after its recovery. Version 5 is the one-fence
// commit (lib/image/commit.cc): two record slots per lane, the data's
// CRC32C in each record, and the map update of a write made durable by
// the lane's next fence; recovery redoes every complete record.
inline constexpr uint32_t kVersion = 5;
// The first version whose records carry a data checksum and a second slot.
inline constexpr uint32_t kOneFenceVersion = 5;
inline constexpr uint32_t kOldestVersion = 2;
inline constexpr uint64_t kPage = 4096;
inline constexpr uint64_t kLaneSlot = 256;
inline constexpr uint32_t kMaxVolumes = 64;
inline constexpr uint64_t kVolumeEntry = 256;
inline constexpr uint32_t kMaxLanes = 1024;
inline constexpr uint64_t kEntryPresent = 1ull << 63;
inline constexpr uint64_t kEntryPbaMask = (1ull << 48) - 1;
inline constexpr uint64_t kEntryReserved = ~(kEntryPresent | kEntryPbaMask);
inline constexpr uint64_t kNoBlock = ~0ull;
// The refcount of a retired data block (lib/image/media.h): a free block on
// bad media that no allocation hands out. Real counts stay far below it
// (CopyVolume refuses to reach UINT32_MAX - 1). It needs no new version: a
// reader that predates it allocates only blocks whose count is 0, so it
// skips the block too; its check calls the block leaked and its repair
// returns the block to use.
inline constexpr uint32_t kRefRetired = 0xffffffffu;
inline constexpr uint64_t kRedoValid = 0x4f44455256494c41ull;      // "ALIVREDO"
inline constexpr uint64_t kVolumeLive = 0x454d554c4f564c41ull;     // "ALVOLUME"
inline constexpr uint64_t kIntentValid = 0x544e45544e49564full;    // "OVINTENT"
inline constexpr uint64_t kIntentRewrite = 0x5752455449525756ull;  // "VWRITERW"
inline constexpr uint32_t kVolumeSnapshot = 1;  // VolumeEntry::flags
inline constexpr size_t kNameMax = 63;          // bytes of a volume name
// Superblock::flags. kFlagCorrupt: a write met an inconsistency it could
// see (lib/image/corrupt.cc); writes are refused until Check repairs the
// image and clears it. The word was reserved (always 0), so it needs no
// new version: a reader that predates it ignores it.
inline constexpr uint64_t kFlagCorrupt = 1;

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
  uint32_t max_volumes;  // map slots, 1 to kMaxVolumes
  uint64_t lane_offset;
  uint64_t volume_offset;
  uint64_t map_offset;
  uint64_t ref_offset;
  uint64_t data_offset;
  uint64_t backup_offset;
  uint64_t total_size;
  uint64_t map_slot_bytes;  // distance between two volumes' maps
  uint64_t flags;           // kFlagCorrupt; other bits 0 (was reserved)
  uint64_t reserved[14];    // zero
  uint64_t checksum;        // Checksum of every byte before this field
};
static_assert(sizeof(Superblock) == 248);
static_assert(offsetof(Superblock, flags) == 120);

// One lane's redo record, at the start of its slot. Values are absolute, so
// replaying a record twice is the same as replaying it once. Version 3:
// recovery redoes or undoes a record by what map[lba] holds, and a record
// may stay valid after its write completed (lib/image/commit.cc).
struct RedoRecord {
  uint64_t valid;          // kRedoValid: must be replayed; 0: nothing to do
  uint64_t seq;            // per-lane counter: consecutive records differ
  uint64_t lba;            // virtual block
  uint64_t old_entry;      // map[lba] before (0: hole)
  uint64_t new_entry;      // map[lba] after (0: hole)
  uint32_t ref_new;        // ref[new block] after (1), if new_entry is a block
  uint32_t ref_old_after;  // ref[old block] after, if old_entry is a block
  // Bits 0-31: map slot of the volume written. Version 5, bits 32-63: the
  // CRC32C of new_entry's block (RecordCrc), 0 when new_entry is a hole.
  uint64_t volume;
  uint64_t checksum;  // RecordChecksum of the 56 bytes before this field;
                      // 0 when cleared, so it can never pass again
};
static_assert(sizeof(RedoRecord) == 64);
// Version 5: each lane slot holds kLaneRecords records, the one of
// sequence number q at index q % kLaneRecords.
inline constexpr uint32_t kLaneRecords = 2;
static_assert(kLaneRecords * sizeof(RedoRecord) <= kLaneSlot);
inline uint32_t RecordSlot(const RedoRecord& r) {
  return static_cast<uint32_t>(r.volume);
}
inline uint32_t RecordCrc(const RedoRecord& r) {
  return static_cast<uint32_t>(r.volume >> 32);
}

// One volume, at volume_offset + slot * kVolumeEntry. All zero: free.
struct VolumeEntry {
  uint64_t state;  // kVolumeLive or 0
  uint32_t flags;  // kVolumeSnapshot
  uint32_t reserved0;
  uint64_t created_unix_ns;
  char name[kNameMax + 1];    // NUL-terminated
  char parent[kNameMax + 1];  // NUL-terminated; "" for the first volume
  // NUL-terminated sharing group; "" (all zero, as in images made before
  // groups, whose readers ignore it): the volume shares content with no
  // other volume.
  char group[kNameMax + 1];
  uint64_t reserved[4];
  uint64_t checksum;  // Checksum of every byte before this field
};
static_assert(sizeof(VolumeEntry) == kVolumeEntry);
static_assert(offsetof(VolumeEntry, group) == 152);

// The volume operation in progress, at volume_offset + kMaxVolumes *
// kVolumeEntry. See "Volumes" above.
struct VolumeIntent {
  uint64_t valid;  // kIntentValid, kIntentRewrite or 0
  uint64_t seq;
  uint64_t slot;  // the volume table entry that changes
  uint64_t reserved[4];
  uint64_t checksum;  // of the 56 bytes before; 0 when cleared
};
static_assert(sizeof(VolumeIntent) == 64);

// FNV-1a, 64 bit.
uint64_t Checksum(const void* p, size_t n);
// A redo record's checksum as format `version` computes it: from version 4
// a word-at-a-time hash of its first seven words (any one word changed
// always changes it), before that Checksum.
uint64_t RecordChecksum(const RedoRecord& r, uint32_t version);

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
void SealRecord(RedoRecord& r);       // sets checksum (this version's)
bool RecordValid(const RedoRecord& r, uint32_t version);
void SealVolume(VolumeEntry& v);
bool VolumeValid(const VolumeEntry& v);  // live and sealed
// Every byte of the entry is 0: a free slot.
bool VolumeFree(const VolumeEntry& v);
// A volume name as the format allows it: 1 to kNameMax bytes of
// [A-Za-z0-9._-], not "." or "..". Names read from media are checked too.
bool ValidVolumeName(std::string_view n);
// What is wrong with the non-free entry of `slot` ("" when it is a sound,
// live volume of an image with `max_volumes` slots): a bad state or
// checksum, a slot past max_volumes, a name or parent the format forbids.
std::string VolumeEntryProblem(const VolumeEntry& v, uint32_t slot,
                               uint32_t max_volumes);
// A string of up to n bytes read from media, printable whatever it holds:
// bytes outside '!'..'~' and the backslash become \xHH.
std::string Printable(const char* p, size_t n);
void SealIntent(VolumeIntent& i);
bool IntentValid(const VolumeIntent& i);    // a sealed create/delete intent
bool IntentRewrite(const VolumeIntent& i);  // a sealed rewrite intent

// Backup superblock position for a mapping of this size.
inline uint64_t BackupOffset(uint64_t mapping_size) {
  return (mapping_size / kPage) * kPage - kPage;
}

}  // namespace daxstore::image
