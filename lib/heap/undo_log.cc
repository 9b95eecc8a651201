// The undo log: snapshots made durable before the caller stores, rolled
// back newest-first, retired by one 8-byte generation bump.
#include <cstring>

#include "heap/internal.h"

namespace daxstore {
namespace heap {

uint64_t EntrySum(uint64_t gen, uint64_t off, uint64_t len, const void* data) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  uint64_t h = 0x243f6a8885a308d3ull;
  auto mix = [&h](uint64_t w) {
    h = (h ^ w) * kMul;
    h ^= h >> 31;
  };
  mix(gen);
  mix(off);
  mix(len);
  auto* p = static_cast<const uint8_t*>(data);
  for (uint64_t i = 0; i < len; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);  // len is a multiple of 8
    mix(w);
  }
  return h;
}

}  // namespace heap

using heap::LogEntry;

Status Heap::State::LogAppend(uint64_t off, uint64_t len) {
  // Whole aligned 8-byte words: rollback then rewrites only words, and the
  // widened range stays inside the same 64-byte unit, so inside the data
  // area and inside the same allocation.
  const uint64_t start = off & ~uint64_t{7};
  const uint64_t words = ((off + len + 7) & ~uint64_t{7}) - start;
  const uint64_t need = sizeof(LogEntry) + words;
  if (log_used + need > log_capacity) {
    return NoSpace("transaction snapshots exceed the heap's " +
                   std::to_string(hdr.log_size) +
                   "-byte undo log; split the transaction or create the heap "
                   "with a larger log_size");
  }
  LogEntry e{start, words, 0, 0};
  e.csum = heap::EntrySum(log_head->gen, start, words, base + start);
  uint8_t* at = log_entries + log_used;
  map.MemcpyPersist(at + sizeof e, base + start, words, kCopyNoDrain);
  map.MemcpyPersist(at, &e, sizeof e, kCopyNoDrain);
  // The snapshot is durable before the caller stores into the range.
  map.Drain();
  log_used += need;
  return Status::Ok();
}

Result<uint64_t> Heap::State::LogRollback() {
  const uint64_t gen = log_head->gen;
  std::vector<uint64_t> valid;  // entry positions, oldest first
  uint64_t pos = 0;
  while (pos + sizeof(LogEntry) <= log_capacity) {
    LogEntry e;
    std::memcpy(&e, log_entries + pos, sizeof e);
    if (e.len == 0 || e.len % 8 || e.off % 8 ||
        e.len > log_capacity - pos - sizeof e) {
      break;
    }
    const uint8_t* data = log_entries + pos + sizeof e;
    if (e.csum != heap::EntrySum(gen, e.off, e.len, data)) break;
    if (e.off < hdr.bitmap_off || e.off > data_end() - e.len) {
      // Checksum-valid but pointing outside the data area: not torn, wrong.
      return Corruption("undo-log entry at " + std::to_string(pos) +
                        " restores " + std::to_string(e.len) + " bytes at " +
                        std::to_string(e.off) + ", outside the heap");
    }
    valid.push_back(pos);
    pos += sizeof e + e.len;
  }
  for (auto it = valid.rbegin(); it != valid.rend(); ++it) {
    LogEntry e;
    std::memcpy(&e, log_entries + *it, sizeof e);
    map.MemcpyPersist(base + e.off, log_entries + *it + sizeof e, e.len,
                      kCopyNoDrain);
  }
  // Restored bytes are durable before the log stops describing them.
  if (!valid.empty()) map.Drain();
  LogRetire();
  return static_cast<uint64_t>(valid.size());
}

void Heap::State::LogRetire() {
  // One aligned 8-byte store: every entry is valid or none is.
  log_head->gen = log_head->gen + 1;
  map.Persist(&log_head->gen, sizeof log_head->gen);
  log_used = 0;
}

}  // namespace daxstore
