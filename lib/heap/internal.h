// The heap's persistent layout and its private state.
//
// Layout (offsets from the start of the mapping):
//   0            Header (one 4 KiB page; magic written last by Create)
//   log_off      undo log: LogHead in its own cache line, then entries
//   bitmap_off   one PageBits per data page: which 64-byte units are
//                allocated, and which start an allocation
//   data_off     data pages, 4 KiB each (the root is the first allocation)
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "daxstore/heap.h"

namespace daxstore {
namespace heap {

inline constexpr uint64_t kMagic = 0x5041454853584144ull;  // "DAXSHEAP"
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kLine = 64;

struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t unit;
  uint64_t size;  // bytes of the mapping the heap was made on
  uint64_t log_off;
  uint64_t log_size;
  uint64_t bitmap_off;
  uint64_t data_off;
  uint64_t pages;  // data pages
  uint64_t root_off;
  uint64_t root_size;
};

// The log's only mutable word. Entries are valid only if their checksum
// covers the current generation; bumping it retires them all at once.
struct LogHead {
  uint64_t gen;
};

struct LogEntry {
  uint64_t off;   // heap offset the snapshot came from
  uint64_t len;   // bytes of data following the entry (padded to 8)
  uint64_t csum;  // over gen, off, len and data
  uint64_t pad;
};
static_assert(sizeof(LogEntry) == 32);

struct PageBits {
  uint64_t alloc;  // bit i: unit i of the page is in use
  uint64_t start;  // bit i: unit i is the first unit of an allocation
};
static_assert(sizeof(PageBits) == 16);

// Checksum of a log entry's identity and data (torn-write detection, not
// security).
uint64_t EntrySum(uint64_t gen, uint64_t off, uint64_t len, const void* data);

// A transaction's bookkeeping in DRAM. One per heap, reused (transactions
// run one at a time) so that a transaction allocates nothing in steady
// state.
struct TxScratch {
  std::vector<std::pair<uint64_t, uint64_t>> flush;  // (offset, length)
  std::vector<uint64_t> frees;                       // first units
  std::unordered_set<uint64_t> freed;
  std::unordered_set<uint64_t> logged_pages;  // PageBits already in the log
  Status doomed;                              // first failure, if any

  void Clear() {
    flush.clear();
    frees.clear();
    freed.clear();
    logged_pages.clear();
    doomed = Status::Ok();
  }
  Status Doom(Status s) {
    if (doomed.ok()) doomed = s;
    return s;
  }
};

}  // namespace heap

struct Heap::State {
  explicit State(Mapping m) : map(std::move(m)) {}
  Mapping map;
  uint8_t* base = nullptr;
  heap::Header hdr{};  // a validated copy
  heap::PageBits* bits = nullptr;
  heap::LogHead* log_head = nullptr;
  uint8_t* log_entries = nullptr;  // first entry
  uint64_t log_capacity = 0;       // bytes available to entries

  mutable std::mutex mu;  // held for a whole transaction
  // Guarded by mu:
  uint64_t log_used = 0;  // bytes of entries in the running transaction
  uint64_t used_units = 0;
  uint64_t cursor = 0;  // page where the next search starts
  bool recovered = false;
  heap::TxScratch scratch;

  uint64_t data_end() const { return hdr.data_off + hdr.pages * kPage; }
  uint64_t OffsetOfUnit(uint64_t u) const { return hdr.data_off + u * kUnit; }

  // --- undo log (undo_log.cc); mu held ---
  // Appends a durable snapshot of [off, off + len). kNoSpace when full.
  Status LogAppend(uint64_t off, uint64_t len);
  // Restores every valid entry, newest first, then retires the log.
  // Returns how many entries it rolled back, or kCorruption.
  Result<uint64_t> LogRollback();
  // Retires every entry with one durable 8-byte store (the commit point).
  void LogRetire();

  // --- allocation bitmap (alloc.cc); mu held ---
  // The first unit of a free run for n units (see heap.h), or kNoSpace.
  Result<uint64_t> FindFree(uint64_t units);
  // Units of the live allocation starting at unit u; 0 if none starts there.
  uint64_t ExtentAt(uint64_t u) const;
  // Sets or clears the bits of [u, u + units). Plain stores; the caller
  // logs the PageBits first and flushes them before commit.
  void Mark(uint64_t u, uint64_t units, bool allocated);
  uint64_t CountUsedUnits() const;
};

}  // namespace daxstore
