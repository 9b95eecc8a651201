// Publishing a block through a lane's redo record, and replaying records
// after a crash.
//
// Protocol for moving map[lba] from `old` to `new`:
//   1. write the new block's data (the caller, without a fence) and the
//      lane's record {valid, seq, lba, old, new, ref_new, ref_old_after,
//      checksum}; one fence makes both durable. The record alone commits
//      nothing: the map entry does (step 2), so a record whose data never
//      reached media is rolled back;
//   2. apply: ref[new] = 1, map[lba] = new (one 8-byte atomic store: the
//      commit point), ref[old] = ref_old_after; fence;
//   3. if old was a hole or stays referenced (another volume shares it):
//      clear the record (valid = 0), fence; only then may a freed block be
//      handed out again. Otherwise the record is kept (below).
// Recovery looks at map[lba] for every valid record: new there means the
// move happened and refcounts are set to the record's values (redo); old
// there means it did not and refcounts are set back (undo: ref[new] =
// ref_new - 1, ref[old] = ref_old_after + 1); anything else means the record is
// stale and is ignored. Then the record is cleared. Values are absolute, so
// replay is idempotent, and it costs O(lanes).
//
// Kept records. When the old block's refcount drops to 0, the record stays
// valid after the write returns and the freed block becomes the lane's
// spare: on no free list, used only by this lane's next write, whose
// record replaces this one. That saves the clear's fence. It is safe
// because while a kept record is valid:
//   - map[lba] never holds `old` again: `old` is the lane's spare (or the
//     new block of the lane's next write, whose record is not durable
//     yet), so recovery never undoes a completed move;
//   - if map[lba] holds `new`, ref[new] is 1 and ref[old] is 0 anyway, so
//     the redo writes values already there. Another lane's record moving
//     lba again decides by the same map entry, so the order lanes are
//     replayed in does not matter;
//   - refcounts only change by more than one through volume operations and
//     Check, which retire (clear) kept records first; so does a lane that
//     takes another lane's spare, and a clean close.
// A hole `old` could come back to map[lba] at any time, and a shared
// `old` can be freed by another volume, so those records are cleared.
//
// One fence (version 5). A record also carries the CRC32C of its new
// block, and a lane alternates between two record slots (seq % 2). When
// the move frees a block nothing else names, the apply is deferred: the
// data, the record and the lane's previous deferred apply are made
// durable by ONE fence, then the apply's stores are made without one; the
// lane's next fence (its next write, or Retire) makes them durable. The
// write is durable on return: recovery redoes every complete record
// (sealed, and its new block matches its CRC) whose map entry holds its
// old or new entry. The other slot keeps the previous record, whose apply
// the fence just made durable, so the record of an apply not yet durable
// is never overwritten. The block a deferred record frees is held by the
// lane (Lane::held): nobody writes it while the record may be valid on
// media, since replaying the record sets its refcount to 0 again. A
// writer of another lane that takes a stripe flushes the lines of the
// stripe's last deferred apply (Stripe::tag_lines) before its own fence:
// a deferred apply is durable before any other lane changes a field it
// stored, so lanes are replayed in any order, and a record whose entry
// moved on is skipped. Every other move (a hole or shared old entry, a
// zero block, a retired block, a dedup remap) applies at once with a
// second fence and clears both slots, the older first, before its locks
// go.
// docs/design/write-protocol.md has the whole argument.
//
// Remaps (a dedup). A record may also move map[lba] onto a block other
// entries already name: ref_new is then that block's count plus one (a
// write's is always 1), and undo gives it back ref_new - 1, which for a
// write is the 0 it had. A reader that predates remaps refuses a crash
// image holding such a record (its ref_new is not 1) rather than misread
// it. Remap records are always cleared, never kept. A remap leaves alone
// a block that is the new block of another lane's record that may still
// be valid on media (Lane::fresh): that record's redo sets its refcount
// to 1, which a remap onto it would make wrong; nor does it move that
// record's entry away from it.
#include <isa-l/crc.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "image/engine.h"

