// Creating, destroying and opening an emulated bus directory.
#include "daxstore/emulated_bus.h"

#include <memory>

#include "ns/emulated.h"
#include "ns/in_use.h"
#include "ns/layout.h"
#include "ns/names.h"

namespace daxstore {

namespace {
std::shared_ptr<Platform> PlatformOf(const EmulatedOptions& o) {
  return o.platform ? o.platform : DefaultPlatform();
}

constexpr uint64_t kRegionAlign = 16 * ns::kMiB;

Status CheckConfig(const EmulatedBusConfig& c) {
  if (c.regions < 1 || c.regions > 64) {
    return InvalidArgument("--regions must be from 1 to 64");
  }
  if (c.dimms_per_region < 1 || c.dimms_per_region > 16) {
    return InvalidArgument("--dimms-per-region must be from 1 to 16");
  }
  uint64_t unit = kRegionAlign * static_cast<uint64_t>(c.dimms_per_region);
  if (c.region_size < unit || c.region_size % unit != 0) {
    uint64_t lo = c.region_size / unit * unit;
    return InvalidArgument(
        "region size " + ns::SizeArg(c.region_size) + " is not a multiple of " +
        ns::SizeArg(unit) + " (16M x " + std::to_string(c.dimms_per_region) +
        " DIMMs): try --size " + ns::SizeArg(lo ? lo : unit) +
        (lo ? " or --size " + ns::SizeArg(lo + unit) : ""));
  }
  return Status::Ok();
}
}  // namespace

bool EmulatedBusExists(const EmulatedOptions& o) {
  return PlatformOf(o)->Exists(ns::StatePath(o.dir));
}

Status CreateEmulatedBus(const EmulatedOptions& o, const EmulatedBusConfig& c) {
  DAXSTORE_RETURN_IF_ERROR(CheckConfig(c));
  auto p = PlatformOf(o);
  DAXSTORE_RETURN_IF_ERROR(p->MakeDirs(o.dir));
  DAXSTORE_ASSIGN_OR_RETURN(int lock, p->LockFile(ns::LockPath(o.dir)));
  struct Unlock {
    Platform& p;
    int fd;
    ~Unlock() { p.Close(fd); }
  } unlock{*p, lock};
  if (p->Exists(ns::StatePath(o.dir))) {
    return Busy(o.dir +
                " already holds an emulated bus: use it, or remove it "
                "with 'daxstore emulate destroy'");
  }
  ns::BusState s;
  s.domain = c.persistence;
  int dimm = 0;
  for (int r = 0; r < c.regions; ++r) {
    ns::RegionRecord reg;
    reg.id = r;
    reg.size = c.region_size;
    reg.align = kRegionAlign;
    reg.label_less = c.label_less;
    // Interleave-set cookies are arbitrary but stable and distinct.
    reg.iset_id =
        c.label_less ? 0 : 0x2a5c000000000000ull + 0x1111ull * (r + 1);
    for (int d = 0; d < c.dimms_per_region; ++d, ++dimm) {
      reg.dimms.push_back(dimm);
      s.dimms.push_back(
          {dimm, c.region_size / c.dimms_per_region, !c.label_less});
    }
    if (c.uninitialized_labels && !c.label_less) {
      reg.labels_initialized = false;
      reg.namespaces.push_back(ns::WholeRegionNamespace(
          reg, NamespaceMode::kRaw, MapLocation::kDev));
    }
    if (c.label_less) {
      // What memmap= pmem shows at boot: one fsdax namespace, map=mem.
      reg.namespaces.push_back(ns::WholeRegionNamespace(
          reg, NamespaceMode::kFsdax, MapLocation::kMem));
    }
    s.regions.push_back(std::move(reg));
  }
  for (const auto& reg : s.regions) {
    DAXSTORE_RETURN_IF_ERROR(
        p->MakeDirs(o.dir + "/region" + std::to_string(reg.id)));
  }
  // Device files are made by the first Acquire's recovery pass; the bus
  // exists once bus.json does.
  DAXSTORE_RETURN_IF_ERROR(
      p->WriteFileAtomic(ns::StatePath(o.dir), ns::SerializeState(s)));
  return Status::Ok();
}

Status DestroyEmulatedBus(const EmulatedOptions& o, bool force) {
  auto p = PlatformOf(o);
  std::vector<std::string> regions;
  {
    DAXSTORE_ASSIGN_OR_RETURN(auto bus,
                              ns::LockedBus::Acquire(p, o.dir, nullptr));
    std::string live;  // namespaces that are enabled or hold data
    for (auto& r : bus->state().regions) {
      for (auto& n : r.namespaces) {
        if (!force) {
          DAXSTORE_RETURN_IF_ERROR(
              ns::CheckNotSystemRam(r, n, "destroy the bus holding"));
        }
        // A served image keeps the bus even with -f.
        DAXSTORE_RETURN_IF_ERROR(
            ns::CheckNotInUse(*bus, r, n, "destroy the bus holding"));
        if (force) continue;
        DAXSTORE_ASSIGN_OR_RETURN(bool data,
                                  ns::StoresData(*p, bus->DevicePath(r, n)));
        const bool enabled = n.enabled && r.enabled;
        if (!data && !enabled) continue;
        live += (live.empty() ? "" : ", ") + ns::NamespaceName(r.id, n.id) +
                (n.name.empty() ? "" : " '" + n.name + "'") + " (" +
                ns::SizeArg(n.raw_size) + (enabled ? ", enabled" : "") +
                (data ? ", holds data" : "") + ")";
      }
      regions.push_back(bus->RegionDir(r.id));
    }
    if (!live.empty()) {
      return Busy("the emulated bus in " + o.dir +
                  " still has namespaces: " + live +
                  "; 'daxstore emulate destroy -f' destroys them and all "
                  "their data (or destroy-namespace them one by one first)");
    }
    // bus.json goes first: from then on there is no bus, whatever is left.
    DAXSTORE_RETURN_IF_ERROR(p->Remove(ns::StatePath(o.dir)));
    for (const auto& dir : regions) {
      DAXSTORE_ASSIGN_OR_RETURN(auto files, p->ListDir(dir));
      for (const auto& f : files) {
        DAXSTORE_RETURN_IF_ERROR(p->Remove(dir + "/" + f));
      }
      DAXSTORE_RETURN_IF_ERROR(p->RemoveDir(dir));
    }
  }
  return p->Remove(ns::LockPath(o.dir));
}

Result<std::unique_ptr<NamespaceBackend>> OpenEmulatedBackend(
    EmulatedOptions options) {
  if (options.dir.empty()) return InvalidArgument("no emulated bus directory");
  if (!options.platform) options.platform = DefaultPlatform();
  // Acquiring once checks the bus and repairs an interrupted operation.
  DAXSTORE_ASSIGN_OR_RETURN(
      auto bus, ns::LockedBus::Acquire(options.platform, options.dir, nullptr));
  bus.reset();
  return std::unique_ptr<NamespaceBackend>(
      new ns::EmulatedBackend(std::move(options)));
}

}  // namespace daxstore
