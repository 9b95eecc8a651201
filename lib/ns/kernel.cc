// The kernel backend: opening, listing and describing.
#include "ns/kernel.h"

#include <daxctl/libdaxctl.h>

#include <cstdio>

#include "ns/filter.h"
#include "ns/kernel_probe.h"
#include "ns/layout.h"
#include "ns/names.h"

namespace daxstore {

Result<std::unique_ptr<NamespaceBackend>> OpenKernelBackend(
    std::shared_ptr<Platform> platform) {
  if (!platform) platform = DefaultPlatform();
  DAXSTORE_RETURN_IF_ERROR(ns::CheckKernelBus(*platform));
  ndctl_ctx* ctx = nullptr;
  if (int rc = ndctl_new(&ctx); rc != 0) {
    return FromErrno(-rc, "cannot open libndctl");
  }
  daxctl_ctx* dax = nullptr;
  if (int rc = daxctl_new(&dax); rc != 0) {
    ndctl_unref(ctx);
    return FromErrno(-rc, "cannot open libdaxctl");
  }
  return std::unique_ptr<NamespaceBackend>(
      new ns::KernelBackend(std::move(platform), ctx, dax));
}

namespace ns {

KernelBackend::~KernelBackend() {
  daxctl_unref(dax_);
  ndctl_unref(ctx_);
}

namespace {
std::string UuidText(const unsigned char* u) {
  char buf[40];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                "%02x%02x%02x%02x%02x%02x",
                u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
                u[10], u[11], u[12], u[13], u[14], u[15]);
  bool zero = true;
  for (int i = 0; i < 16; ++i) zero = zero && u[i] == 0;
  return zero ? "" : buf;
}

std::optional<MapLocation> MapOf(ndctl_pfn_loc loc) {
  if (loc == NDCTL_PFN_LOC_RAM) return MapLocation::kMem;
  if (loc == NDCTL_PFN_LOC_PMEM) return MapLocation::kDev;
  return std::nullopt;
}

// libndctl returns nullptr for a device that is not (yet) there.
std::string Str(const char* s) { return s ? s : ""; }

bool LabelLess(ndctl_region* r) {
  return ndctl_region_get_nstype(r) == kNdDeviceNamespaceIo;
}
}  // namespace

Namespace KernelBackend::Describe(ndctl_namespace* ndns) {
  Namespace n;
  ndctl_region* region = ndctl_namespace_get_region(ndns);
  n.dev = ndctl_namespace_get_devname(ndns);
  n.region = ndctl_region_get_devname(region);
  n.raw_size = ndctl_namespace_get_size(ndns);
  n.size = n.raw_size;
  n.enabled =
      ndctl_namespace_is_enabled(ndns) || ndctl_namespace_is_active(ndns);
  n.numa_node = ndctl_namespace_get_numa_node(ndns);
  unsigned char uu[16] = {};
  // Like ndctl, the uuid shown is the personality's (btt, pfn, dax) when
  // there is one, the namespace's own otherwise.
  ndctl_namespace_get_uuid(ndns, uu);
  n.uuid = UuidText(uu);
  if (const char* alt = ndctl_namespace_get_alt_name(ndns)) n.name = alt;
  n.sector_size = ndctl_namespace_get_sector_size(ndns);
  // Unset (UINT_MAX) or 0: the kernel's default, as ndctl shows it.
  if (n.sector_size == 0 || n.sector_size == UINT32_MAX) n.sector_size = 512;
  if (ndctl_btt* btt = ndctl_namespace_get_btt(ndns)) {
    n.mode = NamespaceMode::kSector;
    n.size = ndctl_btt_get_size(btt);
    n.sector_size = ndctl_btt_get_sector_size(btt);
    n.blockdev = Str(ndctl_btt_get_block_device(btt));
    ndctl_btt_get_uuid(btt, uu);
    n.uuid = UuidText(uu);
  } else if (ndctl_pfn* pfn = ndctl_namespace_get_pfn(ndns)) {
    n.mode = NamespaceMode::kFsdax;
    n.size = ndctl_pfn_get_size(pfn);
    n.align = ndctl_pfn_get_align(pfn);
    n.map = MapOf(ndctl_pfn_get_location(pfn));
    n.blockdev = Str(ndctl_pfn_get_block_device(pfn));
    ndctl_pfn_get_uuid(pfn, uu);
    n.uuid = UuidText(uu);
  } else if (ndctl_dax* dax = ndctl_namespace_get_dax(ndns)) {
    n.mode = NamespaceMode::kDevdax;
    n.size = ndctl_dax_get_size(dax);
    n.align = ndctl_dax_get_align(dax);
    n.map = MapOf(ndctl_dax_get_location(dax));
    n.sector_size = 0;
    ndctl_dax_get_uuid(dax, uu);
    n.uuid = UuidText(uu);
    DaxRegion dr;
    dr.size = n.size;
    dr.align = n.align;
    if (daxctl_region* dreg = ndctl_dax_get_daxctl_region(dax)) {
      dr.id = daxctl_region_get_id(dreg);
      daxctl_dev* dev;
      daxctl_dev_foreach(dreg, dev) {
        DaxDevice d;
        d.chardev = Str(daxctl_dev_get_devname(dev));
        d.size = daxctl_dev_get_size(dev);
        d.align = daxctl_dev_get_align(dev);
        d.target_node = daxctl_dev_get_target_node(dev);
        d.mode = SystemRam(d.chardev) ? DaxMode::kSystemRam : DaxMode::kDevdax;
        dr.devices.push_back(std::move(d));
      }
    }
    n.dax_region = std::move(dr);
  } else {
    // A label-less namespace of nd_e820 shows fsdax/map mem only through
    // its pfn; without one it is raw.
    n.mode = NamespaceMode::kRaw;
    if (ndctl_namespace_get_mode(ndns) == NDCTL_NS_MODE_FSDAX) {
      n.mode = NamespaceMode::kFsdax;
      n.map = MapLocation::kMem;
    }
    if (const char* b = ndctl_namespace_get_block_device(ndns)) n.blockdev = b;
  }
  if (!n.blockdev.empty()) {
    if (auto mounts = platform_->Mounts(); mounts.ok()) {
      for (const auto& m : *mounts) {
        if (m.source == "/dev/" + n.blockdev) n.mounted_at = m.mount_point;
      }
    }
  }
  return n;
}

Region KernelBackend::Describe(ndctl_region* r) {
  Region g;
  g.dev = ndctl_region_get_devname(r);
  g.bus = ndctl_bus_get_devname(ndctl_region_get_bus(r));
  g.size = ndctl_region_get_size(r);
  g.available_size = ndctl_region_get_available_size(r);
  g.max_available_extent = ndctl_region_get_max_available_extent(r);
  g.align = ndctl_region_get_align(r);
  g.type = Str(ndctl_region_get_type_name(r));
  if (auto* iset = ndctl_region_get_interleave_set(r)) {
    g.iset_id = ndctl_interleave_set_get_cookie(iset);
  }
  g.numa_node = ndctl_region_get_numa_node(r);
  ndctl_mapping* m;
  ndctl_mapping_foreach(r, m) {
    g.mappings.push_back({ndctl_dimm_get_devname(ndctl_mapping_get_dimm(m)),
                          ndctl_mapping_get_offset(m),
                          ndctl_mapping_get_length(m),
                          ndctl_mapping_get_position(m)});
  }
  g.capabilities = Capabilities();
  switch (ndctl_region_get_persistence_domain(r)) {
    case PERSISTENCE_CPU_CACHE:
      g.persistence_domain = PersistenceDomain::kCpuCache;
      break;
    case PERSISTENCE_MEM_CTRL:
      g.persistence_domain = PersistenceDomain::kMemoryController;
      break;
    default:
      break;
  }
  g.enabled = ndctl_region_is_enabled(r);
  g.label_less = LabelLess(r);
  badblock* bb;
  ndctl_region_badblock_foreach(r, bb) {
    g.badblocks.push_back({bb->offset * 512, uint64_t{bb->len} * 512});
  }
  ndctl_namespace* ndns;
  ndctl_namespace_foreach(r, ndns) {
    if (ndctl_namespace_get_size(ndns) == 0) continue;  // a seed
    g.namespaces.push_back(Describe(ndns));
  }
  return g;
}

Result<std::vector<Bus>> KernelBackend::List(const ListFilter& filter) {
  std::vector<Bus> out;
  ndctl_bus* bus;
  ndctl_bus_foreach(ctx_, bus) {
    ndctl_bus_wait_probe(bus);
    Bus b;
    b.dev = ndctl_bus_get_devname(bus);
    b.provider = Str(ndctl_bus_get_provider(bus));
    ndctl_dimm* dimm;
    ndctl_dimm_foreach(bus, dimm) {
      Dimm d;
      d.dev = ndctl_dimm_get_devname(dimm);
      if (const char* id = ndctl_dimm_get_unique_id(dimm)) d.id = id;
      d.handle = ndctl_dimm_get_handle(dimm);
      d.phys_id = ndctl_dimm_get_phys_id(dimm);
      d.enabled = ndctl_dimm_is_enabled(dimm);
      b.dimms.push_back(std::move(d));
    }
    ndctl_region* region;
    ndctl_region_foreach(bus, region) {
      if (ndctl_region_get_type(region) != kNdDeviceRegionPmem) continue;
      b.regions.push_back(Describe(region));
    }
    out.push_back(std::move(b));
  }
  ApplyFilter(filter, out);
  return out;
}

Result<ndctl_region*> KernelBackend::FindRegion(const std::string& name) {
  ndctl_bus* bus;
  ndctl_region* r;
  ndctl_bus_foreach(ctx_, bus) {
    ndctl_region_foreach(bus, r) {
      if (MatchesRegion(name, ndctl_region_get_devname(r))) return r;
    }
  }
  return NotFound("no region " + name);
}

Result<ndctl_namespace*> KernelBackend::FindNamespace(const std::string& name) {
  int rid, id;
  if (!ParseNamespaceName(name, &rid, &id)) {
    return InvalidArgument("invalid namespace '" + name +
                           "': use e.g. namespace0.0");
  }
  ndctl_bus* bus;
  ndctl_region* r;
  ndctl_namespace* ndns;
  ndctl_bus_foreach(ctx_, bus) {
    ndctl_region_foreach(bus, r) {
      ndctl_namespace_foreach(r, ndns) {
        if (MatchesNamespace(name, ndctl_namespace_get_devname(ndns))) {
          return ndns;
        }
      }
    }
  }
  return NotFound("no " + NamespaceName(rid, id));
}

bool KernelBackend::SystemRam(const std::string& chardev) {
  // The driver bound now, from sysfs: libdaxctl's memory object outlives a
  // return to devdax.
  auto bound = platform_->ListSysfs("bus/dax/drivers/kmem");
  if (!bound.ok()) return false;
  for (const auto& e : *bound) {
    if (e == chardev) return true;
  }
  return false;
}

daxctl_dev* KernelBackend::FindDaxDev(const std::string& name) {
  daxctl_region* region;
  daxctl_dev* dev;
  daxctl_region_foreach(dax_, region) {
    daxctl_dev_foreach(region, dev) {
      if (name == Str(daxctl_dev_get_devname(dev))) return dev;
    }
  }
  return nullptr;
}

}  // namespace ns
}  // namespace daxstore
