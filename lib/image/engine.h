// The in-memory engine behind daxstore::Image.
//
// Locks, always taken in this order (never two of one kind at once, except
// that volume operations take every lane mutex, in index order):
//   vol_mu -> lane mutex -> stripe lock (of a volume's virtual block) ->
//   ref lock (of the old data block) -> group mutex (of a data block).
// One exception never waits: Allocate, out of free blocks, try_locks other
// lanes (holding its own and maybe a stripe lock) to take a spare.
// - vol_mu guards the volume table and handle counts: Snapshot/Clone/
//   DeleteVolume and handle open/close hold it exclusive. Writes do not
//   take it (one shared lock word for every writer was a contended cache
//   line): they hold their lane for the whole write, and volume
//   operations also hold every lane (LockAllLanes), so no write is in
//   flight during one.
// - A lane (thread slot) owns two redo record slots and a scratch block.
// - A stripe lock guards map entries hashing to it: writers hold it
//   exclusive while they log, apply and clear (stripe_lock.h). Readers
//   copy a block without it and keep the copy only if no writer held it
//   at the start and none took it until the copy was done, so the block
//   was not freed and reused under them; else they copy again holding it
//   shared.
// - A ref lock (hashed on the data block) is held from reading the old
//   block's refcount to applying the record (and clearing it when the old
//   block stays shared), so two volumes replacing their entries for one
//   shared block neither lose a decrement nor leave two valid records
//   naming one shared refcount. With at most one writable volume only a
//   block two entries of that volume share (a dedup inside the volume)
//   can lose a reference to two writers at once, so writes take it only
//   for an old block whose refcount is above 1.
// - A lane keeps its last records valid after the write returns, its map
//   update deferred to the lane's next fence and the block it freed held
//   (commit.cc, "One fence"); volume operations, Check, ResetFreeSpace, a
//   dedup pass and a clean close retire them first.
// - A group mutex guards one group's in-memory free list. A group's free list
//   is built by scanning its refcounts the first time a lane allocates there;
//   a block is pushed back by the writer that drops its ref to 0, which holds
//   the group mutex from that store until the push, so a scan never sees a
//   block that is about to be pushed. Once a group is scanned it stays
//   scanned until ResetFreeSpace (no write in flight), so a writer that
//   sees it scanned and keeps the block as its spare needs no group mutex.
#pragma once

#include <atomic>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "daxstore/dirty_blocks.h"
#include "daxstore/image.h"
#include "daxstore/mapping.h"
#include "image/format.h"
#include "image/media.h"
#include "image/stripe_lock.h"
#include "platform/guarded_copy.h"

namespace daxstore {

namespace image {

inline constexpr uint64_t kGroupBlocks = 4096;
inline constexpr size_t kStripes = 1024;

struct alignas(64) Lane {
  LaneLock mu;
  // In pmem: kLaneRecords slots (version 5; older versions use record[0]).
  RedoRecord* record = nullptr;
  std::vector<uint8_t> scratch;  // one block
  std::vector<uint8_t> compare;  // one block: a remap's target, compared
  uint64_t group = 0;            // where this lane allocates next
  uint64_t seq = 0;              // of the lane's last record (version 5)
  // The lines of the lane's last deferred apply (map entry and refcounts),
  // stored but not yet fenced: the lane's next fence makes them durable
  // (commit.cc, "One fence"). Null where none.
  const void* pending[3] = {nullptr, nullptr, nullptr};
  // A record stays valid after its write returned (a kept record; version
  // 5: a deferred one).
  bool kept = false;
  // Version 5: held[k] is the block the deferred record in slot k freed,
  // or kNoBlock. No write uses it while that record may be valid on media
  // (until the fence of the record that overwrites the slot, or Retire):
  // replayed, the record sets its refcount to 0 again.
  uint64_t held[kLaneRecords] = {kNoBlock, kNoBlock};
  // fresh[k] is the new block of the record in slot k while that record
  // may be valid on media (kNoBlock otherwise). Its redo sets the block's
  // refcount to 1 and maps it at the record's entry, so a dedup remap
  // leaves the block alone meanwhile (Remap). Set before the block's
  // refcount and map entry are stored (release), reset with held[k].
  std::atomic<uint64_t> fresh[kLaneRecords] = {kNoBlock, kNoBlock};
  // A free block (refcount 0) on no free list that only this lane uses:
  // the block its kept record freed, or one it gave back.
  uint64_t spare = kNoBlock;
};

// A stripe: the lock of the map entries hashing to it (stripe_lock.h) and
// its last deferred apply. 64 bytes, so an optimistic reader's one load
// of the lock word touches a 64 KiB array of them.
struct alignas(64) Stripe {
  StripeLock mu;
  // The last deferred apply under this stripe (commit.cc, "One fence"):
  // lane index + 1 (0: none) and the lines it stored. A writer of another
  // lane flushes them before its own fence. Guarded by mu (exclusive).
  uint32_t tag_lane = 0;
  const void* tag_lines[3] = {nullptr, nullptr, nullptr};

