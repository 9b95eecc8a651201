// The corrupt flag: a write that meets an inconsistency it can see fails,
// and the image refuses writes until Check has repaired it (qcow2's
// corrupt bit). Reads go on working.
#include <cstring>
#include <mutex>
#include <vector>

#include "image/engine.h"

namespace daxstore {

void Image::State::StoreCorruptFlag(bool on) {
  std::lock_guard lock(corrupt_mu);
  if (on) {
    sb.flags |= image::kFlagCorrupt;
  } else {
    sb.flags &= ~image::kFlagCorrupt;
  }
  image::SealSuperblock(sb);
  uint8_t* base = m.bytes();
  // The primary is durable before the backup: a crash in between leaves
  // the primary (the copy Open reads) right and the backup stale, which
  // Check repairs.
  m.MemcpyPersist(base, &sb, sizeof sb);
  m.MemcpyPersist(base + sb.backup_offset, &sb, sizeof sb);
  corrupt.store(on, std::memory_order_release);
}

Status Image::State::MarkCorrupt(const Status& why) {
  // The flag is durable before the failed write returns, so no later
  // write (in this process or the next) builds on the inconsistency.
  if (writable && !corrupt.load(std::memory_order_acquire)) {
    StoreCorruptFlag(true);
  }
  return Corruption(why.message() +
                    "; the image is now flagged corrupt and refuses writes "
                    "(reads work): run 'daxstore image check --repair=all " +
                    m.info().path + "'");
}

Status Image::State::CorruptError() const {
  return Corruption("image " + m.info().path +
                    " is flagged corrupt (a write met an inconsistency) and "
                    "opens read-only: run 'daxstore image check "
                    "--repair=all " +
                    m.info().path + "' to repair it and clear the flag");
}

Status Image::State::VerifyRefs() {
  if (refs_verified.load(std::memory_order_acquire)) return Status::Ok();
  if (!writable || corrupt.load(std::memory_order_acquire)) {
    return Status::Ok();  // no write gets past these anyway
  }
  // Entries naming each block, saturating: real counts stay far below.
  std::vector<uint8_t> count(sb.data_blocks, 0);
  for (uint32_t v = 0; v < sb.max_volumes; v++) {
    if (!vols[v].live && !vols[v].damaged) continue;
    for (uint64_t lba = 0; lba < sb.virtual_blocks; lba++) {
      const uint64_t e = LoadEntry(v, lba);
      if (e == 0 || !EntryOk(e)) continue;
      uint8_t& c = count[image::EntryPba(e)];
      if (c != UINT8_MAX) c++;
    }
  }
  for (uint64_t pba = 0; pba < sb.data_blocks; pba++) {
    const uint32_t ref = LoadRef(pba);
    const bool low = ref == image::kRefRetired ? count[pba] != 0
                     : count[pba] == UINT8_MAX ? ref < UINT8_MAX
                                               : ref < count[pba];
    if (!low) continue;
    return MarkCorrupt(Corruption(
        "image " + m.info().path + ": data block " + std::to_string(pba) +
        " is named by " + (count[pba] == UINT8_MAX ? "at least " : "") +
        std::to_string(count[pba]) + " map entries but its refcount is " +
        (ref == image::kRefRetired ? std::string("retired")
                                   : std::to_string(ref)) +
        ": a write could free or reuse it under a volume that maps it"));
  }
  refs_verified.store(true, std::memory_order_release);
  return Status::Ok();
}

Status Image::State::CheckNotShared(uint32_t slot, uint64_t lba,
                                    uint64_t old_entry, uint32_t ref) const {
  // Snapshots and clones share a block at the same virtual block (they
  // copy a map), so one entry per other volume finds those. (A dedup also
  // shares blocks across virtual blocks; this check does not see those.)
  for (uint32_t v = 0; v < sb.max_volumes; v++) {
    if (v == slot || (!vols[v].live && !vols[v].damaged)) continue;
    if (LoadEntry(v, lba) != old_entry) continue;
    return Corruption("image " + m.info().path + ": data block " +
                      std::to_string(image::EntryPba(old_entry)) +
                      " is mapped at block " + std::to_string(lba) +
                      " by more volumes than its refcount " +
                      std::to_string(ref) + " admits");
  }
  return Status::Ok();
}

}  // namespace daxstore
