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
// Remaps (a dedup). A record may also move map[lba] onto a block other
// entries already name: ref_new is then that block's count plus one (a
// write's is always 1), and undo gives it back ref_new - 1, which for a
// write is the 0 it had. A reader that predates remaps refuses a crash
// image holding such a record (its ref_new is not 1) rather than misread
// it. Remap records are always cleared, never kept.
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

}  // namespace

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
                            uint64_t old_entry, uint64_t new_pba,
                            image::FillRef fill, bool* used) {
  *used = false;
  if (old_entry == 0 && new_pba == image::kNoBlock) {
    return Status::Ok();  // hole stays a hole
  }
  const bool has_old = EntryPresent(old_entry);
  const uint64_t old_pba = EntryPba(old_entry);
  // Another writable volume may drop its reference to the same block
  // meanwhile; with only one, this write is the block's only writer.
  std::unique_lock<std::mutex> shared;
  const bool dedup = dedup_active.load(std::memory_order_relaxed);
  if (has_old && (writable_volumes > 1 || dedup)) {
    shared = std::unique_lock(RefLockOf(old_pba));
  }
  uint32_t ref_old = has_old ? LoadRef(old_pba) : 0;
  if (has_old && (ref_old == 0 || ref_old == image::kRefRetired)) {
    return MarkCorrupt(Corruption(
        "image " + m.info().path + ": data block " + std::to_string(old_pba) +
        " is mapped at block " + std::to_string(lba) + " but its refcount " +
        (ref_old ? "marks it retired" : "is 0") + " (free)"));
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
    g = &groups[old_pba / image::kGroupBlocks];
    scanned = g->scanned.load(std::memory_order_acquire);
    if (!scanned) {
      group = std::unique_lock(g->mu);
      scanned = g->scanned.load(std::memory_order_relaxed);
    }
  }

  uint64_t new_entry = 0;
  if (new_pba != image::kNoBlock && fill()) {
    new_entry = image::MakeEntry(new_pba);
  }
  if (old_entry == new_entry) return Status::Ok();  // hole stays a hole
  *used = new_entry != 0;

  RedoRecord rec{};
  rec.valid = image::kRedoValid;
  rec.seq = lane.record->seq + 1;
  rec.lba = lba;
  rec.old_entry = old_entry;
  rec.new_entry = new_entry;
  rec.ref_new = 1;
  rec.ref_old_after = ref_old_after;
  rec.volume = slot;
  image::SealRecord(rec);
  std::memcpy(lane.record, &rec, sizeof rec);
  m.Flush(lane.record, sizeof rec);
  // The new block's data (copied without a fence) and the record are
  // durable before any field the record names changes.
  m.Drain();
  lane.kept = false;  // replaced
  if (retire) {
    // The record keeps ref_old_after (0): recovery must restore 1 on undo.
    // A crash before the clear below is durable redoes 0, freeing the
    // block; Open retires it again when the media lists it bad (media.h).
    Apply(*this, slot, lba, old_entry, new_entry, 1, image::kRefRetired);
    Clear(*this, *lane.record);
    return Status::Ok();
  }
  Apply(*this, slot, lba, old_entry, new_entry, 1, ref_old_after);
  // Keep the record when the freed block can become the lane's spare. A
  // group not scanned yet would find the block itself, so it is not kept.
  if (g && scanned && lane.spare == image::kNoBlock && !dedup) {
    lane.spare = old_pba;
    lane.kept = true;
    return Status::Ok();
  }
  Clear(*this, *lane.record);
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
    return MarkCorrupt(Corruption(
        "image " + m.info().path + ": data block " + std::to_string(old_pba) +
        " is mapped at block " + std::to_string(lba) + " but its refcount " +
        (ref_old ? "marks it retired" : "is 0") + " (free)"));
  }
  // The target must still be mapped (a block another entry names keeps its
  // data while its refcount is above 0: writes go out of place, and a
  // write dropping it waits for this ref lock) and hold room for one more.
  if (ref_target == 0 || ref_target >= UINT32_MAX - 1) return Status::Ok();
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
  if (ref_old_after == 0) {
    g = &groups[old_pba / image::kGroupBlocks];
    scanned = g->scanned.load(std::memory_order_acquire);
    if (!scanned) {
      // No scan may see the block free before the record is cleared.
      group = std::unique_lock(g->mu);
      scanned = g->scanned.load(std::memory_order_relaxed);
    }
  }
  const uint64_t new_entry = image::MakeEntry(target);
  RedoRecord rec{};
  rec.valid = image::kRedoValid;
  rec.seq = lane.record->seq + 1;
  rec.lba = lba;
  rec.old_entry = old_entry;
  rec.new_entry = new_entry;
  rec.ref_new = ref_target + 1;
  rec.ref_old_after = ref_old_after;
  rec.volume = slot;
  image::SealRecord(rec);
  std::memcpy(lane.record, &rec, sizeof rec);
  // The record is durable before any field it names changes.
  m.Persist(lane.record, sizeof rec);
  lane.kept = false;  // replaced
  Apply(*this, slot, lba, old_entry, new_entry, rec.ref_new, ref_old_after);
  Clear(*this, *lane.record);
  if (g && scanned) {
    if (!group) group = std::unique_lock(g->mu);
    g->free.push_back(old_pba);
  }
  *done = true;
  *freed = ref_old_after == 0;
  return Status::Ok();
}

void Image::State::Retire(Lane& lane) {
  if (!lane.kept) return;
  Clear(*this, *lane.record);
  lane.kept = false;
}

void Image::State::RetireAll() {
  for (uint32_t i = 0; i < sb.lanes; i++) Retire(lanes[i]);
}

Status Image::State::Recover() {
  for (uint32_t i = 0; i < sb.lanes; i++) {
    RedoRecord& r = *lanes[i].record;
    if (r.valid == 0) continue;
    if (!image::RecordValid(r, sb.version)) {
      // Torn while being written: the crash came before step 2 began.
      if (writable) Clear(*this, r);
      continue;
    }
    auto where = "image " + m.info().path + ": redo record of lane " +
                 std::to_string(i) + ": ";
    if (r.volume >= sb.max_volumes) {
      return Corruption(where + "volume slot " + std::to_string(r.volume) +
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
