// A pmem-native virtual disk image over any Mapping (devdax, a file on an
// fsdax filesystem, an emulated namespace, an ordinary file).
//
// Guarantees (each one is tested under the power-failure simulator):
//   - a write of one logical block is atomic under power failure: after a
//     crash the block holds the old or the new content, never a mix. (Writes
//     go out of place, a whole block at a time, and are published by one
//     8-byte atomic store of the block-map entry.)
//   - every call returns only once its effect is durable, so a completed
//     Flush makes every write completed before it durable (Flush itself is
//     only a fence);
//   - a write that was never acknowledged may be lost, but never corrupts
//     another block;
//   - opening after a crash replays at most one redo record per lane: its
//     cost depends on the number of lanes, not on the image size. Free space
//     is found lazily, one group of 4096 blocks at a time, the first time a
//     lane allocates from that group, so Open never scans the refcount table.
//     The first write or volume operation after a read-write Open reads
//     every volume's map and the refcounts once (O(virtual blocks x volumes
//     + data blocks), one byte per data block of memory meanwhile) to make
//     sure no refcount is lower than the map entries naming its block.
//
// Thin provisioning: unwritten blocks read as zeros and take no data block;
// a write whose block ends up all zeros is stored as a hole (QEMU's
// detect-zeroes=unmap); Discard and WriteZeroes return blocks to free space.
//
// On-media layout: see lib/image/format.h and docs/design/image-format.md.
//
// Volumes: an image holds up to ImageOptions::max_volumes volumes, each a
// virtual disk of the same size with its own block map. Create makes the
// default volume "base". Snapshot freezes a read-only, named copy of a
// volume; Clone makes a writable child of a snapshot. They share data
// blocks copy-on-write (a refcount per block), so twenty clones of one
// golden image cost only the blocks each one rewrites. Snapshot, Clone and
// DeleteVolume copy or walk one map (O(virtual blocks)) and are atomic
// under power failure (lib/image/format.h, "Volumes"). One process owns an
// image at a time (an exclusive lock, shared for read-only opens); it
// serves several volumes through OpenVolume handles sharing one engine.
//
// Thread safety: Read, Write, Readv, Writev, Discard, WriteZeroes, Flush and
// Info may be called from many threads at once; writes to different blocks
// do not share a lock. Check must not run concurrently with any other call.
// Moving or destroying an Image must not race with any call.
//
// Failure: a failed call returns a Status and leaves the image consistent;
// a failed write may have written any subset of its blocks, each one wholly.
//
// Corruption met by a write: a write (or volume operation) that finds the
// metadata inconsistent where it looks (a map entry past the data blocks,
// a mapped block whose refcount says free, a refcount lower than the map
// entries naming its block) changes nothing, fails with kCorruption
// (EUCLEAN), and flags the image corrupt on media. From then on every
// open of the image refuses writes and volume operations with kCorruption
// naming 'daxstore image check --repair=all' (read_only() is true; reads
// work); a repair that leaves the image consistent clears the flag. The
// first write or volume operation after a read-write Open compares every
// refcount with the map entries naming its block (above), and fails as
// above if one is lower: so no write frees, or takes as a new block, a
// data block that another volume maps.
//
// Media errors (bad blocks of pmem, listed by the kernel or met as poison):
//   - a read touching a block whose data lies on a bad block fails with
//     kIoError, sys_errno EIO, naming the guest byte range; the process and
//     every other block and volume keep working;
//   - a write of a whole block over a bad block succeeds and the block
//     reads back; the bad data block is retired and never used again;
//   - a write of part of such a block fails with kIoError (EIO): the rest
//     of the block cannot be read, and daxstore does not invent it. Write
//     the whole block (block_size bytes, aligned) to replace it;
//   - Open fails with kIoError when metadata lies on a bad block;
//   - Check lists the affected guest ranges (CheckReport::media_errors).
// Poison the kernel has not listed yet is found when a read meets it, in
// data blocks, the superblocks, the redo records and the volume table;
// block maps and refcounts are checked against the listed ranges only.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "daxstore/dirty_blocks.h"
#include "daxstore/mapping.h"
#include "daxstore/sharing.h"
#include "daxstore/status.h"

