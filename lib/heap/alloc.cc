// The allocation bitmap: one PageBits per 4 KiB data page. Searching and
// marking only; logging and flushing are the transaction's job.
#include <algorithm>
#include <bit>

#include "heap/internal.h"

namespace daxstore {

namespace {
constexpr uint64_t kUnitsPerPage = Heap::kPage / Heap::kUnit;  // 64

uint64_t RunMask(uint64_t units) {
  return units >= 64 ? ~uint64_t{0} : (uint64_t{1} << units) - 1;
}

// The lowest position where `units` clear bits start in w, or 64.
unsigned FreeRunIn(uint64_t w, uint64_t units) {
  if (w == 0) return 0;
  if (units >= 64) return 64;
  const uint64_t mask = RunMask(units);
  for (unsigned pos = 0; pos + units <= 64;) {
    uint64_t busy = (w >> pos) & mask;
    if (busy == 0) return pos;
    // Skip past the highest busy unit inside the window.
    pos += 64 - std::countl_zero(busy);
  }
  return 64;
}
}  // namespace

Result<uint64_t> Heap::State::FindFree(uint64_t units) {
  const uint64_t pages = hdr.pages;
  if (units <= kUnitsPerPage) {
    for (uint64_t i = 0; i < pages; ++i) {
      uint64_t pg = (cursor + i) % pages;
      unsigned pos = FreeRunIn(bits[pg].alloc, units);
      if (pos < 64) {
        cursor = pg;
        return pg * kUnitsPerPage + pos;
      }
    }
  } else {
    const uint64_t need = (units + kUnitsPerPage - 1) / kUnitsPerPage;
    for (uint64_t pass = 0; pass < 2; ++pass) {
      uint64_t pg = pass == 0 ? cursor : 0;
      const uint64_t end = pass == 0 ? pages : std::min(cursor + need, pages);
      uint64_t run = 0;
      for (; pg < end; ++pg) {
        run = bits[pg].alloc == 0 ? run + 1 : 0;
        if (run == need) {
          cursor = pg;
          return (pg + 1 - need) * kUnitsPerPage;
        }
      }
    }
  }
  return NoSpace("heap has no free run of " + std::to_string(units * kUnit) +
                 " bytes (" + std::to_string(used_units * kUnit) + " of " +
                 std::to_string(hdr.pages * kPage) + " bytes in use)");
}

uint64_t Heap::State::ExtentAt(uint64_t u) const {
  const uint64_t total = hdr.pages * kUnitsPerPage;
  if (u >= total) return 0;
  auto bit = [this](uint64_t v, bool start) {
    const heap::PageBits& b = bits[v / kUnitsPerPage];
    return ((start ? b.start : b.alloc) >> (v % kUnitsPerPage)) & 1;
  };
  if (!bit(u, true) || !bit(u, false)) return 0;
  uint64_t v = u + 1;
  while (v < total) {
    if (v % kUnitsPerPage == 0) {
      const heap::PageBits& b = bits[v / kUnitsPerPage];
      if (b.alloc == ~uint64_t{0} && b.start == 0) {  // a whole page
        v += kUnitsPerPage;
        continue;
      }
    }
    if (!bit(v, false) || bit(v, true)) break;
    ++v;
  }
  return v - u;
}

void Heap::State::Mark(uint64_t u, uint64_t units, bool allocated) {
  uint64_t v = u;
  const uint64_t end = u + units;
  while (v < end) {
    heap::PageBits& b = bits[v / kUnitsPerPage];
    const uint64_t pos = v % kUnitsPerPage;
    const uint64_t n = std::min(end - v, kUnitsPerPage - pos);
    const uint64_t mask = RunMask(n) << pos;
    if (allocated) {
      b.alloc |= mask;
      b.start &= ~mask;
    } else {
      b.alloc &= ~mask;
      b.start &= ~mask;
    }
    v += n;
  }
  heap::PageBits& first = bits[u / kUnitsPerPage];
  if (allocated) first.start |= uint64_t{1} << (u % kUnitsPerPage);
  used_units = allocated ? used_units + units : used_units - units;
}

uint64_t Heap::State::CountUsedUnits() const {
  uint64_t n = 0;
  for (uint64_t pg = 0; pg < hdr.pages; ++pg)
    n += std::popcount(bits[pg].alloc);
  return n;
}

}  // namespace daxstore
