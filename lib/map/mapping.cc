// Creating a Mapping: open, decide the granularity once, map, bind libpmem2's
// persist functions for that granularity.
#include "daxstore/mapping.h"

#include <fcntl.h>
#include <libpmem2.h>
#include <sys/mman.h>

#include <cerrno>

#include "map/detect.h"
#include "map/impl.h"

namespace daxstore {

using map::AllRegionsCpuCache;

namespace {

constexpr uint64_t kHugePage = 2ull << 20;

// Maps len bytes of fd at an address aligned to `align` (a power of two):
// reserve len + align of address space, then map over the aligned part.
Result<void*> MapAligned(Platform& p, size_t len, uint64_t align, int prot,
                         int flags, int fd) {
  if (align <= 4096) return p.Map(nullptr, len, prot, flags, fd, 0);
  size_t span = len + align;
  DAXSTORE_ASSIGN_OR_RETURN(
      void* res, p.Map(nullptr, span, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  auto base = reinterpret_cast<uintptr_t>(res);
  uintptr_t aligned = (base + align - 1) & ~(uintptr_t)(align - 1);
  auto mapped = p.Map(reinterpret_cast<void*>(aligned), len, prot,
                      flags | MAP_FIXED, fd, 0);
  if (!mapped.ok()) {
    (void)p.Unmap(res, span);
    return mapped.status();
  }
  if (aligned > base) (void)p.Unmap(res, aligned - base);
  uintptr_t end = aligned + len, rend = base + span;
  if (rend > end) (void)p.Unmap(reinterpret_cast<void*>(end), rend - end);
  return reinterpret_cast<void*>(aligned);
}

std::string PageOnlyReason(Platform& p, const std::string& path) {
  auto m = p.MountOf(path);
  if (!m.ok()) return path + " is not on a DAX filesystem";
  if (m->fs_type == "ext4" || m->fs_type == "xfs") {
    if (m->dax()) {
      return path + " is on " + m->fs_type +
             " mounted with -o dax, but "
             "MAP_SYNC was refused for this file (is the file DAX? check "
             "statx STATX_ATTR_DAX)";
    }
    return path + " is on " + m->fs_type + " mounted without -o dax";
  }
  return path + " is on " + m->fs_type + ", which has no DAX";
}

std::string Advice(Granularity have) {
  if (have == Granularity::kPage) {
    return "mount with -o dax or use a devdax namespace";
  }
  return "byte granularity needs eADR: every region's persistence_domain "
         "must read cpu_cache";
}

}  // namespace

Result<Mapping> Mapping::Open(const std::string& path, MapOptions opt) {
  std::shared_ptr<Platform> plat =
      opt.platform ? opt.platform : DefaultPlatform();
  Platform& p = *plat;
  const bool rw = opt.access == Access::kReadWrite;
  if (!rw && opt.create_size) {
    return InvalidArgument("cannot create " + path + " read-only");
  }
  int oflags = rw ? O_RDWR : O_RDONLY;
  if (opt.create_size) oflags |= O_CREAT;
  auto fd_or = p.Open(path, oflags, 0644);
  if (!fd_or.ok()) return fd_or.status();

  auto impl = std::make_unique<Impl>();
  impl->platform = plat;
  impl->fd = *fd_or;
  MappingInfo& info = impl->info;
  info.path = path;
  info.access = opt.access;

  DAXSTORE_ASSIGN_OR_RETURN(FileInfo st, p.Stat(impl->fd));
  const int prot = rw ? PROT_READ | PROT_WRITE : PROT_READ;
  const bool eadr = AllRegionsCpuCache(p);
  std::string cpu_flush = p.Cpu().flush_instruction();
  void* addr = nullptr;

  if (st.type == FileInfo::Type::kCharDevice) {
    if (opt.emulate) {
      return InvalidArgument(path + " is a device; --emulate is for files");
    }
    DAXSTORE_ASSIGN_OR_RETURN(
        map::DeviceDaxFacts dax,
        map::ProbeDeviceDax(p, st.dev_major, st.dev_minor));
    info.kind = MappingKind::kDeviceDax;
    info.size = dax.size;
    info.alignment = dax.align;
    info.region = dax.region;
    info.domain = map::RegionDomain(p, dax.region);
    if (info.size == 0 || info.size % dax.align != 0) {
      return InvalidArgument(path + " has size " + std::to_string(info.size) +
                             ", not a multiple of its alignment " +
                             std::to_string(dax.align));
    }
    // Device DAX is mapped whole, at an address aligned to the device's
    // alignment, or page faults raise SIGBUS.
    auto a = MapAligned(p, info.size, dax.align, prot, MAP_SHARED, impl->fd);
    if (!a.ok()) return a.status().WithContext("mapping " + path);
    addr = *a;
    info.granularity = eadr ? Granularity::kByte : Granularity::kCacheLine;
    info.why = eadr ? "device DAX on eADR (all regions cpu_cache)"
                    : "device DAX; cache lines must be flushed (ADR)";
  } else if (st.type == FileInfo::Type::kRegular) {
    if (opt.create_size > st.size) {
      DAXSTORE_RETURN_IF_ERROR(
          p.Truncate(impl->fd, opt.create_size).WithContext(path));
      if (opt.allocate) {
        DAXSTORE_RETURN_IF_ERROR(
            p.Allocate(impl->fd, opt.create_size).WithContext(path));
      }
      st.size = opt.create_size;
    }
    if (st.size == 0) {
      return InvalidArgument(path + " is empty; give a size to create it");
    }
    info.size = st.size;
    info.alignment = st.size >= kHugePage ? kHugePage : 4096;
    if (opt.emulate) {
      auto a =
          MapAligned(p, info.size, info.alignment, prot, MAP_SHARED, impl->fd);
      if (!a.ok()) return a.status().WithContext("mapping " + path);
      addr = *a;
      info.kind = MappingKind::kEmulated;
      info.domain = *opt.emulate;
      info.granularity = *opt.emulate == PersistenceDomain::kCpuCache
                             ? Granularity::kByte
                             : Granularity::kCacheLine;
      info.why = "declared emulated pmem, persistence domain " +
                 std::string(PersistenceDomainName(*opt.emulate));
      auto bad = map::ReadEmulatedBadBlocks(p, path);
      if (!bad.ok()) return bad.status();
      impl->emulated_bad = std::move(*bad);
    } else {
      // MAP_SYNC first: it succeeds only on a DAX file, and then the file
      // system keeps its metadata durable for every faulted page.
      auto a = MapAligned(p, info.size, info.alignment, prot,
                          MAP_SHARED_VALIDATE | MAP_SYNC, impl->fd);
      if (a.ok()) {
        addr = *a;
        info.kind = MappingKind::kDaxFile;
        info.map_sync = true;
        auto m = p.MountOf(path);
        if (m.ok() && m->source.rfind("/dev/", 0) == 0) {
          info.region = map::RegionOfBlockDevice(p, m->source.substr(5));
          info.domain = map::RegionDomain(p, info.region);
        }
        info.granularity = eadr ? Granularity::kByte : Granularity::kCacheLine;
        info.why = eadr ? "MAP_SYNC on a DAX file, eADR"
                        : "MAP_SYNC on a DAX file; cache lines must be flushed";
      } else if (a.status().sys_errno() == EOPNOTSUPP ||
                 a.status().sys_errno() == EINVAL) {
        auto b = MapAligned(p, info.size, info.alignment, prot, MAP_SHARED,
                            impl->fd);
        if (!b.ok()) return b.status().WithContext("mapping " + path);
        addr = *b;
        info.kind = MappingKind::kPageCacheFile;
        info.granularity = Granularity::kPage;
        info.why = PageOnlyReason(p, path) + ": page granularity only";
      } else {
        return a.status().WithContext("mapping " + path);
      }
    }
  } else {
    return InvalidArgument(path +
                           " is neither a regular file nor a device-DAX "
                           "character device");
  }
  impl->map_len = info.size;
  impl->map_addr = addr;
  info.flush_instruction =
      info.granularity == Granularity::kPage
          ? "msync"
          : (info.granularity == Granularity::kByte ? "none" : cpu_flush);

  Mapping m;
  m.data_ = addr;
  m.size_ = info.size;
  m.granularity_ = info.granularity;
  m.impl_ = std::move(impl);
  // From here on the destructor unmaps and closes.

  if (opt.require &&
      static_cast<int>(m.granularity_) > static_cast<int>(*opt.require)) {
    return Unsupported(m.impl_->info.why + "; " +
                       std::string(GranularityName(*opt.require)) +
                       " granularity was required: " + Advice(m.granularity_));
  }
  DAXSTORE_RETURN_IF_ERROR(m.impl_->BindPmem2(m));
  return m;
}

Result<Mapping> Mapping::FromMemory(void* addr, size_t size,
                                    Granularity granularity,
                                    const PersistOps& ops,
                                    std::shared_ptr<void> owner,
                                    std::string name) {
  if (addr == nullptr || size == 0) {
    return InvalidArgument("a mapping over memory needs an address and a size");
  }
  if (!ops.persist || !ops.flush || !ops.drain || !ops.memcpy || !ops.memmove ||
      !ops.memset) {
    return InvalidArgument("mapping " + name +
                           ": every persist function must be set");
  }
  auto impl = std::make_unique<Impl>();
  impl->owner = std::move(owner);
  MappingInfo& info = impl->info;
  info.path = std::move(name);
  info.kind = MappingKind::kSimulated;
  info.granularity = granularity;
  info.size = size;
  info.alignment = uintptr_t{1}
                   << __builtin_ctzll(reinterpret_cast<uintptr_t>(addr) |
                                      (uintptr_t{1} << 21));
  info.flush_instruction = "simulated";
  info.why = "persist functions supplied by the creator";

  Mapping m;
  m.data_ = addr;
  m.size_ = size;
  m.granularity_ = granularity;
  m.persist_ = ops.persist;
  m.flush_ = ops.flush;
  m.drain_ = ops.drain;
  m.memcpy_ = ops.memcpy;
  m.memmove_ = ops.memmove;
  m.memset_ = ops.memset;
  m.impl_ = std::move(impl);
  return m;
}

Mapping::Mapping(Mapping&& o) noexcept { *this = std::move(o); }

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    Reset();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    granularity_ = o.granularity_;
    persist_ = o.persist_;
    flush_ = o.flush_;
    drain_ = o.drain_;
    memcpy_ = o.memcpy_;
    memmove_ = o.memmove_;
    memset_ = o.memset_;
    impl_ = std::move(o.impl_);
  }
  return *this;
}

Mapping::~Mapping() { Reset(); }

void Mapping::Reset() {
  impl_.reset();
  data_ = nullptr;
  size_ = 0;
}

const MappingInfo& Mapping::info() const { return impl_->info; }

}  // namespace daxstore
