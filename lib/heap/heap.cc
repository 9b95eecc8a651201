// Creating, opening (with recovery) and inspecting a heap.
#include <cstring>

#include "heap/internal.h"

namespace daxstore {

using heap::Header;

namespace {

constexpr uint64_t kUnitsPerPage = Heap::kPage / Heap::kUnit;

uint64_t RoundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Where everything goes in `size` bytes with a log of log_size bytes.
Result<Header> Plan(uint64_t size, const HeapOptions& o) {
  if (size < Heap::kMinSize) {
    return InvalidArgument(
        "a heap needs at least " + std::to_string(Heap::kMinSize >> 10) +
        " KiB; the mapping has " + std::to_string(size) + " bytes");
  }
  uint64_t log = o.log_size
                     ? o.log_size
                     : std::clamp<uint64_t>(size / 32, 16 << 10, 8 << 20);
  log = RoundUp(log, Heap::kPage);
  Header h{};
  h.magic = 0;  // set last
  h.version = heap::kVersion;
  h.unit = Heap::kUnit;
  h.size = size;
  h.log_off = Heap::kPage;
  h.log_size = log;
  h.bitmap_off = h.log_off + log;
  if (h.bitmap_off >= size) {
    return InvalidArgument("undo log of " + std::to_string(log) +
                           " bytes leaves no room for data in " +
                           std::to_string(size) + " bytes");
  }
  // Each data page costs 4 KiB plus 16 bytes of bitmap.
  uint64_t pages =
      (size - h.bitmap_off) / (Heap::kPage + sizeof(heap::PageBits));
  h.data_off =
      RoundUp(h.bitmap_off + pages * sizeof(heap::PageBits), Heap::kPage);
  while (pages > 0 && h.data_off + pages * Heap::kPage > size) --pages;
  h.pages = pages;
  if (pages < 2) {
    return InvalidArgument("heap of " + std::to_string(size) +
                           " bytes has no room for data after its log");
  }
  return h;
}

Status Validate(const Header& h, uint64_t map_size) {
  auto bad = [&](const std::string& what) {
    return Corruption("heap header is inconsistent: " + what);
  };
  if (h.version != heap::kVersion) {
    return Unsupported("heap format version " + std::to_string(h.version) +
                       "; this build reads version " +
                       std::to_string(heap::kVersion));
  }
  if (h.unit != Heap::kUnit) return bad("unit " + std::to_string(h.unit));
  if (h.size > map_size) {
    return bad("heap of " + std::to_string(h.size) + " bytes on a " +
               std::to_string(map_size) + "-byte mapping");
  }
  if (h.log_off != Heap::kPage || h.log_size < Heap::kPage ||
      h.bitmap_off != h.log_off + h.log_size ||
      h.data_off < h.bitmap_off + h.pages * sizeof(heap::PageBits) ||
      h.data_off % Heap::kPage || h.pages == 0 ||
      h.data_off + h.pages * Heap::kPage > h.size) {
    return bad("areas overlap or exceed the heap");
  }
  if (h.root_size &&
      (h.root_off < h.data_off ||
       h.root_off + h.root_size > h.data_off + h.pages * Heap::kPage)) {
    return bad("root outside the data area");
  }
  return Status::Ok();
}

}  // namespace

Heap::Heap(std::unique_ptr<State> s) : s_(std::move(s)) {}
Heap::~Heap() = default;

uint8_t* Heap::base() const { return s_->base; }
uint64_t Heap::root_offset() const { return s_->hdr.root_off; }
uint64_t Heap::root_size() const { return s_->hdr.root_size; }
const Mapping& Heap::mapping() const { return s_->map; }

namespace {
std::unique_ptr<Heap::State> Bind(Mapping m, const Header& h) {
  auto s = std::make_unique<Heap::State>(std::move(m));
  s->base = s->map.bytes();
  s->hdr = h;
  s->bits = reinterpret_cast<heap::PageBits*>(s->base + h.bitmap_off);
  s->log_head = reinterpret_cast<heap::LogHead*>(s->base + h.log_off);
  s->log_entries = s->base + h.log_off + heap::kLine;
  s->log_capacity = h.log_size - heap::kLine;
  return s;
}
}  // namespace

Result<std::unique_ptr<Heap>> Heap::Create(Mapping m, const HeapOptions& o) {
  if (m.info().access != Access::kReadWrite) {
    return InvalidArgument("cannot create a heap on read-only " +
                           m.info().path);
  }
  auto plan = Plan(m.size(), o);
  if (!plan.ok()) return plan.status().WithContext(m.info().path);
  Header h = *plan;
  const uint64_t root_units = RoundUp(o.root_size, kUnit) / kUnit;
  if (root_units > h.pages * kUnitsPerPage) {
    return InvalidArgument("root of " + std::to_string(o.root_size) +
                           " bytes does not fit in the heap");
  }
  uint8_t* b = m.bytes();
  // Unpublish any older heap first, so a crash below leaves no heap at all.
  m.MemsetPersist(b, 0, sizeof(Header));
  m.MemsetPersist(b + h.log_off, 0, h.data_off - h.log_off);
  auto s = Bind(std::move(m), h);
  s->log_head->gen = 1;
  s->map.Persist(&s->log_head->gen, 8);
  if (root_units) {
    auto u = s->FindFree(root_units);
    if (!u.ok()) return u.status();
    s->Mark(*u, root_units, true);
    h.root_off = s->OffsetOfUnit(*u);
    h.root_size = o.root_size;
    s->map.MemsetPersist(b + h.root_off, 0, root_units * kUnit);
    s->map.Persist(s->bits, h.pages * sizeof(heap::PageBits));
  }
  s->hdr = h;
  s->map.MemcpyPersist(b, &h, sizeof h);
  // Every other byte of the heap is durable before the magic publishes it.
  const uint64_t magic = heap::kMagic;
  s->map.MemcpyPersist(b, &magic, sizeof magic);
  s->hdr.magic = magic;
  return std::unique_ptr<Heap>(new Heap(std::move(s)));
}

Result<std::unique_ptr<Heap>> Heap::Open(Mapping m) {
  if (m.size() < sizeof(Header)) {
    return NotFound(m.info().path + " is too small to hold a heap");
  }
  Header h;
  std::memcpy(&h, m.bytes(), sizeof h);
  if (h.magic != heap::kMagic) {
    return NotFound(m.info().path +
                    " holds no heap (or its creation did not finish); "
                    "create one with Heap::Create");
  }
  DAXSTORE_RETURN_IF_ERROR(Validate(h, m.size()).WithContext(m.info().path));
  const bool writable = m.info().access == Access::kReadWrite;
  auto s = Bind(std::move(m), h);
  if (!writable) {
    return InvalidArgument("a heap needs a read-write mapping to recover");
  }
  auto rolled = s->LogRollback();
  if (!rolled.ok()) return rolled.status().WithContext(s->map.info().path);
  s->recovered = *rolled > 0;
  s->used_units = s->CountUsedUnits();
  auto heap = std::unique_ptr<Heap>(new Heap(std::move(s)));
  DAXSTORE_RETURN_IF_ERROR(heap->Check());
  return heap;
}

HeapStats Heap::Stats() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  HeapStats st;
  st.capacity = s_->hdr.pages * kPage;
  st.used = s_->used_units * kUnit;
  st.log_size = s_->hdr.log_size;
  st.recovered = s_->recovered;
  return st;
}