  // Exclusive for the guard's life once lock() was called.
  class Writer {
   public:
    explicit Writer(Stripe& s) : s_(s) {}
    ~Writer() {
      if (held_) unlock();
    }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;
    void lock() {
      s_.mu.lock();
      held_ = true;
    }
    void unlock() {
      s_.mu.unlock();
      held_ = false;
    }

   private:
    Stripe& s_;
    bool held_ = false;
  };

  static constexpr uint64_t kBusy = StripeLock::kBusy;
  uint64_t Begin() const { return mu.Begin(); }
  bool Valid(uint64_t v) const { return mu.Valid(v); }
};
static_assert(sizeof(Stripe) == 64);

struct alignas(64) RefLock {
  std::mutex mu;
};

// The in-memory copy of a volume table entry: a live volume, or a damaged
// entry (not live: it cannot be opened, and its name is Printable). A
// damaged entry in a map slot keeps the blocks its map names referenced
// until Check with CheckRepair::kAll drops it, so no write frees them.
struct Volume {
  bool live = false;
  bool snapshot = false;
  bool damaged = false;
  std::string damage;  // what is wrong with a damaged entry
  std::string name, parent;
  // The sharing group ("" : content is shared with no other volume).
  std::string group;
  uint64_t created_unix_ns = 0;
  uint32_t handles = 0;  // open Image handles on it
};

// What a mirror hangs on one volume (Image::TrackWrites, Image::Fence).
// Changed holding every lane, read by writes under their lane.
struct Tracking {
  std::atomic<DirtyBlocks*> dirty{nullptr};  // marked by each write
  std::shared_ptr<DirtyBlocks> owner;        // keeps `dirty` alive
  std::atomic<bool> fenced{false};           // writes fail with EROFS
  std::string fence_why;
};

struct alignas(64) Group {
  std::mutex mu;
  std::atomic<bool> scanned{false};  // set under mu
  std::vector<uint64_t> free;        // descending: back() is the lowest block
};

// CRC32C (Castagnoli) of n bytes: the data checksum of version-5 records.
uint32_t DataCrc(const void* p, size_t n);

// A map entry a read-only open reads instead of the one on media: what
// recovery will store there (Recover, version 5).
struct Overlay {
  uint32_t slot;
  uint64_t lba;
  uint64_t entry;
};

}  // namespace image

struct Image::State {
  Mapping m;
  image::Superblock sb{};
  uint32_t block_shift = 0;  // log2 of sb.block_size: reads shift, not divide
  bool writable = true;
  uint32_t recovered = 0;
  // Why the primary superblock was unusable when Open read the backup
  // instead ("" when it was sound), and whether Open (read-write) rewrote
  // it from the backup. Check reports it: as corruption while it is on
  // media, as repaired by a repair.
  std::string primary_damage;
  bool primary_restored = false;
  // The superblock carries kFlagCorrupt: writes and volume operations fail
  // (CorruptError). Set under corrupt_mu by MarkCorrupt, cleared by Check.
  std::atomic<bool> corrupt{false};
  std::mutex corrupt_mu;
  // Read-only inspection (Image::CheckReadOnly): Recover lists valid redo
  // records in `pending` (by lane) instead of refusing them.
  bool inspect = false;
  std::vector<uint32_t> pending;
  // Read-only opens of a version-5 image: map entries that complete,
  // unreplayed records change (Recover). Empty for read-write opens.
  std::vector<image::Overlay> overlay;
  // Read-only inspection of a version-5 image: every valid record in the
  // order recovery takes them, and whether recovery redoes it.
  struct Planned {
    uint32_t lane;
    const image::RedoRecord* rec;
    bool redo;
  };
  std::vector<Planned> plan;
  uint64_t* maps = nullptr;  // in pmem: slot i at maps + i * map_stride
  uint64_t map_stride = 0;   // entries between two slots
  uint32_t* ref = nullptr;   // in pmem
  uint8_t* data = nullptr;   // in pmem
  std::unique_ptr<image::Lane[]> lanes;
  std::unique_ptr<image::Stripe[]> stripes;
  std::unique_ptr<image::RefLock[]> ref_locks;
  mutable std::shared_mutex vol_mu;
  image::Volume vols[image::kMaxVolumes];
  // Per map slot: write tracking and fences for a mirror.
  image::Tracking tracking[image::kMaxVolumes];
  // Live volumes that are not snapshots. Read by writes under their lane,
  // changed by volume operations under every lane.
  uint32_t writable_volumes = 0;
  image::VolumeIntent* intent = nullptr;  // in pmem
  image::VolumeEntry* table = nullptr;    // in pmem
  image::VolumeEntry* staged = nullptr;   // in pmem: a rewrite's new entry
  std::unique_ptr<image::Group[]> groups;
  uint64_t ngroups = 0;
  // The refcounts were found to admit every map entry naming their block
  // (VerifyRefs): the first write or volume operation of a read-write
  // open checks it, so that none frees or hands out a block a map names.
  std::atomic<bool> refs_verified{false};
  std::atomic<uint64_t> next_group{0};
  // A dedup pass runs (dedup.cc): writes take the ref lock of their old
  // block whatever the number of writable volumes, since the pass changes
  // refcounts too. Their records are deferred as at any other time: the
  // pass leaves a block named by a lane's fresh[] alone (Remap). Changed
  // holding every lane.
  std::atomic<bool> dedup_active{false};
  std::mutex dedup_mu;  // one dedup pass at a time
  // Whole blocks of zeros written become holes (Image::set_detect_zeroes).
  std::atomic<bool> detect_zeroes{true};
  // Data blocks on bad media (media.h). Reads add the blocks they find
  // poisoned, hence mutable.
  mutable image::BadBlockSet bad;

