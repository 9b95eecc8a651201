// The kernel backend's operations. The order mirrors what the kernel
// needs: a namespace seed gets uuid, name and size, then a pfn/dax/btt
// seed is pointed at it and enabled; a failure deletes what was made.
#include <daxctl/libdaxctl.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "ns/in_use.h"
#include "ns/kernel.h"
#include "ns/layout.h"
#include "ns/names.h"

namespace daxstore::ns {

namespace {
Status Check(int rc, const std::string& what) {
  if (rc >= 0) return Status::Ok();
  return FromErrno(-rc, what);
}

bool ParseUuid(const std::string& text, unsigned char out[16]) {
  if (!ValidUuid(text)) return false;
  int n = 0;
  for (size_t i = 0; i < text.size() && n < 16; ++i) {
    if (text[i] == '-') continue;
    unsigned v = 0;
    std::sscanf(text.c_str() + i, "%2x", &v);
    out[n++] = static_cast<unsigned char>(v);
    ++i;
  }
  return n == 16;
}

// The modules a mode's driver lives in, in the order to load them.
std::vector<std::string> ModulesFor(NamespaceMode mode) {
  switch (mode) {
    case NamespaceMode::kSector:
      return {"nd_btt", "nd_pmem"};
    case NamespaceMode::kDevdax:
      return {"device_dax", "dax_pmem"};
    default:
      return {"nd_pmem"};
  }
}

ndctl_pfn_loc LocOf(std::optional<MapLocation> m) {
  return m == MapLocation::kMem ? NDCTL_PFN_LOC_RAM : NDCTL_PFN_LOC_PMEM;
}

Status CheckNotSystemRam(const Namespace& n, const std::string& action) {
  if (!n.dax_region) return Status::Ok();
  for (const auto& d : n.dax_region->devices) {
    if (d.mode == DaxMode::kSystemRam) {
      return Busy("cannot " + action + " " + n.dev + ": " + d.chardev +
                  " is online as system-ram; run 'reconfigure-device -f -m "
                  "devdax " +
                  d.chardev + "' first");
    }
  }
  return Status::Ok();
}

}  // namespace

Status KernelBackend::CheckIdle(ndctl_namespace* ndns,
                                const std::string& action) {
  Namespace n = Describe(ndns);
  DAXSTORE_RETURN_IF_ERROR(CheckNotSystemRam(n, action));
  const std::string what = "cannot " + action + " " + n.dev + ": ";
  // As ndctl: -f does not override a mount (its exclusive open fails).
  if (!n.mounted_at.empty()) {
    return Busy(what + "/dev/" + n.blockdev + " is mounted at " + n.mounted_at +
                "; unmount it first (-f does not override a " + "mount)");
  }
  if (!n.blockdev.empty()) {
    auto busy = BlockDeviceBusy(*platform_, "/dev/" + n.blockdev);
    if (busy.ok() && *busy) {
      return Busy(what + "/dev/" + n.blockdev +
                  " is in use (another process holds it open exclusively); "
                  "close it first");
    }
  }
  if (n.dax_region) {
    for (const auto& d : n.dax_region->devices) {
      auto locked = LockedByAnotherOpen(*platform_, "/dev/" + d.chardev);
      if (locked.ok() && *locked) {
        return Busy(what + "/dev/" + d.chardev +
                    " is held by an open image or mapping (such as 'daxstore "
                    "serve'); stop that process first");
      }
    }
  }
  return Status::Ok();
}

bool KernelBackend::ModuleLoaded(const std::string& module) {
  return platform_->ListSysfs("module/" + module).ok();
}

Status KernelBackend::NameMissingModule(Status failed,
                                        const std::vector<std::string>& mods) {
  if (failed.ok()) return failed;
  for (const auto& m : mods) {
    if (!ModuleLoaded(m)) {
      return Unsupported(failed.message() + ": the " + m +
                         " module is not loaded; run 'modprobe " + m +
                         "' and retry");
    }
  }
  return failed;
}

Status KernelBackend::Configure(ndctl_region* region, ndctl_namespace* ndns,
                                const CreateRequest& r, uint64_t raw,
                                bool label_less) {
  unsigned char uu[16];
  if (!label_less) {
    std::string uuid = r.uuid.empty() ? NewUuid() : r.uuid;
    ParseUuid(uuid, uu);
    DAXSTORE_RETURN_IF_ERROR(
        Check(ndctl_namespace_set_uuid(ndns, uu), "set uuid"));
    DAXSTORE_RETURN_IF_ERROR(
        Check(ndctl_namespace_set_alt_name(ndns, r.name.c_str()), "set name"));
    DAXSTORE_RETURN_IF_ERROR(
        Check(ndctl_namespace_set_size(ndns, raw), "set size"));
  }
  ParseUuid(NewUuid(), uu);  // the personality's own uuid
  return NameMissingModule(Personalize(region, ndns, r, uu, label_less),
                           ModulesFor(r.mode));
}

Status KernelBackend::Personalize(ndctl_region* region, ndctl_namespace* ndns,
                                  const CreateRequest& r, unsigned char uu[16],
                                  bool label_less) {
  if (label_less && r.mode != NamespaceMode::kRaw) {
    ndctl_namespace_set_raw_mode(ndns, 0);
  }
  switch (r.mode) {
    case NamespaceMode::kRaw:
      if (!label_less && r.sector_size) {
        DAXSTORE_RETURN_IF_ERROR(
            Check(ndctl_namespace_set_sector_size(ndns, r.sector_size),
                  "set sector size"));
      }
      ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_RAW);
      // A label-less namespace would otherwise come up as fsdax (map mem).
      if (label_less) ndctl_namespace_set_raw_mode(ndns, 1);
      return Check(ndctl_namespace_enable(ndns), "enable namespace");
    case NamespaceMode::kSector: {
      ndctl_btt* btt = ndctl_region_get_btt_seed(region);
      if (btt == nullptr) return Unsupported("no btt seed: is nd_btt loaded?");
      ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_SECTOR);
      DAXSTORE_RETURN_IF_ERROR(Check(ndctl_btt_set_uuid(btt, uu), "btt uuid"));
      DAXSTORE_RETURN_IF_ERROR(Check(
          ndctl_btt_set_sector_size(btt, r.sector_size), "btt sector size"));
      DAXSTORE_RETURN_IF_ERROR(
          Check(ndctl_btt_set_namespace(btt, ndns), "btt namespace"));
      return Check(ndctl_btt_enable(btt), "enable btt");
    }
    case NamespaceMode::kFsdax: {
      ndctl_pfn* pfn = ndctl_region_get_pfn_seed(region);
      if (pfn == nullptr) return Unsupported("no pfn seed: is nd_pmem loaded?");
      ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_FSDAX);
      DAXSTORE_RETURN_IF_ERROR(Check(ndctl_pfn_set_uuid(pfn, uu), "pfn uuid"));
      DAXSTORE_RETURN_IF_ERROR(
          Check(ndctl_pfn_set_location(pfn, LocOf(r.map)), "pfn map location"));
      DAXSTORE_RETURN_IF_ERROR(
          Check(ndctl_pfn_set_align(pfn, r.align), "pfn align"));
      DAXSTORE_RETURN_IF_ERROR(
          Check(ndctl_pfn_set_namespace(pfn, ndns), "pfn namespace"));
      return Check(ndctl_pfn_enable(pfn), "enable fsdax");
    }
    case NamespaceMode::kDevdax: {
      ndctl_dax* dax = ndctl_region_get_dax_seed(region);
      if (dax == nullptr) {
        return Unsupported("no dax seed: is dax_pmem (device_dax) loaded?");
      }
      ndctl_namespace_set_enforce_mode(ndns, NDCTL_NS_MODE_DEVDAX);
      DAXSTORE_RETURN_IF_ERROR(Check(ndctl_dax_set_uuid(dax, uu), "dax uuid"));
      DAXSTORE_RETURN_IF_ERROR(
          Check(ndctl_dax_set_location(dax, LocOf(r.map)), "dax map location"));
      DAXSTORE_RETURN_IF_ERROR(
          Check(ndctl_dax_set_align(dax, r.align), "dax align"));
      DAXSTORE_RETURN_IF_ERROR(
          Check(ndctl_dax_set_namespace(dax, ndns), "dax namespace"));
      return Check(ndctl_dax_enable(dax), "enable devdax");
    }
  }
  return Internal("unknown mode");
}

