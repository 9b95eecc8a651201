// The control path of a Mapping: binding, deep flush, bad blocks, safe reads.
#include <libpmem2.h>

#include <algorithm>
#include <sstream>

#include "map/impl.h"
#include "platform/guarded_copy.h"
#include "platform/page_persist.h"

namespace daxstore {

namespace {
pmem2_granularity ToPmem2(Granularity g) {
  switch (g) {
    case Granularity::kByte:
      return PMEM2_GRANULARITY_BYTE;
    case Granularity::kCacheLine:
      return PMEM2_GRANULARITY_CACHE_LINE;
    case Granularity::kPage:
      return PMEM2_GRANULARITY_PAGE;
  }
  return PMEM2_GRANULARITY_PAGE;
}
}  // namespace

Mapping::Impl::~Impl() {
  if (tracked) page_persist::Untrack(tracked);
  if (map_addr) (void)platform->Unmap(map_addr, map_len);
  if (fd >= 0) platform->Close(fd);
}

namespace {
// libpmem2's functions for a granularity depend on the CPU, not on the
// mapping, so one prototype map per granularity, made once per process over
// a private page, yields them for every Mapping. (A pmem2 map per Mapping
// would also leak 144 bytes per map in libpmem2 1.12.1's
// pmem2_map_from_existing/pmem2_map_delete.)
struct Pmem2Fns {
  Mapping::PersistFn persist = nullptr, flush = nullptr;
  Mapping::DrainFn drain = nullptr;
  Mapping::CopyFn memcpy = nullptr, memmove = nullptr;
  Mapping::SetFn memset = nullptr;
  std::string error;
  pmem2_source* src = nullptr;  // kept for the life of the process
  pmem2_map* map = nullptr;
};

Pmem2Fns LoadPmem2Fns(Granularity g) {
  Pmem2Fns f;
  alignas(4096) static char prototype[3][4096];
  int rc = pmem2_source_from_anon(&f.src, sizeof prototype[0]);
  if (rc == 0) {
    rc = pmem2_map_from_existing(&f.map, f.src, prototype[static_cast<int>(g)],
                                 sizeof prototype[0], ToPmem2(g));
  }
  if (rc != 0) {
    f.error = pmem2_errormsg();
    return f;
  }
  f.persist = pmem2_get_persist_fn(f.map);
  f.flush = pmem2_get_flush_fn(f.map);
  f.drain = pmem2_get_drain_fn(f.map);
  f.memcpy = pmem2_get_memcpy_fn(f.map);
  f.memmove = pmem2_get_memmove_fn(f.map);
  f.memset = pmem2_get_memset_fn(f.map);
  return f;
}

// The functions a mapping described by `info` persists with.
const Pmem2Fns& FnsFor(const MappingInfo& info) {
  // tmpfs/ramfs: msync would only cost a system call (page_persist.h).
  static const Pmem2Fns memory{
      .persist = memory_only::Persist,
      .flush = memory_only::Persist,
      .drain = memory_only::Drain,
      .memcpy = memory_only::Memcpy,
      .memmove = memory_only::Memmove,
      .memset = memory_only::Memset,
      .error = {},
      .src = nullptr,
      .map = nullptr,
  };
  // See page_persist.h for why libpmem2's page functions are not used.
  static const Pmem2Fns page{
      .persist = page_persist::Persist,
      .flush = page_persist::Flush,
      .drain = page_persist::Drain,
      .memcpy = page_persist::Memcpy,
      .memmove = page_persist::Memmove,
      .memset = page_persist::Memset,
      .error = {},
      .src = nullptr,
      .map = nullptr,
  };
  // libpmem2 picks its flush instruction and copy routines (SSE2/AVX/
  // AVX-512, non-temporal above its threshold) for the granularity.
  static const Pmem2Fns byte = LoadPmem2Fns(Granularity::kByte);
  static const Pmem2Fns line = LoadPmem2Fns(Granularity::kCacheLine);
  switch (info.granularity) {
    case Granularity::kPage:
      return info.memory_only ? memory : page;
    case Granularity::kByte:
      return byte;
    default:
      return line;
  }
}
}  // namespace

Status Mapping::Impl::BindPmem2(Mapping& m) {
  const Pmem2Fns& f = FnsFor(info);
  if (!f.error.empty()) {
    return Internal("libpmem2 cannot provide persist functions: " + f.error);
  }
  m.persist_ = f.persist;
  m.flush_ = f.flush;
  m.drain_ = f.drain;
  m.memcpy_ = f.memcpy;
  m.memmove_ = f.memmove;
  m.memset_ = f.memset;
  if (f.flush == page_persist::Flush) {
    // Drain syncs each mapping's noted pages with one msync.
    page_persist::Track(m.data_, m.size_);
    tracked = m.data_;
  }
  return Status::Ok();
}

Status Mapping::DeepFlush(const void* p, size_t n) const {
  auto* b = static_cast<const uint8_t*>(p);
  if (b < bytes() || n > size_ || b + n > bytes() + size_) {
    return InvalidArgument("deep flush range lies outside the mapping");
  }
  Persist(p, n);
  const MappingInfo& in = impl_->info;
  // Simulated media has no queues beyond what Persist drained.
  if (in.kind == MappingKind::kSimulated) return Status::Ok();
  if (in.kind == MappingKind::kDeviceDax) {
    if (in.region.empty()) return Status::Ok();
    std::string attr = "bus/nd/devices/" + in.region + "/deep_flush";
    // Without the attribute, or when it reads 0, the region has no flush
    // hints to write: the kernel then makes the attribute read-only (0444)
    // and a write fails with EACCES (QEMU's NVDIMMs are such regions).
    auto hints = impl_->platform->ReadSysfs(attr);
    if (!hints.ok() || *hints == "0") return Status::Ok();
    return impl_->platform->WriteSysfs(attr, "1").WithContext("deep flush of " +
                                                              in.region);
  }
  // Memory-only file systems have no device behind them.
  if (in.memory_only && in.kind == MappingKind::kPageCacheFile) {
    return Status::Ok();
  }
  // Files: msync makes the file system flush the device's queues too.
  auto start = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{4095};
  size_t len = reinterpret_cast<uintptr_t>(p) + n - start;
  return impl_->platform->Sync(reinterpret_cast<void*>(start), len)
      .WithContext("deep flush of " + in.path);
}

Result<std::vector<ByteRange>> Mapping::DataRanges(uint64_t offset,
                                                   uint64_t n) const {
  const uint64_t end = std::min<uint64_t>(offset + n, size_);
  std::vector<ByteRange> out;
  if (offset >= end) return out;
  const MappingKind k = impl_->info.kind;
  bool regular = impl_->fd >= 0 && k != MappingKind::kDeviceDax &&
                 k != MappingKind::kSimulated;
  if (regular) {
    auto st = impl_->platform->StatPath(impl_->info.path);
    regular = st.ok() && st->type == FileInfo::Type::kRegular;
  }
  if (!regular) {  // a device has no holes to tell
    out.push_back({offset, end - offset});
    return out;
  }
  for (uint64_t at = offset; at < end;) {
    auto ext = impl_->platform->NextData(impl_->fd, at);
    if (!ext.ok()) return ext.status().WithContext(impl_->info.path);
    if (!*ext || (*ext)->offset >= end) break;
    const uint64_t from = std::max<uint64_t>((*ext)->offset, at);
    const uint64_t to = std::min<uint64_t>((*ext)->offset + (*ext)->length, end);
    if (to <= from) break;
    out.push_back({from, to - from});
    at = to;
  }
  return out;
}

Result<std::vector<ByteRange>> Mapping::BadBlocks() const {
  std::vector<ByteRange> raw;
  switch (impl_->info.kind) {
    case MappingKind::kEmulated: {
      std::lock_guard<std::mutex> lock(impl_->bad_mu);
      raw = impl_->emulated_bad;
      break;
    }
    case MappingKind::kPageCacheFile:
    case MappingKind::kSimulated:
      // Not pmem: the block layer reports media errors as EIO itself, and
      // simulated media has none.
      return raw;
    default: {
      auto r = impl_->platform->BadBlocks(impl_->fd);
      if (!r.ok()) return r.status().WithContext(impl_->info.path);
      raw = std::move(*r);
    }
  }
  std::vector<ByteRange> out;
  const ByteRange whole{0, size_};
  for (const auto& r : raw) {
    if (!map::Overlaps(r, whole)) continue;
    uint64_t end = std::min<uint64_t>(r.offset + r.length, size_);
    out.push_back({r.offset, end - r.offset});
  }
  return out;
}

Status Mapping::ClearBadBlock(const ByteRange& range) const {
  if (range.length == 0 || range.offset >= size_ ||
      range.length > size_ - range.offset) {
    return InvalidArgument("bad-block range lies outside the mapping");
  }
  if (impl_->info.access != Access::kReadWrite) {
    return InvalidArgument("clearing bad blocks needs a read-write mapping");
  }
  if (impl_->info.kind == MappingKind::kEmulated) {
    std::lock_guard<std::mutex> lock(impl_->bad_mu);
    std::vector<ByteRange> left;
    for (const auto& r : impl_->emulated_bad) {
      for (const auto& piece : map::Subtract(r, range)) left.push_back(piece);
    }
    // The range reads as zeros before the list stops calling it bad.
    MemsetPersist(bytes() + range.offset, 0, range.length);
    DAXSTORE_RETURN_IF_ERROR(
        map::WriteEmulatedBadBlocks(*impl_->platform, impl_->info.path, left));
    impl_->emulated_bad = std::move(left);
    return Status::Ok();
  }
  if (impl_->info.kind == MappingKind::kPageCacheFile ||
      impl_->info.kind == MappingKind::kSimulated) {
    return Unsupported(impl_->info.path + " is not on pmem: no bad blocks");
  }
  return impl_->platform->ClearBadBlock(impl_->fd, range)
      .WithContext(impl_->info.path);
}

Status Mapping::Read(uint64_t offset, void* buf, size_t n) const {
  if (offset > size_ || n > size_ - offset) {
    return InvalidArgument("read of " + std::to_string(n) + " bytes at " +
                           std::to_string(offset) + " lies outside the " +
                           std::to_string(size_) + "-byte mapping");
  }
  if (impl_->info.kind == MappingKind::kEmulated) {
    std::lock_guard<std::mutex> lock(impl_->bad_mu);
    for (const auto& r : impl_->emulated_bad) {
      if (map::Overlaps(r, {offset, n})) {
        return IoError(impl_->info.path + ": media error at offset " +
                           std::to_string(std::max(r.offset, offset)) +
                           "; rewrite or clear the bad block "
                           "(Mapping::ClearBadBlock)",
                       EIO);
      }
    }
  }
  uint64_t at = 0;
  Status s = GuardedCopy(buf, bytes() + offset, n, &at);
  if (!s.ok()) {
    return IoError(impl_->info.path + ": media error at offset " +
                       std::to_string(offset + at) +
                       "; list bad blocks and clear them, then rewrite",
                   EIO);
  }
  return s;
}

namespace map {

bool Overlaps(const ByteRange& a, const ByteRange& b) {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

std::vector<ByteRange> Subtract(const ByteRange& a, const ByteRange& b) {
  if (!Overlaps(a, b)) return {a};
  std::vector<ByteRange> out;
  if (a.offset < b.offset) out.push_back({a.offset, b.offset - a.offset});
  uint64_t a_end = a.offset + a.length, b_end = b.offset + b.length;
  if (a_end > b_end) out.push_back({b_end, a_end - b_end});
  return out;
}

Result<std::vector<ByteRange>> ReadEmulatedBadBlocks(Platform& p,
                                                     const std::string& path) {
  std::string side = path + ".badblocks";
  std::vector<ByteRange> out;
  if (!p.Exists(side)) return out;
  DAXSTORE_ASSIGN_OR_RETURN(std::string text, p.ReadFile(side));
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream f(line);
    ByteRange r;
    if (!(f >> r.offset >> r.length) || r.length == 0) {
      return Corruption(side + ":" + std::to_string(lineno) +
                        ": expected 'offset length' in bytes");
    }
    out.push_back(r);
  }
  return out;
}

Status WriteEmulatedBadBlocks(Platform& p, const std::string& path,
                              const std::vector<ByteRange>& bad) {
  std::string side = path + ".badblocks";
  if (bad.empty()) return p.Remove(side);
  std::string text;
  for (const auto& r : bad) {
    text += std::to_string(r.offset) + " " + std::to_string(r.length) + "\n";
  }
  return p.WriteFileAtomic(side, text);
}

}  // namespace map
}  // namespace daxstore