void Heap::ForEachAllocation(
    const std::function<void(uint64_t, uint64_t)>& fn) const {
  std::lock_guard<std::mutex> lock(s_->mu);
  const uint64_t total = s_->hdr.pages * kUnitsPerPage;
  for (uint64_t u = 0; u < total;) {
    if (s_->bits[u / kUnitsPerPage].start == 0) {
      u = (u / kUnitsPerPage + 1) * kUnitsPerPage;
      continue;
    }
    uint64_t n = s_->ExtentAt(u);
    if (n == 0) {
      ++u;
      continue;
    }
    fn(s_->OffsetOfUnit(u), n * kUnit);
    u += n;
  }
}

Status Heap::Check() const {
  std::lock_guard<std::mutex> lock(s_->mu);
  bool prev_alloc = false;
  for (uint64_t pg = 0; pg < s_->hdr.pages; ++pg) {
    const heap::PageBits b = s_->bits[pg];
    if (b.start & ~b.alloc) {
      return Corruption("page " + std::to_string(pg) +
                        ": an allocation starts on a free unit");
    }
    // Units whose predecessor is free must start an allocation.
    const uint64_t pred = (b.alloc << 1) | (prev_alloc ? 1 : 0);
    if (b.alloc & ~pred & ~b.start) {
      return Corruption("page " + std::to_string(pg) +
                        ": allocated units belong to no allocation");
    }
    prev_alloc = b.alloc >> 63;
  }
  if (s_->hdr.root_size &&
      !s_->ExtentAt((s_->hdr.root_off - s_->hdr.data_off) / kUnit)) {
    return Corruption("the root object is not allocated");
  }
  return Status::Ok();
}

}  // namespace daxstore
