#include "ns/emulated.h"

#include <algorithm>

#include "ns/filter.h"
#include "ns/in_use.h"
#include "ns/layout.h"
#include "ns/names.h"

namespace daxstore::ns {

Result<RegionRecord*> LookupRegion(BusState& s, const std::string& name) {
  int id = ParseRegionName(name);
  if (id < 0) {
    return InvalidArgument("invalid region '" + name + "': use e.g. region0");
  }
  RegionRecord* r = FindRegion(s, id);
  if (r == nullptr) return NotFound("no " + RegionName(id) + " on this bus");
  return r;
}

Result<std::pair<RegionRecord*, NsRecord*>> LookupNamespace(
    BusState& s, const std::string& name) {
  int rid, id;
  if (!ParseNamespaceName(name, &rid, &id)) {
    return InvalidArgument("invalid namespace '" + name +
                           "': use e.g. namespace0.0");
  }
  RegionRecord* r = FindRegion(s, rid);
  NsRecord* n = r ? FindNamespace(*r, id) : nullptr;
  if (n == nullptr) return NotFound("no " + NamespaceName(rid, id));
  return std::make_pair(r, n);
}

Status CheckNotSystemRam(const RegionRecord& r, const NsRecord& n,
                         const std::string& action) {
  if (n.mode == NamespaceMode::kDevdax && n.dax_mode == DaxMode::kSystemRam) {
    std::string dax = DaxDevName(r.id, n.id);
    return Busy("cannot " + action + " " + NamespaceName(r.id, n.id) + ": " +
                dax +
                " is online as system-ram; run 'reconfigure-device -f "
                "-m devdax " +
                dax + "' first");
  }
  return Status::Ok();
}

Status CheckNotInUse(LockedBus& bus, const RegionRecord& r, const NsRecord& n,
                     const std::string& action) {
  std::string path = bus.DevicePath(r, n);
  DAXSTORE_ASSIGN_OR_RETURN(bool held,
                            LockedByAnotherOpen(bus.platform(), path));
  if (!held) return Status::Ok();
  return Busy("cannot " + action + " " + NamespaceName(r.id, n.id) + ": " +
              path +
              " is held by an open image or mapping (such as 'daxstore "
              "serve'); stop that process first (-f does not override this)");
}

Status CheckIdle(LockedBus& bus, const RegionRecord& r, const NsRecord& n,
                 const std::string& action) {
  DAXSTORE_RETURN_IF_ERROR(CheckNotSystemRam(r, n, action));
  return CheckNotInUse(bus, r, n, action);
}

Result<std::unique_ptr<LockedBus>> EmulatedBackend::Lock() {
  auto p = options_.platform ? options_.platform : DefaultPlatform();
  return LockedBus::Acquire(std::move(p), options_.dir, crash_point_);
}

Result<std::vector<Bus>> EmulatedBackend::List(const ListFilter& filter) {
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  const BusState& s = bus->state();
  Bus b;
  b.dev = "ndbus0";
  b.provider = "daxstore.emulated";
  for (const auto& d : s.dimms) b.dimms.push_back(ToDimm(d));
  for (const auto& r : s.regions) b.regions.push_back(ToRegion(s, r));
  std::vector<Bus> out{std::move(b)};
  ApplyFilter(filter, out);
  return out;
}

namespace {
// Why a region cannot take a new namespace, or Ok.
Status CanSubdivide(const RegionRecord& r) {
  std::string name = RegionName(r.id);
  if (!r.enabled) {
    return Unsupported(name + " is disabled: run 'enable-region " + name +
                       "' first");
  }
  if (r.label_less) {
    return Unsupported(
        "label-less region cannot be subdivided: reconfigure "
        "with -e (" +
        name +
        " has no label area, like memmap= "
        "pmem; try 'create-namespace -f -e " +
        NamespaceName(r.id, 0) + " -m MODE')");
  }
  if (!r.labels_initialized) {
    return Unsupported(name +
                       "'s label area is not initialised: run "
                       "'disable-region " +
                       name + "', 'init-labels " + name + "', 'enable-region " +
                       name + "'");
  }
  return Status::Ok();
}

int FreeId(const RegionRecord& r) {
  int id = 0;
  while (std::any_of(r.namespaces.begin(), r.namespaces.end(),
                     [&](const NsRecord& n) { return n.id == id; })) {
    ++id;
  }
  return id;
}

Status CheckUsable(const NsRecord& n, const std::string& where) {
  if (UsableBytes(n) > 0) return Status::Ok();
  return NoSpace(SizeArg(n.raw_size) + " in " + where + " is too small for " +
                 std::string(NamespaceModeName(n.mode)) +
                 " metadata at align " + SizeArg(n.align) +
                 ": pick a larger size or a smaller --align");
}
}  // namespace

Result<Namespace> EmulatedBackend::Create(const CreateRequest& request) {
  CreateRequest r = request;
  DAXSTORE_RETURN_IF_ERROR(NormalizeRequest(r));
  DAXSTORE_ASSIGN_OR_RETURN(auto bus, Lock());
  if (!r.reconfigure.empty()) return Reconfigure(*bus, r);
  BusState& s = bus->state();
  for (const auto& reg : s.regions) {
    for (const auto& n : reg.namespaces) {
      if (!n.uuid.empty() && n.uuid == r.uuid) {
        return InvalidArgument("uuid " + r.uuid + " is already used by " +
                               NamespaceName(reg.id, n.id));
      }
    }
  }
  if (!r.region.empty() && r.region != "all") {
    DAXSTORE_ASSIGN_OR_RETURN(RegionRecord * reg, LookupRegion(s, r.region));
    DAXSTORE_RETURN_IF_ERROR(CanSubdivide(*reg));
    return CreateIn(*bus, *reg, r);
  }
  // Like ndctl: the first region that can hold it.
  Status first = NotFound("this bus has no regions");
  for (auto& reg : s.regions) {
    Status st = CanSubdivide(reg);
    if (st.ok()) {
      auto ns = CreateIn(*bus, reg, r);
      if (ns.ok()) return ns;
      st = ns.status();
    }
    if (first.kind() == ErrorKind::kNotFound) first = st;
  }
  return first;
}

Result<Namespace> EmulatedBackend::CreateIn(LockedBus& bus, RegionRecord& reg,
                                            const CreateRequest& r) {
  Region view = ToRegion(bus.state(), reg);
  uint64_t granule = SizeGranule(view, r.align);
  DAXSTORE_ASSIGN_OR_RETURN(uint64_t raw, ResolveSize(view, r.size, granule));
  std::vector<ByteRange> used;
  for (const auto& n : reg.namespaces) used.push_back({n.offset, n.raw_size});
  NsRecord n;
  bool placed = false;
  for (const auto& e : FreeExtents(reg.size, used)) {
    if (e.length >= raw) {
      n.offset = e.offset;
      placed = true;
      break;
    }
  }
  if (!placed) return Internal("no extent for a size ResolveSize accepted");
  n.id = FreeId(reg);
  n.raw_size = raw;
  n.mode = r.mode;
  n.map = r.map.value_or(MapLocation::kDev);
  n.align = r.align;
  n.sector_size = r.sector_size;
  n.uuid = r.uuid.empty() ? NewUuid() : r.uuid;
  n.name = r.name;
  DAXSTORE_RETURN_IF_ERROR(CheckUsable(n, RegionName(reg.id)));
  // The device file exists before the label that names it is published.
  DAXSTORE_RETURN_IF_ERROR(bus.WriteDeviceFile(reg, n, /*wipe=*/true));
  bus.CrashPoint("create:after-device-file");
  reg.namespaces.push_back(n);
  DAXSTORE_RETURN_IF_ERROR(bus.Commit());
  bus.CrashPoint("create:after-publish");
  return ToNamespace(reg, n);
}

Result<Namespace> EmulatedBackend::Reconfigure(LockedBus& bus,
                                               const CreateRequest& r) {
  DAXSTORE_ASSIGN_OR_RETURN(auto found,
                            LookupNamespace(bus.state(), r.reconfigure));
  auto [reg, old] = found;
  std::string dev = NamespaceName(reg->id, old->id);
  if (!r.region.empty() && !MatchesRegion(r.region, RegionName(reg->id))) {
    return InvalidArgument(dev + " is in " + RegionName(reg->id) + ", not " +
                           r.region);
  }
  DAXSTORE_RETURN_IF_ERROR(CheckIdle(bus, *reg, *old, "reconfigure"));
  if (old->enabled && reg->enabled && !r.force) {
    return Busy(dev +
                " is active: pass -f to reconfigure it (its data is "
                "not kept)");
  }
  if (r.size.kind != SizeRequest::Kind::kAll) {
    return InvalidArgument("-e keeps " + dev + "'s size (" +
                           SizeArg(old->raw_size) +
                           "): drop --size, or destroy it and create anew");
  }
  NsRecord n = *old;
  n.mode = r.mode;
  n.map = r.map.value_or(MapLocation::kDev);
  n.align = r.align;
  n.sector_size = r.sector_size;
  n.enabled = true;
  n.dax_mode = DaxMode::kDevdax;
  bool labels = !reg->label_less && reg->labels_initialized;
  if (labels) {
    if (!r.name.empty()) n.name = r.name;
    // A new identity unless the caller gave one (as ndctl does).
    n.uuid = r.uuid.empty() ? NewUuid() : r.uuid;
  } else if (!r.name.empty() || !r.uuid.empty()) {
    return Unsupported(RegionName(reg->id) +
                       " is label-less: it has no "
                       "label to hold a name or uuid");
  }
  DAXSTORE_RETURN_IF_ERROR(CheckUsable(n, dev));
  std::string old_path = bus.DevicePath(*reg, *old);
  DAXSTORE_RETURN_IF_ERROR(bus.WriteDeviceFile(*reg, n, /*wipe=*/true));
  bus.CrashPoint("reconfigure:after-device-file");
  *old = n;
  DAXSTORE_RETURN_IF_ERROR(bus.Commit());
  if (bus.DevicePath(*reg, n) != old_path) {
    DAXSTORE_RETURN_IF_ERROR(bus.RemoveDeviceFile(old_path));
  }
  return ToNamespace(*reg, n);
}

}  // namespace daxstore::ns
