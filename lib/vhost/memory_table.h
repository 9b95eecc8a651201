// The guest memory a vhost-user front end shares: regions mapped from the
// file descriptors of SET_MEM_TABLE. Every address the backend dereferences
// goes through Translate, which returns a pointer only if the whole range
// lies inside one mapped region; nothing else of the process is reachable.
// Mapped regions are registered as guest memory (platform/
// guest_memory_guard.h): if the front end shrinks a region's file later, a
// fault in it is repaired with zero pages and counted instead of killing
// the process; callers check FaultedRegion() after each request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "daxstore/platform.h"
#include "daxstore/status.h"
#include "vhost/protocol.h"

namespace daxstore::vhost {

class MemoryTable {
 public:
  MemoryTable() = default;
  MemoryTable(MemoryTable&&) noexcept;
  MemoryTable& operator=(MemoryTable&&) noexcept;
  MemoryTable(const MemoryTable&) = delete;
  MemoryTable& operator=(const MemoryTable&) = delete;
  ~MemoryTable();  // unmaps every region

  // Validates the regions (non-empty, no address wraps, no two regions
  // overlap in guest-physical or front-end address space, each fd is big
  // enough for mmap_offset + size) and maps them shared, read-write through
  // os, which also unmaps them. Takes nothing from `fds`: the caller closes
  // them.
  [[nodiscard]] static Result<MemoryTable> Map(
      std::span<const MemoryRegion> regions, std::span<const int> fds,
      std::shared_ptr<Platform> os);
  // Checks the same rules without mapping (for the fuzz target).
  [[nodiscard]] static Status Validate(std::span<const MemoryRegion> regions);
  // A table over memory the caller owns (tests, fuzzing); not unmapped.
  [[nodiscard]] static Result<MemoryTable> Borrow(
      std::span<const MemoryRegion> regions, std::span<void* const> bases);

  // Host pointer for [gpa, gpa + len) or nullptr if any byte of it is not
  // guest memory. len 0 is accepted only inside a region.
  void* Translate(uint64_t gpa, uint64_t len) const;
  // The same for front-end virtual addresses (vring addresses).
  void* TranslateUser(uint64_t uaddr, uint64_t len) const;

  size_t size() const { return regions_.size(); }
  // One past the highest guest-physical address of any region (0: none).
  uint64_t GuestPhysEnd() const;

  // The first region in which an access faulted (its file shrank under
  // us: those pages now read zeros and drop writes), or -1. Lock-free.
  int FaultedRegion() const;
  // Faults repaired in every region so far.
  uint64_t Faults() const;
  // True if every region's file is size-sealed (F_SEAL_SHRINK and
  // F_SEAL_GROW, as QEMU's memory-backend-memfd sets): no fault possible.
  bool AllSealed() const;

 private:
  struct Region {
    MemoryRegion r;
    uint8_t* base = nullptr;  // host address of guest_phys_addr
    void* map = nullptr;      // what munmap gets (nullptr if borrowed)
    size_t map_len = 0;
    int guard = -1;  // guest memory slot (-1 if borrowed)
    bool sealed = false;
  };
  void Release();
  std::vector<Region> regions_;
  std::shared_ptr<Platform> os_;  // null for borrowed memory
};

}  // namespace daxstore::vhost
