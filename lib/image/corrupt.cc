// The corrupt flag: a write that meets an inconsistency it can see fails,
// and the image refuses writes until Check has repaired it (qcow2's
// corrupt bit). Reads go on working.
#include <cstring>
#include <mutex>

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

Status Image::State::CheckNotShared(uint32_t slot, uint64_t lba,
                                    uint64_t old_entry, uint32_t ref) const {
  // Volumes share a block only at the same virtual block (a snapshot or
  // clone copies a map), so one entry per other volume tells.
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