namespace daxstore {

using image::EntryPba;
using image::EntryPresent;
using image::Lane;
using image::RedoRecord;

namespace {

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

// Step 2 of the protocol; returns with everything applied durable.
void Apply(const Image::State& s, uint32_t slot, uint64_t lba,
           uint64_t old_entry, uint64_t new_entry, uint32_t ref_new,
           uint32_t ref_old_after) {
  uint64_t* map = s.MapOf(slot);
  if (EntryPresent(new_entry)) {
    uint64_t pba = EntryPba(new_entry);
    s.StoreRef(pba, ref_new);
    s.m.Flush(&s.ref[pba], sizeof s.ref[pba]);
  }
  std::atomic_ref<uint64_t>(map[lba]).store(new_entry,
                                            std::memory_order_release);
  s.m.Flush(&map[lba], sizeof map[lba]);
  if (EntryPresent(old_entry)) {
    uint64_t pba = EntryPba(old_entry);
    s.StoreRef(pba, ref_old_after);
    s.m.Flush(&s.ref[pba], sizeof s.ref[pba]);
  }
  // The applied fields are durable before the record is cleared or the
  // write returns.
  s.m.Drain();
}

// Recovery's undo: the refcounts as they were before step 2 began.
void Undo(const Image::State& s, const RedoRecord& r) {
  if (EntryPresent(r.new_entry)) {
    uint64_t pba = EntryPba(r.new_entry);
    s.StoreRef(pba, r.ref_new - 1);
    s.m.Flush(&s.ref[pba], sizeof s.ref[pba]);
  }
  if (EntryPresent(r.old_entry)) {
    uint64_t pba = EntryPba(r.old_entry);
    s.StoreRef(pba, r.ref_old_after + 1);
    s.m.Flush(&s.ref[pba], sizeof s.ref[pba]);
  }
  // The restored refcounts are durable before the record is cleared.
  s.m.Drain();
}

// Zeroes the checksum too: otherwise a later record torn so that only its
// `valid` word reached media would revive this one (still sealed) and
// replay stale values.
void Clear(const Image::State& s, RedoRecord& r) {
  r.checksum = 0;
  r.valid = 0;
  // The clear is durable before a block it freed can be reused.
  s.m.Persist(&r, sizeof r);
}

// Clears a record and flushes it, without a fence.
void ClearNoDrain(const Image::State& s, RedoRecord& r) {
  r.checksum = 0;
  r.valid = 0;
  s.m.Flush(&r, sizeof r);
}

// Clears both of a lane's record slots (version 5), the older first:
// replayed alone, the older record could undo what the newer one did with
// the block the older one freed (its new block), so it never outlives
// the newer one. Durable on return.
void ClearBoth(const Image::State& s, RedoRecord* r) {
  const uint32_t older = r[1].seq < r[0].seq;
  ClearNoDrain(s, r[older]);
  // The older record is cleared before the newer one.
  s.m.Drain();
  Clear(s, r[1 - older]);
}

void FlushLines(const Image::State& s, const void* const (&lines)[3]) {
  for (const void* p : lines) {
    if (p) s.m.Flush(p, sizeof(uint32_t));
  }
}

// Seals `rec` (its seq the lane's next), writes it into the lane's slot
// for that seq and fences once, together with the lane's deferred apply
// and another lane's deferred apply under `stripe`; the stripe and lane
// then hold no deferred apply. Returns the slot written.
RedoRecord* LogRecord(const Image::State& s, image::Lane& lane,
                      image::Stripe& stripe, uint32_t me, RedoRecord rec) {
  rec.valid = image::kRedoValid;
  rec.seq = ++lane.seq;
  image::SealRecord(rec);
  RedoRecord* dst = &lane.record[rec.seq % image::kLaneRecords];
  std::memcpy(dst, &rec, sizeof rec);
  s.m.Flush(dst, sizeof rec);
  // Another lane's deferred apply under this stripe is durable before this
  // record's apply changes anything it stored.
  if (stripe.tag_lane != 0 && stripe.tag_lane != me) {
    FlushLines(s, stripe.tag_lines);
  }
  FlushLines(s, lane.pending);
  // The record, the data copied before it without a fence, and the lane's
  // previous deferred apply are durable before any field the record names
  // changes.
  s.m.Drain();
  for (const void*& p : lane.pending) p = nullptr;
  stripe.tag_lane = 0;
  lane.kept = false;
  return dst;
}

}  // namespace

Status Image::State::FreeRefError(uint64_t pba, uint64_t lba, uint32_t ref) {
  return MarkCorrupt(Corruption(
      "image " + m.info().path + ": data block " + std::to_string(pba) +
      " is mapped at block " + std::to_string(lba) + " but its refcount " +
      (ref ? "marks it retired" : "is 0") + " (free)"));
}

image::Group* Image::State::FreeingGroup(uint64_t pba,
                                         std::unique_lock<std::mutex>* lock,
                                         bool* scanned) {
  image::Group* g = &groups[pba / image::kGroupBlocks];
  *scanned = g->scanned.load(std::memory_order_acquire);
  if (!*scanned) {
    *lock = std::unique_lock(g->mu);
    *scanned = g->scanned.load(std::memory_order_relaxed);
  }
  return g;
}

uint32_t image::DataCrc(const void* p, size_t n) {
  return crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(p)),
                     static_cast<int>(n), ~0u);
}

