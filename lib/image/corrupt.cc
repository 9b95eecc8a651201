// The corrupt flag: a write that meets an inconsistency it can see fails,
// and the image refuses writes until Check has repaired it (qcow2's
// corrupt bit). Reads go on working.
#include <algorithm>
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

Result<std::vector<std::pair<uint64_t, uint64_t>>> Image::State::StoredLbas(
    std::initializer_list<uint32_t> slots) const {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  const uint8_t* base = m.bytes();
  for (uint32_t v : slots) {
    const uint64_t at = static_cast<uint64_t>(
        reinterpret_cast<const uint8_t*>(MapOf(v)) - base);
    auto data = m.DataRanges(at, sb.virtual_blocks * sizeof(uint64_t));
    if (!data.ok()) return data.status();
    for (const ByteRange& r : *data) {
      const uint64_t first = (r.offset - at) / sizeof(uint64_t);
      const uint64_t last = std::min<uint64_t>(
          sb.virtual_blocks,
          (r.offset + r.length - at + sizeof(uint64_t) - 1) / sizeof(uint64_t));
      if (first < last) out.push_back({first, last});
    }
  }
  std::sort(out.begin(), out.end());
  std::vector<std::pair<uint64_t, uint64_t>> merged;
  for (auto r : out) {
    if (!merged.empty() && r.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, r.second);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

Status Image::State::VerifyRefs() {
  if (refs_verified.load(std::memory_order_acquire)) return Status::Ok();
  if (!writable) return Status::Ok();  // no write gets past this anyway
  // Another writer may have flagged it while this one waited for the lanes.
  if (corrupt.load(std::memory_order_acquire)) return CorruptError();
  // The data blocks map entries name, one per entry. Kept as a sorted list
  // while it is smaller than a byte per data block (a sparse image), so
  // the check costs what is mapped, not what the image could hold.
  std::vector<uint64_t> named;
  std::vector<uint8_t> count;  // saturating counts, once `named` outgrows
  const uint64_t list_max = sb.data_blocks / sizeof(uint64_t);
  auto name = [&](uint64_t pba) {
    if (count.empty()) {
      named.push_back(pba);
      if (named.size() <= list_max) return;
      count.assign(sb.data_blocks, 0);
      for (uint64_t p : named) {
        if (count[p] != UINT8_MAX) count[p]++;
      }
      named.clear();
      named.shrink_to_fit();
      return;
    }
    if (count[pba] != UINT8_MAX) count[pba]++;
  };
  for (uint32_t v = 0; v < sb.max_volumes; v++) {
    if (!vols[v].live && !vols[v].damaged) continue;
    DAXSTORE_ASSIGN_OR_RETURN(auto stored, StoredLbas({v}));
    for (auto [first, last] : stored) {
      for (uint64_t lba = first; lba < last; lba++) {
        const uint64_t e = LoadEntry(v, lba);
        if (e != 0 && EntryOk(e)) name(image::EntryPba(e));
      }
    }
  }
  // Corruption when the refcount of pba admits fewer than the n entries
  // naming it (at least n when saturated).
  auto low = [&](uint64_t pba, uint64_t n, bool saturated) -> Status {
    const uint32_t ref = LoadRef(pba);
    const bool too_low = ref == image::kRefRetired || ref < n;
    if (!too_low) return Status::Ok();
    return MarkCorrupt(Corruption(
        "image " + m.info().path + ": data block " + std::to_string(pba) +
        " is named by " + (saturated ? "at least " : "") + std::to_string(n) +
        " map entries but its refcount is " +
        (ref == image::kRefRetired ? std::string("retired")
                                   : std::to_string(ref)) +
        ": a write could free or reuse it under a volume that maps it"));
  };
  if (count.empty()) {
    std::sort(named.begin(), named.end());
    for (size_t i = 0; i < named.size();) {
      size_t j = i;
      while (j < named.size() && named[j] == named[i]) j++;
      DAXSTORE_RETURN_IF_ERROR(low(named[i], j - i, false));
      i = j;
    }
  } else {
    for (uint64_t pba = 0; pba < sb.data_blocks; pba++) {
      if (count[pba] == 0) continue;  // no entry: no refcount can be too low
      const bool sat = count[pba] == UINT8_MAX;
      DAXSTORE_RETURN_IF_ERROR(low(pba, count[pba], sat));
    }
  }
  refs_verified.store(true, std::memory_order_release);
  return Status::Ok();
}

}  // namespace daxstore