namespace daxstore {

struct ImageOptions {
  uint64_t virtual_size = 0;          // bytes, a multiple of logical_block_size
  uint32_t logical_block_size = 512;  // 512 or 4096
  uint32_t block_size = 4096;         // power of two, 4 KiB to 2 MiB
  uint32_t lanes = 64;                // redo-record slots, 1 to 1024
  // Volumes (the base volume, snapshots, clones) the image can hold at
  // once, 1 to 64. Each one reserves a block map of 8 bytes per virtual
  // block (0.2% of the virtual size at 4 KiB blocks) at create time, and
  // on a path the refcounts of its share of data blocks (0.1%); the
  // default 2 (base + one snapshot) keeps metadata at 0.6%.
  uint32_t max_volumes = 2;
  // Physical data blocks. 0: on a path (Create), the virtual blocks times
  // max_volumes plus one spare per lane, so every volume can be rewritten
  // whole (a sparse file only takes what is written); on a Mapping
  // (Format), as many as fit.
  uint64_t data_blocks = 0;
  // Whether the image may promise more than its data blocks hold (thin
  // provisioning beyond the medium: writes that need a new block then
  // fail with kNoSpace once the blocks run out). False: Format and Create
  // fail with kNoSpace, before writing anything, when the data blocks
  // cannot hold every virtual block.
  bool allow_overcommit = true;
};

struct ImageInfo {
  std::string path;
  uint64_t virtual_size = 0;
  uint32_t logical_block_size = 0;
  uint32_t block_size = 0;
  uint64_t virtual_blocks = 0;
  uint64_t data_blocks = 0;       // physical capacity, in blocks
  uint64_t allocated_blocks = 0;  // data blocks in use
  uint64_t allocated_bytes = 0;   // allocated_blocks * block_size
  uint64_t retired_blocks = 0;    // on bad media: never used again
  uint64_t metadata_bytes = 0;    // everything that is not a data block
  uint32_t lanes = 0;
  uint32_t recovered_records = 0;  // redo records replayed by Open
  uint32_t max_volumes = 0;        // volume slots of the image
  uint32_t volumes = 0;            // live volumes (base, snapshots, clones)
  // Volume table entries that are damaged (Image::Volumes lists them):
  // they cannot be opened; Check reports them and CheckRepair::kAll drops
  // them.
  uint32_t damaged_volumes = 0;
  // The image is flagged corrupt (Image::read_only): writes fail with
  // kCorruption until 'daxstore image check --repair=all' clears it.
  bool corrupt = false;
  uint64_t free_blocks() const {
    return data_blocks - allocated_blocks - retired_blocks;
  }
  // The virtual size exceeds what the data blocks can hold.
  bool overcommitted() const { return data_blocks < virtual_blocks; }
};

struct VolumeInfo {
  std::string name;
  bool snapshot = false;  // read-only
  // For a clone: the snapshot it came from; for a snapshot: the volume it
  // was taken of; "" for the first volume.
  std::string parent;
  // Its sharing group ("": the volume alone; Image::SetSharingGroup).
  std::string group;
  uint64_t created_unix_ns = 0;
  uint64_t mapped_blocks = 0;  // non-hole entries in this volume's map
  uint64_t unique_blocks = 0;  // blocks only this volume references
  // The volume table entry is damaged (bad checksum, a name the format
  // forbids, ...): the volume cannot be opened; `damage` says what is
  // wrong, `name` shows the stored bytes with anything outside '!'..'~'
  // as \xHH, and the other fields are empty.
  bool damaged = false;
  std::string damage;
};

// A run of the virtual disk with one allocation state.
struct Extent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool hole = false;  // true: no data block; reads as zeros
};