  explicit State(Mapping mapping) : m(std::move(mapping)) {}
  ~State();  // retires kept records, so a clean close leaves none

  uint64_t bs() const { return sb.block_size; }
  uint8_t* Block(uint64_t pba) const { return data + pba * sb.block_size; }
  uint64_t* MapOf(uint32_t slot) const { return maps + slot * map_stride; }
  // The virtual blocks [first, last) whose entries the maps of `slots`
  // store, sorted and merged: a sparse image file's map holes read as 0
  // entries and are left out, so a scan neither reads nor fills them in.
  // Everything on media that cannot tell (a device).
  Result<std::vector<std::pair<uint64_t, uint64_t>>> StoredLbas(
      std::initializer_list<uint32_t> slots) const;
  image::Stripe& StripeOf(uint32_t slot, uint64_t lba) const {
    uint64_t k = lba + slot * sb.virtual_blocks;
    return stripes[(k * 0x9e3779b97f4a7c15ull >> 32) % image::kStripes];
  }
  std::mutex& RefLockOf(uint64_t pba) const {
    return ref_locks[(pba * 0x9e3779b97f4a7c15ull >> 32) % image::kStripes].mu;
  }
  image::Lane& MyLane() const;
  // Every lane's mutex, taken in index order: no write is in flight while
  // they are held. Volume operations hold them (after vol_mu).
  std::vector<std::unique_lock<image::LaneLock>> LockAllLanes() const;

  uint64_t LoadEntry(uint32_t slot, uint64_t lba) const {
    if (!overlay.empty()) [[unlikely]] {
      for (const image::Overlay& o : overlay) {
        if (o.slot == slot && o.lba == lba) return o.entry;
      }
    }
    return std::atomic_ref<uint64_t>(MapOf(slot)[lba])
        .load(std::memory_order_acquire);
  }
  uint32_t LoadRef(uint64_t pba) const {
    return std::atomic_ref<uint32_t>(ref[pba]).load(std::memory_order_relaxed);
  }
  void PrefetchRef(uint64_t pba) const { __builtin_prefetch(&ref[pba], 1); }
  void StoreRef(uint64_t pba, uint32_t v) const {
    std::atomic_ref<uint32_t>(ref[pba]).store(v, std::memory_order_relaxed);
  }

