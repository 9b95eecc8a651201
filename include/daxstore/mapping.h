// Mappings of persistent memory: a file on a DAX filesystem (MAP_SYNC), a
// device-DAX character device (/dev/daxX.Y), an ordinary file through the
// page cache, or a file declared to be emulated pmem.
//
// A Mapping decides its persistence granularity once, when it is created, and
// binds its persist/flush/drain/copy functions then (PMDK's libpmem2 provides
// them). The data-path calls below are inline calls through those pointers:
// nothing is re-detected on the hot path.
//
// Thread safety: the data-path functions may be called from many threads on
// disjoint ranges. Moving or destroying a Mapping must not race with use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore {

// The smallest unit whose durability a store + persist guarantees, best
// first. Byte: stores are durable once fenced (eADR). Cache line: each line
// must be flushed (ADR + MAP_SYNC or devdax). Page: msync is needed.
enum class Granularity { kByte = 0, kCacheLine = 1, kPage = 2 };

// What the platform promises to keep on power loss (sysfs
// regionN/persistence_domain).
enum class PersistenceDomain { kCpuCache, kMemoryController };

enum class MappingKind {
  kDaxFile,        // a file on ext4/xfs -o dax, mapped with MAP_SYNC
  kDeviceDax,      // /dev/daxX.Y, mapped whole
  kPageCacheFile,  // an ordinary file, msync needed (none on tmpfs/ramfs)
  kEmulated,       // a file declared to be pmem (tests, the emulated bus)
  kSimulated,      // memory with caller-supplied persist functions
                   // (Mapping::FromMemory: the power-failure simulator)
};

enum class Access { kReadOnly, kReadWrite };

std::string_view GranularityName(Granularity g);  // "byte", "cache-line", ..
std::string_view MappingKindName(MappingKind k);  // "fsdax", "devdax", ...
std::string_view PersistenceDomainName(PersistenceDomain d);  // "cpu_cache"..
Result<Granularity> ParseGranularity(std::string_view s);
Result<PersistenceDomain> ParsePersistenceDomain(std::string_view s);

// Flags for Mapping::Copy/Move/Set (values match libpmem2's PMEM2_F_MEM_*).
enum CopyFlags : unsigned {
  kCopyDefault = 0,
  kCopyNoDrain = 1u << 0,      // flush but do not fence; call Drain() later
  kCopyNonTemporal = 1u << 1,  // force non-temporal stores
  kCopyTemporal = 1u << 2,     // force temporal stores
  kCopyNoFlush = 1u << 5,      // neither flush nor fence (caller persists)
};

struct MapOptions {
  Access access = Access::kReadWrite;
  // 0: the file or device must exist. Otherwise create the file if missing
  // and grow it to at least this many bytes (never shrinks it).
  uint64_t create_size = 0;
  // Allocate the file's blocks up front (posix_fallocate) when creating.
  bool allocate = false;
  // Fail unless the mapping's granularity is this or finer.
  std::optional<Granularity> require;
  // Declare an ordinary file to be pmem with this persistence domain: the
  // mapping then flushes cache lines (memory_controller) or only fences
  // (cpu_cache), as it would on real pmem. For tests and the emulated bus.
  std::optional<PersistenceDomain> emulate;
  // Take a flock on the file or device for the mapping's lifetime:
  // exclusive for read-write, shared for read-only. kBusy when another
  // open holds a conflicting one.
  bool lock = false;
  // Bad ranges of an emulated mapping live in "<path>.badblocks" (one
  // "offset length" pair of bytes per line); the emulated bus writes it.
  // The OS seam; null means DefaultPlatform().
  std::shared_ptr<Platform> platform;
};

// Facts about a mapping, fixed at creation (for tools and JSON output).
struct MappingInfo {
  std::string path;
  MappingKind kind = MappingKind::kPageCacheFile;
  Granularity granularity = Granularity::kPage;
  Access access = Access::kReadWrite;
  uint64_t size = 0;
  uint64_t alignment = 0;                   // of the mapping's address
  bool map_sync = false;                    // MAP_SYNC was used
  std::optional<PersistenceDomain> domain;  // when known
  std::string region;             // "region0" for devdax / DAX files when known
  std::string flush_instruction;  // "clwb", ... or "msync" or "none"
  std::string why;                // one line: why this granularity
  // The file is on tmpfs or ramfs, which keep data in memory only: it
  // survives a process crash, not a reboot or a power loss. A page-granular
  // mapping there binds persist functions that make no msync (it would have
  // nothing to write back); flush_instruction is then "none".
  bool memory_only = false;
};

