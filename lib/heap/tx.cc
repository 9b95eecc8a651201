// Transactions: snapshot before store, log bitmap changes, flush at commit,
// retire the log as the commit point; roll back on any failure.
#include <cstring>
#include <utility>

#include "heap/internal.h"

namespace daxstore {

namespace {
constexpr uint64_t kUnitsPerPage = Heap::kPage / Heap::kUnit;
}

Transaction::Transaction(Heap::State& heap) : heap_(heap), s_(heap.scratch) {
  s_.Clear();
}
Transaction::~Transaction() = default;

namespace {
// Logs the PageBits of pages [first, last] not logged yet in this
// transaction, so rollback restores them.
Status LogPages(Heap::State& h, std::unordered_set<uint64_t>& logged,
                uint64_t first, uint64_t last) {
  uint64_t run_start = first;
  for (uint64_t pg = first; pg <= last + 1; ++pg) {
    const bool need = pg <= last && !logged.contains(pg);
    if (need) continue;
    if (pg > run_start) {
      const uint64_t off =
          h.hdr.bitmap_off + run_start * sizeof(heap::PageBits);
      DAXSTORE_RETURN_IF_ERROR(
          h.LogAppend(off, (pg - run_start) * sizeof(heap::PageBits)));
      for (uint64_t p = run_start; p < pg; ++p) logged.insert(p);
    }
    run_start = pg + 1;
  }
  return Status::Ok();
}
}  // namespace

Status Transaction::AddRange(const void* p, size_t n) {
  if (!s_.doomed.ok()) return s_.doomed;
  auto* b = static_cast<const uint8_t*>(p);
  const uint64_t off = b - heap_.base;
  if (b < heap_.base || off < heap_.hdr.data_off || off >= heap_.data_end() ||
      n > heap_.data_end() - off) {
    return s_.Doom(
        InvalidArgument("AddRange of " + std::to_string(n) +
                        " bytes lies outside the heap's allocatable area"));
  }
  if (n == 0) return Status::Ok();
  Status st = heap_.LogAppend(off, n);
  if (!st.ok()) return s_.Doom(st);
  s_.flush.emplace_back(off, n);
  return Status::Ok();
}

Result<uint64_t> Transaction::AllocateBytes(size_t n, bool zero) {
  if (!s_.doomed.ok()) return s_.doomed;
  if (n == 0) return s_.Doom(InvalidArgument("cannot allocate 0 bytes"));
  uint64_t units = (n + Heap::kUnit - 1) / Heap::kUnit;
  // Beyond one page, whole pages: the tail of the last page stays with it.
  if (units > kUnitsPerPage) {
    units = (units + kUnitsPerPage - 1) / kUnitsPerPage * kUnitsPerPage;
  }
  auto u = heap_.FindFree(units);
  if (!u.ok()) return s_.Doom(u.status());
  const uint64_t first = *u / kUnitsPerPage;
  const uint64_t last = (*u + units - 1) / kUnitsPerPage;
  Status st = LogPages(heap_, s_.logged_pages, first, last);
  if (!st.ok()) return s_.Doom(st);
  // The bitmap's old value is durable in the log before it changes.
  heap_.Mark(*u, units, true);
  const uint64_t off = heap_.OffsetOfUnit(*u);
  if (zero) std::memset(heap_.base + off, 0, units * Heap::kUnit);
  s_.flush.emplace_back(off, units * Heap::kUnit);
  s_.flush.emplace_back(heap_.hdr.bitmap_off + first * sizeof(heap::PageBits),
                        (last - first + 1) * sizeof(heap::PageBits));
  return off;
}

Status Transaction::FreeBytes(uint64_t offset) {
  if (!s_.doomed.ok()) return s_.doomed;
  const auto& h = heap_.hdr;
  const bool aligned = offset >= h.data_off && offset < heap_.data_end() &&
                       (offset - h.data_off) % Heap::kUnit == 0;
  const uint64_t u = aligned ? (offset - h.data_off) / Heap::kUnit : 0;
  if (!aligned || heap_.ExtentAt(u) == 0) {
    return s_.Doom(InvalidArgument("free of offset " + std::to_string(offset) +
                                   ", which starts no live allocation"));
  }
  if (!s_.freed.insert(u).second) {
    return s_.Doom(InvalidArgument("offset " + std::to_string(offset) +
                                   " freed twice in one transaction"));
  }
  if (offset == h.root_off && h.root_size) {
    return s_.Doom(InvalidArgument("the root object cannot be freed"));
  }
  s_.frees.push_back(u);
  return Status::Ok();
}

Status Transaction::Commit() {
  Heap::State& h = heap_;
  for (uint64_t u : s_.frees) {
    const uint64_t units = h.ExtentAt(u);
    const uint64_t first = u / kUnitsPerPage;
    const uint64_t last = (u + units - 1) / kUnitsPerPage;
    DAXSTORE_RETURN_IF_ERROR(LogPages(h, s_.logged_pages, first, last));
    h.Mark(u, units, false);
    // Reuse freed space first: it is likely still in the CPU's caches.
    h.cursor = first;
    s_.flush.emplace_back(h.hdr.bitmap_off + first * sizeof(heap::PageBits),
                          (last - first + 1) * sizeof(heap::PageBits));
  }
  if (h.log_used == 0) return Status::Ok();  // nothing was changed
  for (const auto& [off, len] : s_.flush) h.map.Flush(h.base + off, len);
  // Every store of the transaction is durable before the log is retired.
  h.map.Drain();
  h.LogRetire();
  return Status::Ok();
}

void Transaction::Rollback() {
  Heap::State& h = heap_;
  if (h.log_used == 0) return;  // nothing logged, nothing changed
  auto rolled = h.LogRollback();
  (void)rolled;  // entries this process wrote cannot be corrupt
  h.used_units = h.CountUsedUnits();
}

Status Heap::Run(const std::function<Status(Transaction&)>& body) {
  std::lock_guard<std::mutex> lock(s_->mu);
  Transaction tx(*s_);
  Status st = body(tx);
  if (st.ok()) st = tx.s_.doomed;
  if (st.ok()) st = tx.Commit();
  if (!st.ok()) tx.Rollback();
  return st;
}

}  // namespace daxstore