Result<Namespace> KernelBackend::Create(const CreateRequest& request) {
  CreateRequest r = request;
  DAXSTORE_RETURN_IF_ERROR(NormalizeRequest(r));
  if (!r.reconfigure.empty()) return Reconfigure(r);
  if (!r.region.empty() && r.region != "all" && ParseRegionName(r.region) < 0) {
    return InvalidArgument("invalid region '" + r.region +
                           "': use e.g. region0");
  }
  DAXSTORE_ASSIGN_OR_RETURN(auto buses, List({.include_idle = true}));
  Status first = NotFound("no pmem region on any NVDIMM bus");
  for (const auto& b : buses) {
    for (const auto& view : b.regions) {
      if (!r.region.empty() && r.region != "all" &&
          ParseRegionName(r.region) != ParseRegionName(view.dev)) {
        continue;
      }
      Status st;
      if (!view.enabled) {
        st = Unsupported(view.dev + " is disabled: run 'enable-region " +
                         view.dev + "' first");
      } else if (view.label_less) {
        st = Unsupported(
            "label-less region cannot be subdivided: reconfigure with -e (" +
            view.dev +
            " has no labels; try 'create-namespace -f -e "
            "namespaceN.0 -m MODE')");
      }
      auto raw = st.ok() ? ResolveSize(view, r.size, SizeGranule(view, r.align))
                         : Result<uint64_t>(st);
      if (raw.ok()) {
        DAXSTORE_ASSIGN_OR_RETURN(ndctl_region * region, FindRegion(view.dev));
        ndctl_namespace* ndns = ndctl_region_get_namespace_seed(region);
        if (ndns == nullptr) {
          return Unsupported(view.dev + " offers no namespace seed");
        }
        Status made = Configure(region, ndns, r, *raw, false);
        if (!made.ok()) {
          ndctl_namespace_disable_invalidate(ndns);
          ndctl_namespace_delete(ndns);
          return made.WithContext("create-namespace in " + view.dev);
        }
        return Describe(ndns);
      }
      if (first.kind() == ErrorKind::kNotFound) first = raw.status();
    }
  }
  return first;
}

