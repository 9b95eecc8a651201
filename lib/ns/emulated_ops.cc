// The emulated backend's operations other than list and create.
#include <algorithm>

#include "ns/emulated.h"
#include "ns/filter.h"
#include "ns/layout.h"
#include "ns/names.h"

namespace daxstore::ns {

Status EmulatedBackend::Destroy(const std::string& name, bool force) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  DAXSTORE_ASSIGN_OR_RETURN(auto found, LookupNamespace(bus->state(), name));
  auto [reg, n] = found;
  std::string dev = NamespaceName(reg->id, n->id);
  if (!reg->label_less && !reg->labels_initialized) {
    return Unsupported(dev + " is the placeholder of " + RegionName(reg->id) +
                       ", whose label area is not initialised: run "
                       "'init-labels' on the disabled region instead");
  }
  if (reg->label_less) {
    return Unsupported(dev + " spans label-less " + RegionName(reg->id) +
                       ", which cannot be subdivided or emptied: reconfigure "
                       "with -e instead ('create-namespace -f -e " +
                       dev + " -m MODE')");
  }
  DAXSTORE_RETURN_IF_ERROR(CheckIdle(*bus, *reg, *n, "destroy"));
  if (n->enabled && reg->enabled && !force) {
    return Busy(dev + " is active: pass -f to destroy it and its data");
  }
  std::string path = bus->DevicePath(*reg, *n);
  // (A copy: clang 14 cannot capture a structured binding.)
  const auto id = n->id;
  std::erase_if(reg->namespaces,
                [id](const NsRecord& x) { return x.id == id; });
  // The label goes first; a file left by a crash is an orphan that the
  // next operation removes.
  DAXSTORE_RETURN_IF_ERROR(bus->Commit());
  bus->CrashPoint("destroy:after-publish");
  return bus->RemoveDeviceFile(path);
}

Status EmulatedBackend::EnableNamespace(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  DAXSTORE_ASSIGN_OR_RETURN(auto found, LookupNamespace(bus->state(), name));
  auto [reg, n] = found;
  if (!reg->enabled) {
    return Unsupported(RegionName(reg->id) +
                       " is disabled: run "
                       "'enable-region " +
                       RegionName(reg->id) + "' first");
  }
  if (n->enabled) return Status::Ok();
  n->enabled = true;
  return bus->Commit();
}

Status EmulatedBackend::DisableNamespace(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  DAXSTORE_ASSIGN_OR_RETURN(auto found, LookupNamespace(bus->state(), name));
  auto [reg, n] = found;
  DAXSTORE_RETURN_IF_ERROR(CheckIdle(*bus, *reg, *n, "disable"));
  if (!n->enabled) return Status::Ok();
  n->enabled = false;
  return bus->Commit();
}

Status EmulatedBackend::EnableRegion(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  DAXSTORE_ASSIGN_OR_RETURN(RegionRecord * reg,
                            LookupRegion(bus->state(), name));
  if (reg->enabled) return Status::Ok();
  reg->enabled = true;
  return bus->Commit();
}

Status EmulatedBackend::DisableRegion(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  DAXSTORE_ASSIGN_OR_RETURN(RegionRecord * reg,
                            LookupRegion(bus->state(), name));
  for (const auto& n : reg->namespaces) {
    DAXSTORE_RETURN_IF_ERROR(
        CheckIdle(*bus, *reg, n, "disable the region holding"));
  }
  if (!reg->enabled) return Status::Ok();
  reg->enabled = false;
  return bus->Commit();
}

Result<int> EmulatedBackend::InitLabels(const std::string& name, bool force) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  BusState& s = bus->state();
  std::vector<RegionRecord*> targets;
  if (name == "all") {
    for (auto& r : s.regions) {
      if (!r.label_less) targets.push_back(&r);
    }
  } else {
    DAXSTORE_ASSIGN_OR_RETURN(RegionRecord * reg, LookupRegion(s, name));
    if (reg->label_less) {
      return Unsupported(RegionName(reg->id) +
                         "'s DIMMs have no label area "
                         "(label-less, like memmap= pmem): nothing to "
                         "initialise; reconfigure its namespace with -e");
    }
    targets.push_back(reg);
  }
  std::vector<std::string> doomed;
  int dimms = 0;
  for (RegionRecord* r : targets) {
    if (r->enabled && !force) {
      return Busy(RegionName(r->id) + " is enabled: run 'disable-region " +
                  RegionName(r->id) +
                  "' first, or pass -f (every namespace "
                  "in it is lost)");
    }
    for (const auto& n : r->namespaces) {
      DAXSTORE_RETURN_IF_ERROR(CheckIdle(*bus, *r, n, "relabel"));
      doomed.push_back(bus->DevicePath(*r, n));
    }
    r->namespaces.clear();
    r->labels_initialized = true;
    dimms += static_cast<int>(r->dimms.size());
  }
  DAXSTORE_RETURN_IF_ERROR(bus->Commit());
  for (const auto& path : doomed) {
    DAXSTORE_RETURN_IF_ERROR(bus->RemoveDeviceFile(path));
  }
  return dimms;
}

Result<DaxDevice> EmulatedBackend::ReconfigureDevice(const std::string& dax,
                                                     DaxMode mode, bool force) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  for (auto& r : bus->state().regions) {
    for (auto& n : r.namespaces) {
      if (n.mode != NamespaceMode::kDevdax || DaxDevName(r.id, n.id) != dax) {
        continue;
      }
      if (!n.enabled || !r.enabled) {
        return Unsupported(dax + " is disabled: enable " +
                           NamespaceName(r.id, n.id) + " first");
      }
      if (n.dax_mode == DaxMode::kSystemRam && mode == DaxMode::kDevdax &&
          !force) {
        return Busy(dax +
                    "'s memory is online as system-ram: pass -f to "
                    "offline it and return it to devdax");
      }
      if (n.dax_mode != mode) {
        n.dax_mode = mode;
        DAXSTORE_RETURN_IF_ERROR(bus->Commit());
      }
      return ToNamespace(r, n).dax_region->devices.front();
    }
  }
  return NotFound("no dax device " + dax +
                  " (create one with 'create-namespace -m devdax')");
}

Result<MapTarget> EmulatedBackend::MapTargetOf(const std::string& name) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  DAXSTORE_ASSIGN_OR_RETURN(auto found, LookupNamespace(bus->state(), name));
  auto [reg, n] = found;
  std::string dev = NamespaceName(reg->id, n->id);
  if (n->mode != NamespaceMode::kFsdax && n->mode != NamespaceMode::kDevdax) {
    return Unsupported(dev + " is in " +
                       std::string(NamespaceModeName(n->mode)) +
                       " mode, which has no DAX: reconfigure it with -m "
                       "fsdax or -m devdax to map it");
  }
  if (!n->enabled || !reg->enabled) {
    return Unsupported(dev + " is disabled: enable it first");
  }
  DAXSTORE_RETURN_IF_ERROR(CheckNotSystemRam(*reg, *n, "map"));
  MapTarget t;
  t.path = bus->DevicePath(*reg, *n);
  t.options.emulate = bus->state().domain;
  t.options.platform = options_.platform;
  return t;
}

}  // namespace daxstore::ns