// How much Image::Check may change (qemu-img check's -r leaks / -r all).
enum class CheckRepair {
  kNone,  // report only; writes nothing
  // Fixes what loses nothing: leaked refcounts (only while no map entry is
  // damaged: a damaged entry's data may be in a leaked block), a stale
  // backup superblock, leftover redo records and volume intents. Guest-
  // visible data never changes.
  kLeaks,
  // Also what may lose data: damaged map entries become holes (each one
  // listed in CheckReport::dropped) and refcounts lower than the entries
  // naming their block are raised.
  kAll,
};

// Guest LBAs (in logical blocks, ImageInfo::logical_block_size) of one
// volume: [lba, lba + count).
struct LbaRange {
  std::string volume;
  uint64_t lba = 0;
  uint64_t count = 0;
  bool operator==(const LbaRange&) const = default;
};

// A redo record a crash left, as Image::CheckReadOnly sees it: what
// recovery (the next read-write open) will do with it. Either way the
// guest keeps reading what it reads now.
struct PendingRecord {
  uint32_t lane = 0;
  LbaRange range;  // the block the interrupted write moved
  // "redo": the write reached the block map, its data stays; "undo": it
  // did not, the old data stays; "none": a later write decided the block.
  std::string action;
};

// Guest bytes [offset, offset + length) of a volume whose data lies on bad
// blocks: reads there fail with EIO until the range is rewritten (whole
// blocks) or restored from a backup.
struct BadRange {
  std::string volume;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const BadRange&) const = default;
};

// A volume table entry Check found damaged (VolumeInfo::damaged).
struct DamagedVolume {
  uint32_t slot = 0;
  std::string name;    // as VolumeInfo::name shows it
  std::string damage;  // what is wrong
  // CheckRepair::kAll dropped the entry; freed_blocks are the data blocks
  // only its map referenced, now free.
  bool dropped = false;
  std::vector<uint64_t> freed_blocks;
  // CheckRepair::kAll rewrote the default volume's entry (slot 0, which is
  // never dropped) as the writable volume `rebuilt_as`, keeping its map.
  bool rebuilt = false;
  std::string rebuilt_as;
  bool repaired() const { return dropped || rebuilt; }
};

struct CheckReport {
  std::vector<std::string> findings;  // one line per problem; empty if clean
  // Data lost to media errors, by volume then offset, adjacent blocks
  // merged. Repair does not change them: rewrite or restore the ranges.
  std::vector<BadRange> media_errors;
  uint64_t mapped_blocks = 0;         // non-hole map entries
  uint64_t leaked_blocks = 0;         // ref > 0 but no map entry points here
  uint64_t overcommitted_blocks = 0;  // more entries point here than ref says
  uint64_t bad_entries = 0;           // malformed or out-of-range map entries
  bool repaired = false;              // something was fixed on media
  // Guest data whose map entry is damaged, per volume, adjacent blocks
  // merged, in volume slot and LBA order: with kAll, dropped (the entries
  // became holes: reads there return zeros); otherwise what kAll drops.
  std::vector<LbaRange> dropped;
  // Redo records waiting for crash recovery (CheckReadOnly of a crashed
  // image; a read-write open replays them first, so they are never here).
  std::vector<PendingRecord> pending;
  uint32_t logical_block_size = 0;  // of the image: the unit of LBAs here
  // Damaged volume table entries, in slot order (kAll drops them).
  std::vector<DamagedVolume> damaged_volumes;
  // Why the primary superblock is unusable ("" when it is sound): Open
  // reads the image through the backup. Any repair level rewrites the
  // primary from the backup (primary_superblock_restored).
  std::string primary_superblock_damage;
  bool primary_superblock_restored = false;
  // The image carries the corrupt flag (a write met an inconsistency;
  // writes fail until a repair clears it). corrupt_flag_cleared: a repair
  // left the image consistent and cleared the flag.
  bool corrupt_flag = false;
  bool corrupt_flag_cleared = false;
  bool clean() const { return findings.empty() && media_errors.empty(); }
  // Corruption left on media: damaged map entries, refcounts too low and
  // damaged volume table entries (only kAll fixes them), a damaged
  // primary superblock or the corrupt flag that no repair fixed.
  bool corrupt() const {
    return bad_entries > 0 || overcommitted_blocks > 0 ||
           (!damaged_volumes.empty() && !damaged_volumes[0].dropped) ||
           (!primary_superblock_damage.empty() &&
            !primary_superblock_restored) ||
           (corrupt_flag && !corrupt_flag_cleared);
  }
};