Result<Namespace> KernelBackend::Reconfigure(const CreateRequest& r) {
  DAXSTORE_ASSIGN_OR_RETURN(ndctl_namespace * ndns,
                            FindNamespace(r.reconfigure));
  DAXSTORE_RETURN_IF_ERROR(CheckIdle(ndns, "reconfigure"));
  Namespace old = Describe(ndns);
  if (old.enabled && !r.force) {
    return Busy(old.dev +
                " is active: pass -f to reconfigure it (its data "
                "is not kept)");
  }
  if (r.size.kind != SizeRequest::Kind::kAll) {
    return InvalidArgument("-e keeps " + old.dev + "'s size: drop --size");
  }
  ndctl_region* region = ndctl_namespace_get_region(ndns);
  bool label_less = ndctl_region_get_nstype(region) == kNdDeviceNamespaceIo;
  DAXSTORE_RETURN_IF_ERROR(
      Check(ndctl_namespace_disable_safe(ndns), "disable " + old.dev));
  DAXSTORE_RETURN_IF_ERROR(ClearInfoBlock(ndns));
  CreateRequest keep = r;
  if (keep.name.empty()) keep.name = old.name;
  if (!label_less) {
    // libndctl frees a deleted namespace: the new one is the region's seed
    // (so its device name may differ from the old one's).
    DAXSTORE_RETURN_IF_ERROR(
        Check(ndctl_namespace_delete(ndns), "delete " + old.dev));
    ndns = ndctl_region_get_namespace_seed(region);
    if (ndns == nullptr) {
      return Unsupported(old.dev + " was deleted but " +
                         ndctl_region_get_devname(region) +
                         " offers no namespace seed to reconfigure");
    }
  }
  DAXSTORE_RETURN_IF_ERROR(
      Configure(region, ndns, keep, old.raw_size, label_less));
  return Describe(ndns);
}

