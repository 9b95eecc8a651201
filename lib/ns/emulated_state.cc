#include "ns/emulated_state.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "ns/layout.h"
#include "ns/names.h"

namespace daxstore::ns {

using nlohmann::json;

namespace {
constexpr int kVersion = 1;

json NsToJson(const NsRecord& n) {
  return {{"id", n.id},
          {"offset", n.offset},
          {"raw_size", n.raw_size},
          {"mode", NamespaceModeName(n.mode)},
          {"map", MapLocationName(n.map)},
          {"align", n.align},
          {"sector_size", n.sector_size},
          {"uuid", n.uuid},
          {"name", n.name},
          {"enabled", n.enabled},
          {"dax_mode", DaxModeName(n.dax_mode)}};
}

// Reads a field, turning any mismatch into a Corruption status.
template <typename T>
Status Get(const json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return Corruption(std::string("bus.json: missing ") + key);
  try {
    *out = it->template get<T>();
  } catch (const json::exception& e) {
    return Corruption(std::string("bus.json: bad ") + key + ": " + e.what());
  }
  return Status::Ok();
}

Result<NsRecord> NsFromJson(const json& j) {
  NsRecord n;
  std::string mode, map, dax_mode;
  DAXSTORE_RETURN_IF_ERROR(Get(j, "id", &n.id));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "offset", &n.offset));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "raw_size", &n.raw_size));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "mode", &mode));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "map", &map));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "align", &n.align));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "sector_size", &n.sector_size));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "uuid", &n.uuid));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "name", &n.name));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "enabled", &n.enabled));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "dax_mode", &dax_mode));
  auto m = ParseNamespaceMode(mode);
  auto l = ParseMapLocation(map);
  auto d = ParseDaxMode(dax_mode);
  if (!m.ok() || !l.ok() || !d.ok()) return Corruption("bus.json: bad mode");
  n.mode = *m;
  n.map = *l;
  n.dax_mode = *d;
  return n;
}
}  // namespace

std::string SerializeState(const BusState& s) {
  json j;
  j["version"] = kVersion;
  j["persistence_domain"] = PersistenceDomainName(s.domain);
  j["dimms"] = json::array();
  for (const auto& d : s.dimms) {
    j["dimms"].push_back(
        {{"id", d.id}, {"size", d.size}, {"label_area", d.label_area}});
  }
  j["regions"] = json::array();
  for (const auto& r : s.regions) {
    json jr = {{"id", r.id},
               {"size", r.size},
               {"align", r.align},
               {"iset_id", r.iset_id},
               {"numa_node", r.numa_node},
               {"dimms", r.dimms},
               {"label_less", r.label_less},
               {"labels_initialized", r.labels_initialized},
               {"enabled", r.enabled},
               {"badblocks", json::array()},
               {"namespaces", json::array()}};
    for (const auto& b : r.badblocks) {
      jr["badblocks"].push_back({b.offset, b.length});
    }
    for (const auto& n : r.namespaces) jr["namespaces"].push_back(NsToJson(n));
    j["regions"].push_back(std::move(jr));
  }
  return j.dump(1) + "\n";
}

Result<BusState> ParseState(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Corruption("bus.json is not valid JSON");
  }
  int version = 0;
  DAXSTORE_RETURN_IF_ERROR(Get(j, "version", &version));
  if (version != kVersion) {
    return Unsupported("bus.json has version " + std::to_string(version) +
                       "; this daxstore reads version " +
                       std::to_string(kVersion));
  }
  BusState s;
  std::string domain;
  DAXSTORE_RETURN_IF_ERROR(Get(j, "persistence_domain", &domain));
  auto d = ParsePersistenceDomain(domain);
  if (!d.ok()) return Corruption("bus.json: " + d.status().message());
  s.domain = *d;
  json dimms, regions;
  DAXSTORE_RETURN_IF_ERROR(Get(j, "dimms", &dimms));
  DAXSTORE_RETURN_IF_ERROR(Get(j, "regions", &regions));
  for (const auto& jd : dimms) {
    DimmRecord dr;
    DAXSTORE_RETURN_IF_ERROR(Get(jd, "id", &dr.id));
    DAXSTORE_RETURN_IF_ERROR(Get(jd, "size", &dr.size));
    DAXSTORE_RETURN_IF_ERROR(Get(jd, "label_area", &dr.label_area));
    s.dimms.push_back(dr);
  }
  for (const auto& jr : regions) {
    RegionRecord r;
    json bad, nss;
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "id", &r.id));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "size", &r.size));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "align", &r.align));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "iset_id", &r.iset_id));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "numa_node", &r.numa_node));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "dimms", &r.dimms));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "label_less", &r.label_less));
    DAXSTORE_RETURN_IF_ERROR(
        Get(jr, "labels_initialized", &r.labels_initialized));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "enabled", &r.enabled));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "badblocks", &bad));
    DAXSTORE_RETURN_IF_ERROR(Get(jr, "namespaces", &nss));
    for (const auto& b : bad) {
      ByteRange br;
      if (!b.is_array() || b.size() != 2)
        return Corruption("bus.json: badblock");
      br.offset = b[0].get<uint64_t>();
      br.length = b[1].get<uint64_t>();
      r.badblocks.push_back(br);
    }
    for (const auto& jn : nss) {
      DAXSTORE_ASSIGN_OR_RETURN(NsRecord n, NsFromJson(jn));
      r.namespaces.push_back(std::move(n));
    }
    s.regions.push_back(std::move(r));
  }
  return s;
}

