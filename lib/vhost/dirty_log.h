// The dirty log of live migration (VHOST_USER_SET_LOG_BASE with
// VHOST_USER_PROTOCOL_F_LOG_SHMFD): a shared-memory bitmap the front end
// reads while it copies guest RAM, one bit per 4 KiB page of guest-physical
// address space (bit p % 8 of byte p / 8 for page p). While the front end
// has negotiated VHOST_F_LOG_ALL, every guest-memory write the backend makes
// sets the bits of the pages it touched, so those pages are sent again.
// Bits are only ever set, with an atomic OR: the front end clears them
// concurrently. Nothing outside the log is ever written: a page past its
// end is reported, not marked.
#pragma once

#include <cstdint>
#include <memory>

#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore::vhost {

class DirtyLog {
 public:
  static constexpr uint64_t kPage = 4096;  // VHOST_LOG_PAGE
  // Largest log accepted: covers 2^55 bytes of guest-physical space.
  static constexpr uint64_t kMaxSize = 1ull << 40;

  DirtyLog() = default;
  DirtyLog(DirtyLog&&) noexcept;
  DirtyLog& operator=(DirtyLog&&) noexcept;
  DirtyLog(const DirtyLog&) = delete;
  DirtyLog& operator=(const DirtyLog&) = delete;
  ~DirtyLog();  // unmaps the log

  // Validates and maps [mmap_offset, mmap_offset + mmap_size) of `fd`
  // shared, read-write: mmap_size 1 to kMaxSize, the range does not wrap,
  // fd is a regular (shared-memory) file at least mmap_offset + mmap_size
  // long. Takes nothing from the caller: fd stays the caller's.
  [[nodiscard]] static Result<DirtyLog> Map(std::shared_ptr<Platform> os,
                                            int fd, uint64_t mmap_size,
                                            uint64_t mmap_offset);
  // The same checks without a descriptor (for the fuzz target).
  [[nodiscard]] static Status CheckRange(uint64_t mmap_size,
                                         uint64_t mmap_offset);
  // A log over memory the caller owns (tests, fuzzing); not unmapped.
  static DirtyLog Borrow(uint8_t* bits, uint64_t size);

  // Bytes of log needed to cover guest-physical addresses [0, end).
  static uint64_t BytesFor(uint64_t end);

  bool mapped() const { return bits_ != nullptr; }
  uint64_t size() const { return size_; }
  // True if every page of [gpa, gpa + len) has a bit in the log.
  bool Covers(uint64_t gpa, uint64_t len) const;

  // Sets the bit of every page of [gpa, gpa + len) (len 0: none). Returns
  // false, marking nothing, if a page lies past the log or the range wraps.
  // The OR is a release: writes this thread made before are visible to a
  // reader that sees the bit.
  bool Mark(uint64_t gpa, uint64_t len) const;

 private:
  uint8_t* bits_ = nullptr;
  uint64_t size_ = 0;
  void* map_ = nullptr;  // what munmap gets (nullptr if borrowed)
  size_t map_len_ = 0;
  std::shared_ptr<Platform> os_;
};

}  // namespace daxstore::vhost