Status KernelBackend::Destroy(const std::string& name, bool force) {
  DAXSTORE_ASSIGN_OR_RETURN(ndctl_namespace * ndns, FindNamespace(name));
  DAXSTORE_RETURN_IF_ERROR(CheckIdle(ndns, "destroy"));
  if (ndctl_region_get_nstype(ndctl_namespace_get_region(ndns)) ==
      kNdDeviceNamespaceIo) {
    return Unsupported(name +
                       " is label-less and cannot be destroyed: "
                       "reconfigure with -e instead");
  }
  if (ndctl_namespace_is_active(ndns) && !force) {
    return Busy(name + " is active: pass -f to destroy it and its data");
  }
  DAXSTORE_RETURN_IF_ERROR(
      Check(ndctl_namespace_disable_safe(ndns), "disable " + name));
  // As ndctl: no stale pfn/dax/btt info block is left for a namespace
  // created later over the same bytes.
  DAXSTORE_RETURN_IF_ERROR(ClearInfoBlock(ndns));
  return Check(ndctl_namespace_delete(ndns), "delete " + name);
}

Status KernelBackend::EnableNamespace(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(ndctl_namespace * ndns, FindNamespace(name));
  return Check(ndctl_namespace_enable(ndns), "enable " + name);
}

Status KernelBackend::DisableNamespace(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(ndctl_namespace * ndns, FindNamespace(name));
  DAXSTORE_RETURN_IF_ERROR(CheckIdle(ndns, "disable"));
  return Check(ndctl_namespace_disable_safe(ndns), "disable " + name);
}

Status KernelBackend::EnableRegion(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(ndctl_region * r, FindRegion(name));
  DAXSTORE_RETURN_IF_ERROR(Check(ndctl_region_enable(r), "enable " + name));
  // libndctl keeps the namespaces (and seed) it saw before the region was
  // disabled: start a fresh context to see the kernel's new ones.
  ndctl_ctx* fresh = nullptr;
  if (int rc = ndctl_new(&fresh); rc != 0) {
    return FromErrno(-rc, "cannot reopen libndctl");
  }
  ndctl_unref(ctx_);
  ctx_ = fresh;
  return Status::Ok();
}

Status KernelBackend::DisableRegion(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(ndctl_region * r, FindRegion(name));
  ndctl_namespace* ndns;
  ndctl_namespace_foreach(r, ndns) {
    DAXSTORE_RETURN_IF_ERROR(CheckIdle(ndns, "disable the region holding"));
  }
  return Check(ndctl_region_disable_invalidate(r), "disable " + name);
}

Result<int> KernelBackend::InitLabels(const std::string& name, bool force) {
  int done = 0;
  ndctl_bus* bus;
  ndctl_region* r;
  ndctl_bus_foreach(ctx_, bus) {
    ndctl_region_foreach(bus, r) {
      std::string dev = ndctl_region_get_devname(r);
      if (name != "all" && ParseRegionName(name) != ParseRegionName(dev)) {
        continue;
      }
      if (ndctl_region_get_nstype(r) == kNdDeviceNamespaceIo) {
        if (name == "all") continue;
        return Unsupported(dev +
                           "'s DIMMs have no label area (label-less): "
                           "reconfigure its namespace with -e");
      }
      if (ndctl_region_is_enabled(r) && !force) {
        return Busy(dev + " is enabled: run 'disable-region " + dev +
                    "' first");
      }
      ndctl_dimm* dimm;
      ndctl_dimm_foreach_in_region(r, dimm) {
        std::string what =
            std::string("init labels of ") + ndctl_dimm_get_devname(dimm);
        // libndctl writes the index through the label area it has read.
        ndctl_cmd* read = ndctl_dimm_read_labels(dimm);
        if (read == nullptr) return IoError(what + ": cannot read labels", EIO);
        int rc = ndctl_dimm_init_labels(dimm, NDCTL_NS_VERSION_1_2);
        ndctl_cmd_unref(read);
        DAXSTORE_RETURN_IF_ERROR(Check(rc, what));
        ++done;
      }
    }
  }
  return done;
}