// The data-path functions a Mapping calls, bound once at its creation. The
// signatures are libpmem2's (pmem2_persist_fn and friends), so a Mapping over
// real pmem calls libpmem2 directly, with no trampoline in between.
struct PersistOps {
  using PersistFn = void (*)(const void*, size_t);
  using DrainFn = void (*)();
  using CopyFn = void* (*)(void*, const void*, size_t, unsigned);
  using SetFn = void* (*)(void*, int, size_t, unsigned);

  PersistFn persist = nullptr;  // flush + fence
  PersistFn flush = nullptr;    // flush only
  DrainFn drain = nullptr;      // fence every earlier flush
  CopyFn memcpy = nullptr;      // honour CopyFlags
  CopyFn memmove = nullptr;
  SetFn memset = nullptr;
};

class Mapping {
 public:
  using PersistFn = PersistOps::PersistFn;
  using DrainFn = PersistOps::DrainFn;
  using CopyFn = PersistOps::CopyFn;
  using SetFn = PersistOps::SetFn;

  // Maps `path` whole. See MapOptions. Errors say what to change, e.g.
  // "/mnt/x/f.img is on ext4 mounted without -o dax: page granularity only;
  // mount with -o dax or use a devdax namespace".
  [[nodiscard]] static Result<Mapping> Open(const std::string& path,
                                            MapOptions options = {});

  // A Mapping over [addr, addr + size), memory the caller provides, whose
  // data path calls `ops` (every function must be set). `owner` is held
  // until the Mapping is destroyed and is what keeps the memory alive;
  // nothing is unmapped. info().kind is kSimulated and info().path is
  // `name`. Control-path calls: DeepFlush persists, BadBlocks is empty,
  // ClearBadBlock is unsupported. This is the seam the power-failure
  // simulator (emulation/powerfail) plugs into.
  [[nodiscard]] static Result<Mapping> FromMemory(void* addr, size_t size,
                                                  Granularity granularity,
                                                  const PersistOps& ops,
                                                  std::shared_ptr<void> owner,
                                                  std::string name);

  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();  // unmaps; does not persist

  void* data() const { return data_; }
  uint8_t* bytes() const { return static_cast<uint8_t*>(data_); }
  size_t size() const { return size_; }
  Granularity granularity() const { return granularity_; }
  const MappingInfo& info() const;

  // --- data path: [p, p+n) must lie inside the mapping ---
  // Makes stores to the range durable (flush + fence, or msync).
  void Persist(const void* p, size_t n) const { persist_(p, n); }
  // Flushes without fencing; Drain() fences every earlier Flush.
  void Flush(const void* p, size_t n) const { flush_(p, n); }
  void Drain() const { drain_(); }
  // Copy/move/set into the mapping, durable on return unless flags say not.
  void* MemcpyPersist(void* dst, const void* src, size_t n,
                      unsigned flags = kCopyDefault) const {
    return memcpy_(dst, src, n, flags);
  }
  void* MemmovePersist(void* dst, const void* src, size_t n,
                       unsigned flags = kCopyDefault) const {
    return memmove_(dst, src, n, flags);
  }
  void* MemsetPersist(void* dst, int c, size_t n,
                      unsigned flags = kCopyDefault) const {
    return memset_(dst, c, n, flags);
  }

  // --- control path ---
  // Persists the range and then flushes the platform's write-pending queues
  // too: devdax writes regionN/deep_flush, files msync.
  Status DeepFlush(const void* p, size_t n) const;
  // Bad ranges overlapping the mapping, as offsets into it.
  Result<std::vector<ByteRange>> BadBlocks() const;
  // The parts of [offset, offset+n) that may hold non-zero bytes, in
  // order: a file's data extents (its holes read as zeros), or the whole
  // range where nothing can tell (devices, memory). Lets a scan of sparse
  // metadata skip what was never written without faulting it in.
  Result<std::vector<ByteRange>> DataRanges(uint64_t offset, uint64_t n) const;
  // Clears a bad range (offsets into the mapping). Its content becomes
  // zeros; the caller rewrites it.
  Status ClearBadBlock(const ByteRange& range) const;
  // Copies [offset, offset+n) out of the mapping. A poisoned range gives an
  // kIoError instead of a SIGBUS that kills the process.
  Status Read(uint64_t offset, void* buf, size_t n) const;

  struct Impl;  // private state; opaque outside the library

 private:
  Mapping() = default;
  void Reset();

  void* data_ = nullptr;
  size_t size_ = 0;
  Granularity granularity_ = Granularity::kPage;
  PersistFn persist_ = nullptr;
  PersistFn flush_ = nullptr;
  DrainFn drain_ = nullptr;
  CopyFn memcpy_ = nullptr;
  CopyFn memmove_ = nullptr;
  SetFn memset_ = nullptr;
  std::unique_ptr<Impl> impl_;
};

}  // namespace daxstore
