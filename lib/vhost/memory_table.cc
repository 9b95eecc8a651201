#include "vhost/memory_table.h"

#include <sys/mman.h>  // PROT_* and MAP_* for Platform::Map

#include <algorithm>
#include <string>
#include <utility>

#include "platform/guest_memory_guard.h"

namespace daxstore::vhost {
namespace {

bool Wraps(uint64_t start, uint64_t len) { return start + len < start; }

bool Overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

// Offset of [addr, addr + len) inside [start, start + size), or false.
bool Inside(uint64_t start, uint64_t size, uint64_t addr, uint64_t len,
            uint64_t* off) {
  if (addr < start) return false;
  uint64_t o = addr - start;
  if (o > size || len > size - o) return false;
  *off = o;
  return true;
}

}  // namespace

MemoryTable::MemoryTable(MemoryTable&& o) noexcept
    : regions_(std::exchange(o.regions_, {})), os_(std::move(o.os_)) {}

MemoryTable& MemoryTable::operator=(MemoryTable&& o) noexcept {
  if (this != &o) {
    Release();
    regions_ = std::exchange(o.regions_, {});
    os_ = std::move(o.os_);
  }
  return *this;
}

MemoryTable::~MemoryTable() { Release(); }

void MemoryTable::Release() {
  for (auto& r : regions_) {
    // Forget the range before unmapping it: the address may be reused.
    UnregisterGuestMemory(r.guard);
    if (r.map != nullptr) (void)os_->Unmap(r.map, r.map_len);
  }
  regions_.clear();
}

Status MemoryTable::Validate(std::span<const MemoryRegion> regions) {
  if (regions.empty() || regions.size() > kMaxRegions)
    return InvalidArgument("memory table: " + std::to_string(regions.size()) +
                           " regions (1 to 8 allowed)");
  for (size_t i = 0; i < regions.size(); ++i) {
    const auto& r = regions[i];
    if (r.memory_size == 0 || Wraps(r.guest_phys_addr, r.memory_size) ||
        Wraps(r.userspace_addr, r.memory_size) ||
        Wraps(r.mmap_offset, r.memory_size) ||
        r.mmap_offset + r.memory_size > SIZE_MAX / 2)
      return InvalidArgument("memory region " + std::to_string(i) +
                             " is empty or wraps around");
    for (size_t j = 0; j < i; ++j) {
      const auto& o = regions[j];
      if (Overlap(r.guest_phys_addr, r.memory_size, o.guest_phys_addr,
                  o.memory_size) ||
          Overlap(r.userspace_addr, r.memory_size, o.userspace_addr,
                  o.memory_size))
        return InvalidArgument("memory regions " + std::to_string(j) + " and " +
                               std::to_string(i) + " overlap");
    }
  }
  return Status::Ok();
}

Result<MemoryTable> MemoryTable::Map(std::span<const MemoryRegion> regions,
                                     std::span<const int> fds,
                                     std::shared_ptr<Platform> os) {
  DAXSTORE_RETURN_IF_ERROR(Validate(regions));
  if (fds.size() != regions.size())
    return InvalidArgument("memory table: " + std::to_string(regions.size()) +
                           " regions but " + std::to_string(fds.size()) +
                           " file descriptors");
  MemoryTable t;
  t.os_ = std::move(os);
  for (size_t i = 0; i < regions.size(); ++i) {
    const auto& r = regions[i];
    size_t len = r.mmap_offset + r.memory_size;
    auto st = t.os_->Stat(fds[i]);
    if (!st.ok()) return st.status().WithContext("memory region fd");
    // A shorter file would fault (SIGBUS) on access past its end.
    if (st->type == FileInfo::Type::kRegular && st->size < len)
      return InvalidArgument("memory region " + std::to_string(i) +
                             " is larger than its file");
    auto p =
        t.os_->Map(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
    if (!p.ok()) return p.status().WithContext("mapping a memory region");
    t.regions_.push_back(
        {r, static_cast<uint8_t*>(*p) + r.mmap_offset, *p, len});
    // The front end keeps the fd and may shrink the file later.
    DAXSTORE_ASSIGN_OR_RETURN(t.regions_.back().guard,
                              RegisterGuestMemory(*p, len));
    auto sealed = t.os_->SizeIsSealed(fds[i]);
    t.regions_.back().sealed = sealed.ok() && *sealed;
  }
  return t;
}

Result<MemoryTable> MemoryTable::Borrow(std::span<const MemoryRegion> regions,
                                        std::span<void* const> bases) {
  DAXSTORE_RETURN_IF_ERROR(Validate(regions));
  if (bases.size() != regions.size())
    return InvalidArgument("memory table: one base per region");
  MemoryTable t;
  for (size_t i = 0; i < regions.size(); ++i)
    t.regions_.push_back(
        {regions[i], static_cast<uint8_t*>(bases[i]), nullptr, 0});
  return t;
}

int MemoryTable::FaultedRegion() const {
  for (size_t i = 0; i < regions_.size(); ++i)
    if (GuestFaults(regions_[i].guard) != 0) return static_cast<int>(i);
  return -1;
}

uint64_t MemoryTable::Faults() const {
  uint64_t n = 0;
  for (const auto& r : regions_) n += GuestFaults(r.guard);
  return n;
}

uint64_t MemoryTable::GuestPhysEnd() const {
  uint64_t end = 0;
  for (const auto& r : regions_)
    end = std::max(end, r.r.guest_phys_addr + r.r.memory_size);
  return end;
}

bool MemoryTable::AllSealed() const {
  for (const auto& r : regions_)
    if (!r.sealed) return false;
  return !regions_.empty();
}

void* MemoryTable::Translate(uint64_t gpa, uint64_t len) const {
  uint64_t off;
  for (const auto& r : regions_)
    if (Inside(r.r.guest_phys_addr, r.r.memory_size, gpa, len, &off))
      return r.base + off;
  return nullptr;
}

void* MemoryTable::TranslateUser(uint64_t uaddr, uint64_t len) const {
  uint64_t off;
  for (const auto& r : regions_)
    if (Inside(r.r.userspace_addr, r.r.memory_size, uaddr, len, &off))
      return r.base + off;
  return nullptr;
}

}  // namespace daxstore::vhost