class Image {
 public:
  // Creates an image at `path`: a new (sparse) file of the size the layout
  // needs, or an existing file or device-DAX device, formatted whole. Fails
  // with kBusy if the target already holds a daxstore image.
  [[nodiscard]] static Result<Image> Create(const std::string& path,
                                            const ImageOptions& options,
                                            MapOptions map_options = {});
  // Formats `mapping` (its whole length) as a new image, taking ownership.
  [[nodiscard]] static Result<Image> Format(Mapping mapping,
                                            const ImageOptions& options);
  // Opens volume `volume` ("": the default volume "base") of the image at
  // `path`, replays any redo records a crash left and finishes or rolls
  // back an interrupted volume operation. Locks the image: kBusy if another
  // process has it open (read-only opens share the lock).
  [[nodiscard]] static Result<Image> Open(const std::string& path,
                                          const std::string& volume,
                                          MapOptions map_options = {});
  [[nodiscard]] static Result<Image> Open(const std::string& path,
                                          MapOptions map_options = {});
  [[nodiscard]] static Result<Image> Open(Mapping mapping,
                                          const std::string& volume = "");
  // Check without repair of the image at `path`, opened read-only (sharing
  // the lock: kBusy while another process has it open read-write). Unlike
  // a read-only Open it accepts an image a crash left with redo records:
  // they are listed in CheckReport::pending (and as findings), and
  // refcounts are compared with the values their recovery will leave. An
  // interrupted volume operation is still refused (kUnsupported).
  [[nodiscard]] static Result<CheckReport> CheckReadOnly(
      const std::string& path, MapOptions map_options = {},
      const std::function<void(uint64_t, uint64_t)>& progress = {});
  // Opens the image at `path` read-write, replaying what a crash left, and
  // runs Check(level) on it (level != kNone). Unlike Open, it accepts an
  // image whose default volume's table entry is damaged: kAll rebuilds
  // that entry (DamagedVolume::rebuilt). `recovered` (if not null) gets the
  // number of redo records the open replayed. kBusy while another process
  // has the image open.
  [[nodiscard]] static Result<CheckReport> Repair(
      const std::string& path, CheckRepair level, MapOptions map_options = {},
      const std::function<void(uint64_t, uint64_t)>& progress = {},
      uint32_t* recovered = nullptr);

  // A handle on another volume of the same open image: it shares the
  // engine (allocator, locks), so one process can serve many VMs cloned
  // from one golden image. NotFound if there is no such volume.
  [[nodiscard]] Result<Image> OpenVolume(const std::string& volume) const;
  const std::string& volume() const;  // this handle's volume name
  // True when writes fail: the image was opened read-only, this handle's
  // volume is a snapshot, or the image is flagged corrupt (below).
  bool read_only() const;
  // The image is flagged corrupt (see "Corruption met by a write" above).
  bool corrupt() const;