  // Sets up pointers, lanes, stripes and groups from sb (no media access).
  void Attach();

  // --- alloc.cc ---
  // A free data block, now owned by the caller (ref still 0 on media): the
  // lane's spare if it has one. Caller holds the lane.
  Result<uint64_t> Allocate(image::Lane& lane);
  // Allocate's search, bad blocks included.
  Result<uint64_t> TakeFree(image::Lane& lane);
  // Returns an unpublished block to free space.
  void Release(uint64_t pba);
  // Returns a block Allocate gave the lane and that was not published:
  // back to the lane's spare (a kept record may name it) or to free space.
  void GiveBack(image::Lane& lane, uint64_t pba);
  // Version 5: hands the lane's held block of record slot k (if any) to
  // its spare or free space and resets fresh[k]; the record in slot k is
  // no longer valid on media.
  void ReleaseHeld(image::Lane& lane, uint32_t k);
  // Flags the image corrupt: data block `pba`, mapped at `lba`, has
  // refcount `ref` (0 or kRefRetired). Returns the error.
  Status FreeRefError(uint64_t pba, uint64_t lba, uint32_t ref);
  // The group of `pba`, a block about to become free, and whether it is
  // scanned: if not, *lock holds its mutex, so no scan sees the block
  // free before the record freeing it is cleared (a scanned group is
  // never scanned again while writes run).
  image::Group* FreeingGroup(uint64_t pba, std::unique_lock<std::mutex>* lock,
                             bool* scanned);
  // Forgets every free list and spare (after Check repaired refcounts, or
  // a volume was deleted). Retires kept records first. Not concurrent
  // with writes.
  void ResetFreeSpace();

  // --- commit.cc ---
  // Moves map[lba] from old_entry to a new entry through the lane's redo
  // record. new_pba: a block the caller allocated and stored the data in
  // without a fence (the record's fence covers it), crc that data's
  // DataCrc; or kNoBlock (the entry becomes a hole). *used: the block was
  // published; if not, the caller gives it back (after a Drain). Caller
  // holds the lane and the stripe lock exclusive.
  Status Commit(image::Lane& lane, uint32_t slot, uint64_t lba,
                uint64_t old_entry, uint64_t new_pba, uint32_t crc, bool* used);
  // Moves map[lba] of volume `slot` from old_entry to data block target,
  // which other map entries name already, through the lane's redo record
  // (ref[target] + 1, ref[old] - 1); a dedup's remap. Compares the two
  // blocks byte for byte holding the ref locks of both first, and does
  // nothing (*done false) unless they are equal and both still mapped.
  // Nor while either block is another lane's fresh[] block (a record
  // that may be valid on media sets its refcount to 1). *freed: the old
  // block lost its last reference. Caller holds the lane and the stripe
  // lock exclusive, map[lba] is old_entry, and dedup_active is set.
  Status Remap(image::Lane& lane, uint32_t slot, uint64_t lba,
               uint64_t old_entry, uint64_t target, bool* done, bool* freed);
  // The fresh[] of a lane other than `except` names data block pba: a
  // record that may be valid on media makes it its new block (Remap).
  bool Fresh(uint64_t pba, const image::Lane& except) const;
  // Replays and clears every valid redo record, then settles a pending
  // volume operation (Open).
  Status Recover();
  // Makes the lane's deferred apply durable and clears its kept records,
  // if any (durable on return). Caller holds the lane, or no write runs.
  void Retire(image::Lane& lane);
  // Version 5 recovery of lane i's records (Recover).
  Status RecoverLane(uint32_t i);
  // A valid record's fields are in range (Recover).
  Status CheckRecord(uint32_t lane, const image::RedoRecord& r) const;
  // Version 5: the record's new block holds the data its CRC names (or it
  // names a hole). Uses lane.scratch.
  bool RecordComplete(image::Lane& lane, const image::RedoRecord& r) const;
  // Retire on every lane. Caller holds vol_mu exclusive or is alone.
  void RetireAll();

