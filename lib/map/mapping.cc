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

// Why a regular file got page granularity, and what to do about it.
struct PageOnly {
  std::string reason;
  std::string advice = "mount with -o dax or use a devdax namespace";
};

PageOnly PageOnlyReason(Platform& p, const std::string& path) {
  auto m = p.MountOf(path);
  if (!m.ok()) return {path + " is not on a DAX filesystem"};
  if (m->fs_type == "ext4" || m->fs_type == "xfs") {
    if (m->dax()) {
      return {path + " is on " + m->fs_type +
              " mounted with -o dax, but "
              "MAP_SYNC was refused for this file (is the file DAX? check "
              "statx STATX_ATTR_DAX)"};
    }
    // -o dax cannot help on a block device without DAX (a sector-mode or
    // raw namespace): the mount fails with EINVAL.
    if (m->source.rfind("/dev/", 0) == 0) {
      std::string dev = m->source.substr(5);
      auto dax = p.ReadSysfs("class/block/" + dev + "/queue/dax");
      if (dax.ok() && *dax == "0") {
        return {path + " is on " + m->fs_type + " on " + m->source +
                    ", a block device without DAX",
                "-o dax needs an fsdax namespace: reconfigure it (ndctl "
                "create-namespace -f -e NAMESPACE -m fsdax) or use a devdax "
                "namespace"};
      }
    }
    return {path + " is on " + m->fs_type + " mounted without -o dax"};
  }
  return {path + " is on " + m->fs_type + ", which has no DAX"};
}

// The file system keeps the file in memory only (tmpfs, ramfs)? A platform
// that cannot tell gets the safe answer: no, keep msync.
bool MemoryOnly(Platform& p, int fd) {
  auto fs = p.FileSystemOf(fd);
  return fs.ok() && fs->memory_only();
}

const char kMemoryOnlyNote[] =
    "the file system keeps data in memory only, so there is nothing to "
    "msync: the data survives a process crash, not a reboot";

const char kEadrAdvice[] =
    "byte granularity needs eADR: every region's persistence_domain must "
    "read cpu_cache";

// The facts Open gathers once and the steps below share.
struct OpenContext {
  Platform& p;
  const MapOptions& opt;
  int prot;
  bool eadr;  // every region's persistence_domain is cpu_cache
  // What to do if `require` is not met; the steps refine it.
  mutable std::string advice = kEadrAdvice;
};

// Maps a device-DAX character device whole, aligned to the device.
Status MapDeviceDax(const OpenContext& c, const FileInfo& st,
                    Mapping::Impl& impl) {
  MappingInfo& info = impl.info;
  if (c.opt.emulate) {
    return InvalidArgument(info.path + " is a device; --emulate is for files");
  }
  DAXSTORE_ASSIGN_OR_RETURN(
      map::DeviceDaxFacts dax,
      map::ProbeDeviceDax(c.p, st.dev_major, st.dev_minor));
  info.kind = MappingKind::kDeviceDax;
  info.size = dax.size;
  info.alignment = dax.align;
  info.region = dax.region;
  info.domain = map::RegionDomain(c.p, dax.region);
  if (info.size == 0 || info.size % dax.align != 0) {
    return InvalidArgument(
        info.path + " has size " + std::to_string(info.size) +
        ", not a multiple of its alignment " + std::to_string(dax.align));
  }
  // Device DAX faults with SIGBUS unless the mapping is aligned to it.
  auto a = MapAligned(c.p, info.size, dax.align, c.prot, MAP_SHARED, impl.fd);
  if (!a.ok()) return a.status().WithContext("mapping " + info.path);
  impl.map_addr = *a;
  impl.map_len = info.size;
  info.granularity = c.eadr ? Granularity::kByte : Granularity::kCacheLine;
  info.why = c.eadr ? "device DAX on eADR (all regions cpu_cache)"
                    : "device DAX; cache lines must be flushed (ADR)";
  return Status::Ok();
}

// A file declared to be pmem: flushed like pmem, whatever it lives on.
Status MapEmulated(const OpenContext& c, Mapping::Impl& impl) {
  MappingInfo& info = impl.info;
  auto a =
      MapAligned(c.p, info.size, info.alignment, c.prot, MAP_SHARED, impl.fd);
  if (!a.ok()) return a.status().WithContext("mapping " + info.path);
  impl.map_addr = *a;
  impl.map_len = info.size;
  info.kind = MappingKind::kEmulated;
  info.domain = *c.opt.emulate;
  info.granularity = *c.opt.emulate == PersistenceDomain::kCpuCache
                         ? Granularity::kByte
                         : Granularity::kCacheLine;
  info.why = "declared emulated pmem, persistence domain " +
             std::string(PersistenceDomainName(*c.opt.emulate));
  DAXSTORE_ASSIGN_OR_RETURN(impl.emulated_bad,
                            map::ReadEmulatedBadBlocks(c.p, info.path));
  return Status::Ok();
}