  // A read-only snapshot named `name` of this handle's volume, as it is
  // now. Names: 1 to 63 of [A-Za-z0-9._-], unique in the image. NoSpace
  // when every volume slot is taken.
  Status Snapshot(const std::string& name);
  // A writable clone named `name` of the snapshot `snapshot`, in sharing
  // group `group` ("": it shares content with no other volume). A
  // snapshot takes the group of the volume it is taken of.
  Status Clone(const std::string& snapshot, const std::string& name,
               const std::string& group = "");
  // Puts volume `volume` in sharing group `group` (same names as volumes;
  // "": the volume alone). Volumes of one group are one trust domain
  // whose content may be shared (docs/dedup.md). Crash-atomic; guests
  // may write meanwhile.
  Status SetSharingGroup(const std::string& volume, const std::string& group);
  // Deletes a snapshot or clone and frees the blocks only it referenced.
  // Refuses the default volume and a volume with an open handle (kBusy).
  // Clones of a deleted snapshot keep their data.
  Status DeleteVolume(const std::string& name);
  // Every volume, in slot order. O(virtual blocks x volumes).
  [[nodiscard]] Result<std::vector<VolumeInfo>> Volumes() const;

  Image(Image&&) noexcept;
  Image& operator=(Image&&) noexcept;
  Image(const Image&) = delete;
  Image& operator=(const Image&) = delete;
  ~Image();  // everything is already durable; nothing to flush

  // Byte-addressed I/O on this handle's volume. [offset, offset + n) must
  // lie inside the virtual size; writes to a snapshot fail. A write covering
  // part of a block reads the rest of it and writes the whole block out of
  // place. Durable on return. Media errors: see the top of this file.
  Status Read(uint64_t offset, void* buf, size_t n) const;
  Status Write(uint64_t offset, const void* buf, size_t n);
  Status Readv(uint64_t offset, std::span<const iovec> iov) const;
  Status Writev(uint64_t offset, std::span<const iovec> iov);
  // Makes earlier completed writes durable (they already are: a fence).
  Status Flush();
  // Zero detection, on by default: a write whose block ends up all zeros
  // is stored as a hole. Off, such a block takes a data block like any
  // other (QEMU's detect-zeroes=off). Holds for every handle of the image.
  void set_detect_zeroes(bool on);
  // Both make the range read as zeros. Whole blocks become holes (their data
  // blocks are freed); partial blocks are rewritten with zeros in the range.
  Status Discard(uint64_t offset, uint64_t n);
  Status WriteZeroes(uint64_t offset, uint64_t n);

  // The allocation map of [offset, offset + n), which must lie inside the
  // virtual size: consecutive extents, adjacent ones of the same kind
  // merged, covering the range from `offset` on. Stops after `max_extents`
  // extents (the last one may then end before offset + n). What NBD's
  // block-status and `qemu-img map` report. O(blocks in the range).
  [[nodiscard]] Result<std::vector<Extent>> Extents(
      uint64_t offset, uint64_t n, size_t max_extents = SIZE_MAX) const;

  // Where this handle's volume differs from volume `from`, found from the
  // two block maps alone (no data is read): blocks whose map entries
  // differ, adjacent blocks of the same kind merged, in offset order.
  // Extent::hole: a hole here (the block holds data in `from`). Blocks
  // that are holes in both or share a data block are left out. NotFound if
  // there is no volume `from`. O(virtual blocks).
  [[nodiscard]] Result<std::vector<Extent>> Changes(
      const std::string& from) const;

  // Content sharing of `volumes` ({}: every live volume), in slot order
  // (include/daxstore/sharing.h). Reads every mapped block once per data
  // block; hashes (XXH3-128) find candidate duplicates and a byte
  // comparison confirms each one. Changes nothing. Runs while other
  // handles write: it then describes each block as one moment of the
  // scan saw it. NotFound for a name that is no live volume.
  // O(virtual blocks x volumes) plus a read of every data block they map.
  [[nodiscard]] Result<SharingReport> Sharing(
      const std::vector<std::string>& volumes = {}) const;