  // --- corrupt.cc ---
  // A write met `why` (a kCorruption): sets kFlagCorrupt in both
  // superblocks (durable on return, read-write only) and returns why,
  // saying that the image is now read-only and how to repair it.
  Status MarkCorrupt(const Status& why);
  // The error of a write or volume operation on a flagged image.
  Status CorruptError() const;
  // Unless refs_verified: counts the map entries (of live and damaged
  // volumes) naming each data block and compares: a refcount below its
  // count (a block a write could free, or the allocator hand out, while a
  // map names it) flags the image corrupt (MarkCorrupt's error). Caller
  // holds every lane (no write in flight). O(stored map entries + named
  // blocks), once per open.
  Status VerifyRefs();
  // Sets or clears kFlagCorrupt on media (Check). No write in flight.
  void StoreCorruptFlag(bool on);

  // --- media.cc ---
  // Open, before recovery: fails with kIoError when the mapping lists a bad
  // range over metadata, or a guarded read of the redo records and the
  // volume table meets poison; notes bad data blocks in `bad`.
  Status CheckMedia();
  // Re-reads the mapping's list of bad ranges into `bad` (Check). Returns
  // the metadata regions on a listed bad range, one line each.
  std::vector<std::string> RefreshBadBlocks();
  // Marks every free bad data block retired (durable on return), so that
  // no allocation hands it out. Read-write only; no write in flight.
  void RetireFreeBadBlocks();
  // Marks free data block pba retired, durable on return.
  void RetireBlock(uint64_t pba);
  // Guest ranges of every live volume whose data lies on a bad block.
  std::vector<BadRange> MediaErrors() const;
  // A read copy faulted at `addr`: lists its data block bad, if it is one.
  void NoteFault(const void* addr) const;
  // The error of a read of block lba of volume `slot`, mapped to data block
  // pba, whose copy failed: a media error if pba is bad, else a fault in
  // the caller's buffer.
  Status ReadError(uint32_t slot, uint64_t lba, uint64_t pba) const;
  // The error of a write of part of block lba whose old data block is bad.
  Status PartialWriteError(uint32_t slot, uint64_t lba) const;
  // Copies k bytes of data-block memory at src to dst; false when the copy
  // met poison (the block is then listed bad) or a fault in dst.
  bool CopyOut(void* dst, const uint8_t* src, size_t k) const {
    const void* fault = nullptr;
    if (TryGuardedCopy(dst, src, k, &fault)) [[likely]]
      return true;
    NoteFault(fault);
    return false;
  }
  // Copies [in, in + len) of data block pba to dst; false when the block
  // is bad (listed, or the copy met poison).
  bool ReadData(void* dst, uint64_t pba, size_t in, size_t len) const {
    if (bad.any() && bad.Contains(pba)) [[unlikely]]
      return false;
    return CopyOut(dst, Block(pba) + in, len);
  }

  // --- volume.cc ---
  // Reads the volume table into vols (after Recover).
  Status LoadVolumes();
  // Why the volume in `slot` (damaged or missing) cannot be opened.
  Status VolumeUnusable(uint32_t slot) const;
  // Slot of the live volume `name`, or -1.
  int FindVolume(const std::string& name) const;
  // Creates volume `v` in a free slot as a copy of slot src's map.
  // Caller holds vol_mu exclusive.
  Status CopyVolume(uint32_t src, const image::Volume& v);
  // Deletes the volume in `slot`. Caller holds vol_mu exclusive.
  Status RemoveVolume(uint32_t slot);
  // Rewrites the entry of live volume `slot` with sharing group `group`
  // (crash-atomic: format.h, the staged entry). Caller holds vol_mu
  // exclusive; writes may run.
  Status SetGroup(uint32_t slot, const std::string& group);
  // Settles a pending volume intent (Recover).
  Status SettleIntent();
  // Sets every refcount to the number of live map entries naming it;
  // returns how many changed.
  uint64_t Recount();
  void WriteEntry(uint32_t slot, const image::Volume& v);
  // Recomputes writable_volumes from vols.
  void CountVolumes();
  // Checks that an entry is well formed and in range (inline: every read
  // and write asks).
  bool EntryOk(uint64_t e) const {
    return e == 0 ||
           ((e & image::kEntryReserved) == 0 && image::EntryPresent(e) &&
            image::EntryPba(e) < sb.data_blocks);
  }
  Status ValidateEntry(uint64_t lba, uint64_t entry) const {
    if (EntryOk(entry)) return Status::Ok();
    return EntryError(lba, entry);
  }
  // What is wrong with an entry that is not EntryOk.
  Status EntryError(uint64_t lba, uint64_t entry) const;
};

}  // namespace daxstore