// A real file: MAP_SYNC first, the page cache if the file is not DAX.
Status MapRealFile(const OpenContext& c, Mapping::Impl& impl) {
  MappingInfo& info = impl.info;
  // MAP_SYNC succeeds only on a DAX file, and then the file system keeps
  // its metadata durable for every faulted page.
  auto a = MapAligned(c.p, info.size, info.alignment, c.prot,
                      MAP_SHARED_VALIDATE | MAP_SYNC, impl.fd);
  if (a.ok()) {
    impl.map_addr = *a;
    impl.map_len = info.size;
    info.kind = MappingKind::kDaxFile;
    info.map_sync = true;
    auto m = c.p.MountOf(info.path);
    if (m.ok() && m->source.rfind("/dev/", 0) == 0) {
      info.region = map::RegionOfBlockDevice(c.p, m->source.substr(5));
      info.domain = map::RegionDomain(c.p, info.region);
    }
    info.granularity = c.eadr ? Granularity::kByte : Granularity::kCacheLine;
    info.why = c.eadr ? "MAP_SYNC on a DAX file, eADR"
                      : "MAP_SYNC on a DAX file; cache lines must be flushed";
    return Status::Ok();
  }
  int e = a.status().sys_errno();
  if (e != EOPNOTSUPP && e != EINVAL) {
    return a.status().WithContext("mapping " + info.path);
  }
  auto b =
      MapAligned(c.p, info.size, info.alignment, c.prot, MAP_SHARED, impl.fd);
  if (!b.ok()) return b.status().WithContext("mapping " + info.path);
  impl.map_addr = *b;
  impl.map_len = info.size;
  info.kind = MappingKind::kPageCacheFile;
  info.granularity = Granularity::kPage;
  PageOnly why = PageOnlyReason(c.p, info.path);
  info.why = why.reason + ": page granularity only";
  if (info.memory_only) info.why += std::string("; ") + kMemoryOnlyNote;
  c.advice = why.advice;
  return Status::Ok();
}

// Creates or grows a regular file as asked, then maps it.
Status MapFile(const OpenContext& c, FileInfo st, Mapping::Impl& impl) {
  MappingInfo& info = impl.info;
  if (c.opt.create_size > st.size) {
    DAXSTORE_RETURN_IF_ERROR(
        c.p.Truncate(impl.fd, c.opt.create_size).WithContext(info.path));
    if (c.opt.allocate) {
      DAXSTORE_RETURN_IF_ERROR(
          c.p.Allocate(impl.fd, c.opt.create_size).WithContext(info.path));
    }
    st.size = c.opt.create_size;
  }
  if (st.size == 0) {
    return InvalidArgument(info.path + " is empty; give a size to create it");
  }
  info.size = st.size;
  info.memory_only = MemoryOnly(c.p, impl.fd);
  // 2 MiB alignment lets DAX use huge pages.
  info.alignment = st.size >= kHugePage ? kHugePage : 4096;
  return c.opt.emulate ? MapEmulated(c, impl) : MapRealFile(c, impl);
}

}  // namespace

Result<Mapping> Mapping::Open(const std::string& path, MapOptions opt) {
  std::shared_ptr<Platform> plat =
      opt.platform ? opt.platform : DefaultPlatform();
  const bool rw = opt.access == Access::kReadWrite;
  if (!rw && opt.create_size) {
    return InvalidArgument("cannot create " + path + " read-only");
  }
  int oflags = (rw ? O_RDWR : O_RDONLY) | (opt.create_size ? O_CREAT : 0);
  DAXSTORE_ASSIGN_OR_RETURN(int fd, plat->Open(path, oflags, 0644));

  // From here on ~Impl unmaps and closes whatever was set up.
  auto impl = std::make_unique<Impl>();
  impl->platform = plat;
  impl->fd = fd;
  impl->info.path = path;
  impl->info.access = opt.access;
  if (opt.lock) {
    Status locked = plat->TryLock(fd, rw);
    if (!locked.ok()) return locked.WithContext(path);
  }
  DAXSTORE_ASSIGN_OR_RETURN(FileInfo st, plat->Stat(fd));
  const OpenContext c{*plat, opt, rw ? PROT_READ | PROT_WRITE : PROT_READ,
                      AllRegionsCpuCache(*plat)};
  if (st.type == FileInfo::Type::kCharDevice) {
    DAXSTORE_RETURN_IF_ERROR(MapDeviceDax(c, st, *impl));
  } else if (st.type == FileInfo::Type::kRegular) {
    DAXSTORE_RETURN_IF_ERROR(MapFile(c, st, *impl));
  } else {
    return InvalidArgument(path +
                           " is neither a regular file nor a device-DAX "
                           "character device");
  }
  MappingInfo& info = impl->info;
  info.flush_instruction = info.granularity == Granularity::kPage
                               ? (info.memory_only ? "none" : "msync")
                           : info.granularity == Granularity::kByte
                               ? "none"
                               : plat->Cpu().flush_instruction();
  if (opt.require &&
      static_cast<int>(info.granularity) > static_cast<int>(*opt.require)) {
    return Unsupported(info.why + "; " +
                       std::string(GranularityName(*opt.require)) +
                       " granularity was required: " + c.advice);
  }
  Mapping m;
  m.data_ = impl->map_addr;
  m.size_ = info.size;
  m.granularity_ = info.granularity;
  m.impl_ = std::move(impl);
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