  // Makes blocks of equal content one data block with a refcount: within
  // each of `volumes` ({}: every live volume) with DedupScope::kVolume,
  // also between the volumes of one sharing group with kGroup. Zero
  // blocks become holes. Duplicates are found as Sharing finds them and
  // compared again byte for byte, holding the locks a write takes, just
  // before each remap, so a block written meanwhile is never remapped to
  // stale content; such blocks are skipped. Every remap is one redo
  // record (crash-atomic); writes afterwards go copy-on-write, as for
  // clones. Guests may write through other handles meanwhile (they then
  // take a ref lock per write). Guest-visible content never changes.
  // Volume operations wait until the pass ends. Offline, frees what
  // Sharing reports for the scope. `speed` > 0 holds the pass to that many
  // bytes of mapped blocks scanned or compared per second (a pass
  // competes with guest writes for memory bandwidth and caches); 0 runs
  // it at full speed.
  [[nodiscard]] Result<DedupReport> Dedup(
      DedupScope scope, const std::vector<std::string>& volumes = {},
      uint64_t speed = 0);

  // Write tracking for a mirror (include/daxstore/dirty_blocks.h): from
  // the return on, every write, write-zeroes and discard of this handle's
  // volume, through any handle, marks the blocks it touched in `dirty`
  // before it returns, whether it succeeded or not. Writes in flight
  // finish first. One tracker per volume (kBusy otherwise); `dirty` must
  // have one bit per virtual block. Costs a write one untaken branch
  // while no tracker is attached.
  [[nodiscard]] Status TrackWrites(std::shared_ptr<DirtyBlocks> dirty);
  // Detaches the tracker (writes in flight finish first).
  void StopTrackingWrites();
  // Fences the volume: writes in flight finish, and every later write,
  // write-zeroes and discard of it fails with EROFS and `why` until
  // Unfence (a mirror's switchover: nothing the guest writes after it is
  // acknowledged and then lost). Reads go on.
  void Fence(const std::string& why);
  void Unfence();

  // Reads every refcount to count allocated blocks (image-wide, every
  // volume together): O(data blocks).
  [[nodiscard]] Result<ImageInfo> Info() const;
  // Verifies every metadata invariant (superblock copies agree, every map
  // entry of every volume is well formed and in range, every refcount
  // equals the number of entries pointing at its block over all volumes,
  // no lane holds a valid redo record, no volume operation is pending), and
  // lists the guest ranges whose data lies on bad blocks (media_errors).
  // With repair, fixes what the level allows (CheckRepair). Not concurrent
  // with I/O.
  // `progress`, if set, is called on the calling thread with (done, total)
  // work units as the check walks the maps and refcounts: first with done
  // 0, then about every 1/256 of the work, last with done == total when the
  // walk is complete (also when it found problems). Total stays the same.
  using CheckProgress = std::function<void(uint64_t done, uint64_t total)>;
  // Repair needs a read-write open (kInvalidArgument otherwise).
  [[nodiscard]] Result<CheckReport> Check(CheckRepair repair,
                                          const CheckProgress& progress = {});
  // Check(repair ? CheckRepair::kAll : CheckRepair::kNone, progress).
  [[nodiscard]] Result<CheckReport> Check(bool repair = false,
                                          const CheckProgress& progress = {});

  uint64_t virtual_size() const;
  uint32_t block_size() const;
  uint32_t logical_block_size() const;

  struct State;  // lib/image/engine.h

 private:
  Image(std::shared_ptr<State> state, uint32_t slot);
  // Open(mapping, volume); `inspect` opens the default volume even when its
  // table entry is damaged (CheckReadOnly, Repair) and, read-only, lists
  // redo records a crash left instead of refusing them (CheckReadOnly).
  static Result<Image> OpenMapping(Mapping mapping, const std::string& volume,
                                   bool inspect);
  std::shared_ptr<State> s_;
  uint32_t vol_ = 0;  // map slot of this handle's volume
};

}  // namespace daxstore