Status Image::State::EntryError(uint64_t lba, uint64_t e) const {
  if (!EntryPresent(e) || (e & image::kEntryReserved)) {
    return Corruption("image " + m.info().path + ": map entry of block " +
                      std::to_string(lba) + " is malformed (" + Hex(e) +
                      "); 'daxstore image check --repair=all' makes it a "
                      "hole (the block's data is lost)");
  }
  if (EntryPba(e) >= sb.data_blocks) {
    return Corruption("image " + m.info().path + ": map entry of block " +
                      std::to_string(lba) + " points at data block " +
                      std::to_string(EntryPba(e)) + ", beyond the " +
                      std::to_string(sb.data_blocks) +
                      " data blocks; 'daxstore image check --repair=all' "
                      "makes it a hole (the block's data is lost)");
  }
  return Status::Ok();
}

Status Image::State::Commit(Lane& lane, uint32_t slot, uint64_t lba,
                            uint64_t old_entry, uint64_t new_pba, uint32_t crc,
                            bool* used) {
  *used = false;
  if (old_entry == 0 && new_pba == image::kNoBlock) {
    return Status::Ok();  // hole stays a hole
  }
  const bool has_old = EntryPresent(old_entry);
  const uint64_t old_pba = EntryPba(old_entry);
  // Another writable volume may drop its reference to the same block
  // meanwhile, and so may a write of another entry of this volume when a
  // dedup made the two share it (refcount above 1). A block this entry
  // alone names (refcount 1) has no other writer: nothing adds a reference
  // while this write holds its lane.
  std::unique_lock<std::mutex> shared;
  const bool dedup = dedup_active.load(std::memory_order_relaxed);
  uint32_t ref_old = has_old ? LoadRef(old_pba) : 0;
  if (has_old && (writable_volumes > 1 || dedup || ref_old > 1)) {
    shared = std::unique_lock(RefLockOf(old_pba));
    ref_old = LoadRef(old_pba);
  }
  if (has_old && (ref_old == 0 || ref_old == image::kRefRetired)) {
    return FreeRefError(old_pba, lba, ref_old);
  }
  // A refcount lower than the entries naming the block would free it under
  // another mapping: VerifyRefs compared them all before the first write.
  const uint32_t ref_old_after = has_old ? ref_old - 1 : 0;
  // A bad old block that nothing references any more is retired, not freed:
  // its refcount goes from 1 straight to kRefRetired, so no scan ever sees
  // it free, and it becomes no spare.
  const bool retire =
      has_old && ref_old_after == 0 && bad.any() && bad.Contains(old_pba);
  // A block about to become free: no scan of its group may see it yet. A
  // scanned group is never scanned again while writes run, so then the
  // mutex is needed only to push the block (below).
  std::unique_lock<std::mutex> group;
  image::Group* g = nullptr;
  bool scanned = false;
  if (has_old && ref_old_after == 0 && !retire) {
    g = FreeingGroup(old_pba, &group, &scanned);
  }

  const uint64_t new_entry =
      new_pba != image::kNoBlock ? image::MakeEntry(new_pba) : 0;
  if (old_entry == new_entry) return Status::Ok();  // hole stays a hole
  *used = new_entry != 0;

  // Deferred (one fence) when the freed block can be held by the lane (a
  // group not scanned yet would find it itself) and nothing else names it,
  // while a dedup pass runs too (Remap leaves new_pba alone meanwhile).
  const bool defer = g && scanned && new_entry != 0;
  const uint32_t me = static_cast<uint32_t>(&lane - lanes.get()) + 1;
  image::Stripe& stripe = StripeOf(slot, lba);
  RedoRecord rec{};
  rec.lba = lba;
  rec.old_entry = old_entry;
  rec.new_entry = new_entry;
  rec.ref_new = 1;
  rec.ref_old_after = ref_old_after;
  rec.volume = slot | uint64_t{crc} << 32;
  // The new block's data was copied without a fence: this one covers it.
  RedoRecord* dst = LogRecord(*this, lane, stripe, me, rec);
  const uint32_t k = lane.seq % image::kLaneRecords;
  // The record this one replaced is gone from media: its block is free.
  ReleaseHeld(lane, k);
  if (new_entry != 0) {
    // A remap that sees ref[new_pba] or map[lba] naming the block sees
    // this too, and leaves the block alone while the record is valid:
    // its redo sets ref[new_pba] to 1.
    lane.fresh[k].store(new_pba, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  if (defer) {
    uint64_t* map = MapOf(slot);
    StoreRef(new_pba, 1);
    std::atomic_ref<uint64_t>(map[lba]).store(new_entry,
                                              std::memory_order_release);
    StoreRef(old_pba, 0);
    // Durable at the lane's next fence; recovery redoes the record until
    // then (it stays valid: the next record goes to the other slot).
    lane.pending[0] = &ref[new_pba];
    lane.pending[1] = &map[lba];
    lane.pending[2] = &ref[old_pba];
    stripe.tag_lane = me;
    for (int i = 0; i < 3; i++) stripe.tag_lines[i] = lane.pending[i];
    lane.held[k] = old_pba;
    lane.kept = true;
    return Status::Ok();
  }
  // The other slot's record (whose apply the fence made durable) is
  // cleared with the apply, before this record: the older record never
  // outlives the newer one (ClearBoth).
  ClearNoDrain(*this, lane.record[(k + 1) % image::kLaneRecords]);
  if (retire) {
    // The record keeps ref_old_after (0). A crash before the clear below
    // is durable redoes 0, freeing the block; Open retires it again when
    // the media lists it bad (media.h).
    Apply(*this, slot, lba, old_entry, new_entry, 1, image::kRefRetired);
    Clear(*this, *dst);
    // Both slots are cleared, durably.
    for (uint32_t j = 0; j < image::kLaneRecords; j++) ReleaseHeld(lane, j);
    return Status::Ok();
  }
  Apply(*this, slot, lba, old_entry, new_entry, 1, ref_old_after);
  Clear(*this, *dst);
  // Both slots are cleared, durably.
  for (uint32_t j = 0; j < image::kLaneRecords; j++) ReleaseHeld(lane, j);
  if (g && scanned) {
    if (!group) group = std::unique_lock(g->mu);
    g->free.push_back(old_pba);
  }
  return Status::Ok();
}

Status Image::State::Remap(Lane& lane, uint32_t slot, uint64_t lba,
                           uint64_t old_entry, uint64_t target, bool* done,
                           bool* freed) {
  *done = false;
  *freed = false;
  const uint64_t old_pba = EntryPba(old_entry);
  if (old_pba == target) return Status::Ok();
  // Both ref locks, in index order (a write holds one at most, and one
  // pass runs at a time).
  std::mutex* a = &RefLockOf(old_pba);
  std::mutex* b = &RefLockOf(target);
  if (b < a) std::swap(a, b);
  std::unique_lock<std::mutex> la(*a);
  std::unique_lock<std::mutex> lb;
  if (b != a) lb = std::unique_lock(*b);
  const uint32_t ref_old = LoadRef(old_pba);
  const uint32_t ref_target = LoadRef(target);
  if (ref_old == 0 || ref_old == image::kRefRetired) {
    return FreeRefError(old_pba, lba, ref_old);
  }
  // The target must still be mapped (a block another entry names keeps its
  // data while its refcount is above 0: writes go out of place, and a
  // write dropping it waits for this ref lock) and hold room for one more.
  if (ref_target == 0 || ref_target >= UINT32_MAX - 1) return Status::Ok();
  // Neither block may be the new block of another lane's record that may
  // still be valid on media (Lane::fresh); a later pass finds the pair
  // again. The target: that record's redo would set its refcount back to
  // 1 while two entries name it. The old block: the remap would free a
  // block such a record names, which the rule keeps out of the argument
  // (recovery would skip the record once the entry moved on). The writer
  // set fresh[] before storing ref[target] (read above) or the map entry
  // (read under the stripe lock), and resets it only once the record is
  // gone from media. This lane's own records are replayed before this one
  // (seq order) and cleared with it.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (Fresh(old_pba, lane) || Fresh(target, lane)) return Status::Ok();
  if (lane.scratch.size() != bs()) lane.scratch.resize(bs());
  if (lane.compare.size() != bs()) lane.compare.resize(bs());
  if (!ReadData(lane.scratch.data(), old_pba, 0, bs()) ||
      !ReadData(lane.compare.data(), target, 0, bs()) ||
      std::memcmp(lane.scratch.data(), lane.compare.data(), bs()) != 0) {
    return Status::Ok();  // rewritten since it was hashed, or unreadable
  }
  const uint32_t ref_old_after = ref_old - 1;
  std::unique_lock<std::mutex> group;
  image::Group* g = nullptr;
  bool scanned = false;
  if (ref_old_after == 0) g = FreeingGroup(old_pba, &group, &scanned);
  const uint64_t new_entry = image::MakeEntry(target);
  RedoRecord rec{};
  rec.lba = lba;
  rec.old_entry = old_entry;
  rec.new_entry = new_entry;
  rec.ref_new = ref_target + 1;
  rec.ref_old_after = ref_old_after;
  rec.volume = slot | uint64_t{image::DataCrc(lane.compare.data(), bs())} << 32;
  const uint32_t me = static_cast<uint32_t>(&lane - lanes.get()) + 1;
  RedoRecord* dst = LogRecord(*this, lane, StripeOf(slot, lba), me, rec);
  // The other slot is cleared with the apply, before this record (Commit).
  ClearNoDrain(*this, lane.record[(lane.seq + 1) % image::kLaneRecords]);
  Apply(*this, slot, lba, old_entry, new_entry, ref_target + 1, ref_old_after);
  Clear(*this, *dst);
  for (uint32_t k = 0; k < image::kLaneRecords; k++) ReleaseHeld(lane, k);
  if (g && scanned) {
    if (!group) group = std::unique_lock(g->mu);
    g->free.push_back(old_pba);
  }
  *done = true;
  *freed = ref_old_after == 0;
  return Status::Ok();
}

bool Image::State::Fresh(uint64_t pba, const Lane& except) const {
  for (uint32_t i = 0; i < sb.lanes; i++) {
    if (&lanes[i] == &except) continue;
    for (const std::atomic<uint64_t>& f : lanes[i].fresh) {
      if (f.load(std::memory_order_acquire) == pba) return true;
    }
  }
  return false;
}

void Image::State::Retire(Lane& lane) {
  if (!lane.kept && !lane.pending[1]) return;
  FlushLines(*this, lane.pending);
  RedoRecord* r = lane.record;
  const uint32_t older = r[1].seq < r[0].seq;
  // The older record's apply is durable (the newer one's fence): it is
  // cleared first (ClearBoth).
  ClearNoDrain(*this, r[older]);
  // The deferred apply is durable, and the older record cleared, before
  // the newer record is cleared.
  m.Drain();
  for (const void*& p : lane.pending) p = nullptr;
  Clear(*this, r[1 - older]);
  lane.kept = false;
  for (uint32_t k = 0; k < image::kLaneRecords; k++) ReleaseHeld(lane, k);
}

void Image::State::RetireAll() {
  for (uint32_t i = 0; i < sb.lanes; i++) Retire(lanes[i]);
}

Status Image::State::CheckRecord(uint32_t i, const RedoRecord& r) const {
  auto where = "image " + m.info().path + ": redo record of lane " +
               std::to_string(i) + ": ";
  const uint64_t vol =
      sb.version >= image::kOneFenceVersion ? image::RecordSlot(r) : r.volume;
  if (vol >= sb.max_volumes) {
    return Corruption(where + "volume slot " + std::to_string(vol) +
                      " is beyond the " + std::to_string(sb.max_volumes) +
                      " slots");
  }
  if (r.lba >= sb.virtual_blocks) {
    return Corruption(where + "block " + std::to_string(r.lba) +
                      " is beyond the virtual size");
  }
  Status st = ValidateEntry(r.lba, r.old_entry);
  if (st.ok()) st = ValidateEntry(r.lba, r.new_entry);
  if (!st.ok()) {
    return st.WithContext("redo record of lane " + std::to_string(i));
  }
  if (EntryPresent(r.new_entry) &&
      (r.ref_new == 0 || r.ref_new == image::kRefRetired)) {
    return Corruption(where + "new block refcount " +
                      std::to_string(r.ref_new) + " (want 1 or more)");
  }
  return Status::Ok();
}

bool Image::State::RecordComplete(Lane& lane, const RedoRecord& r) const {
  if (!EntryPresent(r.new_entry)) return true;
  if (lane.scratch.size() != bs()) lane.scratch.resize(bs());
  // A block that cannot be read cannot be shown complete.
  if (!ReadData(lane.scratch.data(), EntryPba(r.new_entry), 0, bs())) {
    return false;
  }
  return image::DataCrc(lane.scratch.data(), bs()) == image::RecordCrc(r);
}

// Version 5. A lane's valid records are replayed in seq order; lanes in
// any order (commit.cc, "One fence"). A record is replayed when it is
// complete (its data reached media: the fence after it completed, or its
// apply never began) and map[lba] holds its old or its new entry;
// otherwise a later move of the block decided it (and its own apply was
// durable before that move changed anything), or the crash came before
// its fence. Redo only: the values are absolute.
Status Image::State::RecoverLane(uint32_t i) {
  Lane& lane = lanes[i];
  RedoRecord* recs[image::kLaneRecords];
  uint32_t n = 0;
  bool torn = false;
  for (uint32_t k = 0; k < image::kLaneRecords; k++) {
    RedoRecord& r = lane.record[k];
    lane.seq = std::max(lane.seq, r.seq);
    if (r.valid == 0) continue;
    if (!image::RecordValid(r, sb.version)) {
      torn = true;  // torn while being written: its fence never completed
      continue;
    }
    DAXSTORE_RETURN_IF_ERROR(CheckRecord(i, r));
    recs[n++] = &r;
  }
  if (n == 2 && recs[1]->seq < recs[0]->seq) std::swap(recs[0], recs[1]);
  for (uint32_t k = 0; k < n; k++) {
    const RedoRecord& r = *recs[k];
    const uint32_t slot = image::RecordSlot(r);
    const uint64_t now = LoadEntry(slot, r.lba);
    // Not complete: the crash came before its fence. Neither entry: a
    // later move decided it.
    const bool redo =
        RecordComplete(lane, r) && (now == r.old_entry || now == r.new_entry);
    if (!writable && inspect) plan.push_back({i, &r, redo});
    if (!redo) continue;
    if (!writable) {
      // A read-only open reads what recovery will leave (LoadEntry).
      if (now != r.new_entry) overlay.push_back({slot, r.lba, r.new_entry});
      for (image::Overlay& o : overlay) {
        if (o.slot == slot && o.lba == r.lba) o.entry = r.new_entry;
      }
      continue;
    }
    Apply(*this, slot, r.lba, r.old_entry, r.new_entry, r.ref_new,
          r.ref_old_after);
    recovered++;
  }
  if (writable && (n || torn)) ClearBoth(*this, lane.record);
  return Status::Ok();
}

Status Image::State::Recover() {
  if (sb.version >= image::kOneFenceVersion) {
    for (uint32_t i = 0; i < sb.lanes; i++) {
      DAXSTORE_RETURN_IF_ERROR(RecoverLane(i));
    }
    return SettleIntent();
  }
  for (uint32_t i = 0; i < sb.lanes; i++) {
    RedoRecord& r = *lanes[i].record;
    // Records written after the upgrade continue the lane's sequence, so
    // ClearBoth tells the older of two slots by seq.
    lanes[i].seq = r.seq;
    if (r.valid == 0) continue;
    if (!image::RecordValid(r, sb.version)) {
      // Torn while being written: the crash came before step 2 began.
      if (writable) Clear(*this, r);
      continue;
    }
    DAXSTORE_RETURN_IF_ERROR(CheckRecord(i, r));
    if (!writable && inspect) {
      pending.push_back(i);
      continue;
    }
    // Recovery changes refcounts, never what a map entry reads: Apply finds
    // map[lba] holding new already, Undo leaves old there, a stale record
    // is dropped. A read-only open reads the same bytes without replaying
    // (the next read-write open replays).
    if (!writable) continue;
    const uint32_t slot = static_cast<uint32_t>(r.volume);
    const uint64_t now = LoadEntry(slot, r.lba);
    if (now == r.new_entry) {
      Apply(*this, slot, r.lba, r.old_entry, r.new_entry, r.ref_new,
            r.ref_old_after);
    } else if (now == r.old_entry) {
      Undo(*this, r);
    }  // else stale: a later move of this block decided it
    Clear(*this, r);
    recovered++;
  }
  return SettleIntent();
}

}  // namespace daxstore
