#include "vhost/dirty_log.h"

#include <sys/mman.h>  // PROT_* and MAP_* for Platform::Map

#include <string>
#include <utility>

namespace daxstore::vhost {

DirtyLog::DirtyLog(DirtyLog&& o) noexcept
    : bits_(std::exchange(o.bits_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      map_(std::exchange(o.map_, nullptr)),
      map_len_(std::exchange(o.map_len_, 0)),
      os_(std::move(o.os_)) {}

DirtyLog& DirtyLog::operator=(DirtyLog&& o) noexcept {
  if (this != &o) {
    if (map_ != nullptr) (void)os_->Unmap(map_, map_len_);
    bits_ = std::exchange(o.bits_, nullptr);
    size_ = std::exchange(o.size_, 0);
    map_ = std::exchange(o.map_, nullptr);
    map_len_ = std::exchange(o.map_len_, 0);
    os_ = std::move(o.os_);
  }
  return *this;
}

DirtyLog::~DirtyLog() {
  if (map_ != nullptr) (void)os_->Unmap(map_, map_len_);
}

Status DirtyLog::CheckRange(uint64_t mmap_size, uint64_t mmap_offset) {
  if (mmap_size == 0 || mmap_size > kMaxSize)
    return InvalidArgument("dirty log: size " + std::to_string(mmap_size) +
                           " (1 byte to 1 TiB allowed)");
  if (mmap_offset > kMaxSize)
    return InvalidArgument("dirty log: offset " + std::to_string(mmap_offset) +
                           " is past any log");
  return Status::Ok();
}

Result<DirtyLog> DirtyLog::Map(std::shared_ptr<Platform> os, int fd,
                               uint64_t mmap_size, uint64_t mmap_offset) {
  DAXSTORE_RETURN_IF_ERROR(CheckRange(mmap_size, mmap_offset));
  const uint64_t len = mmap_offset + mmap_size;  // no wrap: both <= 2^40
  auto st = os->Stat(fd);
  if (!st.ok()) return st.status().WithContext("dirty log fd");
  if (st->type != FileInfo::Type::kRegular)
    return InvalidArgument("dirty log fd is not a shared-memory file");
  // A shorter file would fault (SIGBUS) on the first mark past its end.
  if (st->size < len)
    return InvalidArgument("dirty log: offset " + std::to_string(mmap_offset) +
                           " + size " + std::to_string(mmap_size) +
                           " is past the end of its file (" +
                           std::to_string(st->size) + " bytes)");
  auto p = os->Map(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (!p.ok()) return p.status().WithContext("mapping the dirty log");
  DirtyLog l;
  l.os_ = std::move(os);
  l.map_ = *p;
  l.map_len_ = len;
  l.bits_ = static_cast<uint8_t*>(*p) + mmap_offset;
  l.size_ = mmap_size;
  return l;
}

DirtyLog DirtyLog::Borrow(uint8_t* bits, uint64_t size) {
  DirtyLog l;
  l.bits_ = bits;
  l.size_ = size;
  return l;
}

uint64_t DirtyLog::BytesFor(uint64_t end) {
  const uint64_t pages = end / kPage + (end % kPage != 0);
  return pages / 8 + (pages % 8 != 0);
}

bool DirtyLog::Covers(uint64_t gpa, uint64_t len) const {
  if (len == 0) return true;
  if (gpa + (len - 1) < gpa) return false;
  return (gpa + len - 1) / kPage / 8 < size_;
}

bool DirtyLog::Mark(uint64_t gpa, uint64_t len) const {
  if (len == 0) return true;
  if (bits_ == nullptr || !Covers(gpa, len)) return false;
  const uint64_t first = gpa / kPage, last = (gpa + len - 1) / kPage;
  uint64_t page = first;
  while (page <= last) {
    const uint64_t byte = page / 8;
    uint8_t mask = 0;
    for (; page <= last && page / 8 == byte; ++page)
      mask |= static_cast<uint8_t>(1u << (page % 8));
    __atomic_fetch_or(&bits_[byte], mask, __ATOMIC_RELEASE);
  }
  return true;
}

}  // namespace daxstore::vhost