std::string DeviceFileName(const RegionRecord& r, const NsRecord& n) {
  if (n.mode == NamespaceMode::kDevdax) return DaxDevName(r.id, n.id);
  return BlockDevName(r.id, n.id, n.mode);
}

uint64_t UsableBytes(const NsRecord& n) {
  return UsableSize(n.mode, n.map, n.raw_size, n.align, n.sector_size);
}

NsRecord WholeRegionNamespace(const RegionRecord& r, NamespaceMode mode,
                              MapLocation map) {
  NsRecord n;
  n.id = 0;
  n.offset = 0;
  n.raw_size = r.size;
  n.mode = mode;
  n.map = map;
  n.align = DefaultAlign(mode);
  n.sector_size = DefaultSectorSize(mode);
  return n;
}

Namespace ToNamespace(const RegionRecord& r, const NsRecord& n) {
  Namespace ns;
  ns.dev = NamespaceName(r.id, n.id);
  ns.region = RegionName(r.id);
  ns.mode = n.mode;
  if (n.mode == NamespaceMode::kFsdax || n.mode == NamespaceMode::kDevdax) {
    ns.map = n.map;
    ns.align = n.align;
  }
  ns.size = UsableBytes(n);
  ns.raw_size = n.raw_size;
  ns.uuid = n.uuid;
  ns.name = n.name;
  ns.sector_size = n.mode == NamespaceMode::kDevdax ? 0 : n.sector_size;
  ns.enabled = n.enabled && r.enabled;
  ns.numa_node = r.numa_node;
  if (n.mode == NamespaceMode::kDevdax) {
    DaxRegion dr;
    dr.id = r.id;
    dr.size = ns.size;
    dr.align = n.align;
    dr.devices.push_back(
        {DaxDevName(r.id, n.id), ns.size, n.align, n.dax_mode, r.numa_node});
    ns.dax_region = std::move(dr);
  } else {
    ns.blockdev = BlockDevName(r.id, n.id, n.mode);
  }
  return ns;
}

Region ToRegion(const BusState& s, const RegionRecord& r) {
  Region g;
  g.dev = RegionName(r.id);
  g.bus = "ndbus0";
  g.size = r.size;
  g.align = r.align;
  g.iset_id = r.iset_id;
  g.numa_node = r.numa_node;
  g.persistence_domain = s.domain;
  g.enabled = r.enabled;
  g.label_less = r.label_less;
  g.labels_uninitialized = !r.label_less && !r.labels_initialized;
  g.badblocks = r.badblocks;
  uint64_t per_dimm = r.size / (r.dimms.empty() ? 1 : r.dimms.size());
  for (size_t i = 0; i < r.dimms.size(); ++i) {
    g.mappings.push_back({"nmem" + std::to_string(r.dimms[i]), 0, per_dimm,
                          static_cast<int>(i)});
  }
  g.capabilities = Capabilities();
  std::vector<ByteRange> used;
  for (const auto& n : r.namespaces) {
    used.push_back({n.offset, n.raw_size});
    g.namespaces.push_back(ToNamespace(r, n));
  }
  // Label-less and uninitialised regions offer nothing to create.
  if (!r.label_less && r.labels_initialized) {
    for (const auto& e : FreeExtents(r.size, used)) {
      g.available_size += e.length;
      g.max_available_extent = std::max(g.max_available_extent, e.length);
    }
  }
  return g;
}

Dimm ToDimm(const DimmRecord& d) {
  Dimm m;
  m.dev = "nmem" + std::to_string(d.id);
  char id[32];
  std::snprintf(id, sizeof id, "dxs0-%08x", 0x1000 + d.id);
  m.id = id;
  m.handle = static_cast<uint32_t>(d.id);
  m.phys_id = static_cast<uint32_t>(d.id);
  m.size = d.size;
  m.label_area = d.label_area;
  return m;
}

RegionRecord* FindRegion(BusState& s, int id) {
  for (auto& r : s.regions) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

NsRecord* FindNamespace(RegionRecord& r, int id) {
  for (auto& n : r.namespaces) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

}  // namespace daxstore::ns