Result<DaxDevice> KernelBackend::ReconfigureDevice(const std::string& name,
                                                   DaxMode mode, bool force) {
  daxctl_dev* dev = FindDaxDev(name);
  // libdaxctl keeps a destroyed device's object: ask sysfs.
  auto present = platform_->ListSysfs("bus/dax/devices/" + name);
  if (dev == nullptr || !present.ok()) {
    return NotFound("no dax device " + name +
                    ": is device_dax loaded, and is there a devdax namespace?");
  }
  bool ram = SystemRam(name);
  if (mode == DaxMode::kSystemRam && !ram) {
    DAXSTORE_RETURN_IF_ERROR(Check(daxctl_dev_disable(dev), "disable " + name));
    DAXSTORE_RETURN_IF_ERROR(NameMissingModule(
        Check(daxctl_dev_enable_ram(dev), "bind " + name + " to kmem"),
        {"kmem"}));
    if (daxctl_memory* mem = daxctl_dev_get_memory(dev)) {
      DAXSTORE_RETURN_IF_ERROR(
          Check(daxctl_memory_online(mem), "online " + name + "'s memory"));
    }
  } else if (mode == DaxMode::kDevdax && ram) {
    if (!force) {
      return Busy(name +
                  "'s memory is online as system-ram: pass -f to "
                  "offline it and return it to devdax");
    }
    if (daxctl_memory* mem = daxctl_dev_get_memory(dev)) {
      DAXSTORE_RETURN_IF_ERROR(
          Check(daxctl_memory_offline(mem), "offline " + name + "'s memory"));
    }
    DAXSTORE_RETURN_IF_ERROR(Check(daxctl_dev_disable(dev), "disable " + name));
    DAXSTORE_RETURN_IF_ERROR(
        Check(daxctl_dev_enable_devdax(dev), "enable " + name + " as devdax"));
  }
  DaxDevice d;
  d.chardev = name;
  d.size = daxctl_dev_get_size(dev);
  d.align = daxctl_dev_get_align(dev);
  d.target_node = daxctl_dev_get_target_node(dev);
  d.mode = SystemRam(name) ? DaxMode::kSystemRam : DaxMode::kDevdax;
  return d;
}

Result<MapTarget> KernelBackend::MapTargetOf(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(ndctl_namespace * ndns, FindNamespace(name));
  Namespace n = Describe(ndns);
  if (n.mode == NamespaceMode::kDevdax && n.dax_region &&
      !n.dax_region->devices.empty()) {
    DAXSTORE_RETURN_IF_ERROR(CheckNotSystemRam(n, "map"));
    MapTarget t;
    t.path = "/dev/" + n.dax_region->devices[0].chardev;
    t.options.platform = platform_;
    return t;
  }
  if (n.mode == NamespaceMode::kFsdax) {
    return Unsupported(name + " is fsdax: make a filesystem on /dev/" +
                       n.blockdev +
                       " (mkfs.ext4 -b 4096), mount it with -o "
                       "dax and map a file on it");
  }
  return Unsupported(name + " is in " + std::string(NamespaceModeName(n.mode)) +
                     " mode, which has no DAX: reconfigure it with -m fsdax "
                     "or -m devdax");
}

}  // namespace daxstore::ns
