#include "ns_json.h"

#include <cstdio>
#include <iostream>

#include "daxstore/size.h"

namespace daxstore::cli {

namespace {

// "X.YY UNIT" with UNIT = 1 << shift or a power of ten, rounded half up.
std::string Centi(uint64_t bytes, uint64_t unit, const char* name) {
  const unsigned __int128 centi =
      (static_cast<unsigned __int128>(bytes) * 200 / unit + 1) / 2;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%llu.%02llu %s",
                static_cast<unsigned long long>(centi / 100),
                static_cast<unsigned long long>(centi % 100), name);
  return buf;
}

// ndctl's -u: below 5000 KiB the number itself, else the binary size and,
// in parentheses, the decimal one ("1006.00 MiB (1054.87 MB)"), in MiB
// below 2 GiB, GiB below 2 TiB, else TiB.
OrderedJson Size(uint64_t bytes, const JsonFlags& f) {
  if (!f.human || bytes < 5000ull * 1024) return bytes;
  if (bytes < (2ull << 30)) {
    return Centi(bytes, 1ull << 20, "MiB") + " (" +
           Centi(bytes, 1000000ull, "MB") + ")";
  }
  if (bytes < (2ull << 40)) {
    return Centi(bytes, 1ull << 30, "GiB") + " (" +
           Centi(bytes, 1000000000ull, "GB") + ")";
  }
  return Centi(bytes, 1ull << 40, "TiB") + " (" +
         Centi(bytes, 1000000000000ull, "TB") + ")";
}

// ndctl's -u prints DIMM handles and physical ids in hex.
OrderedJson Id(uint64_t v, const JsonFlags& f) {
  if (!f.human) return v;
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

OrderedJson DaxDeviceJson(const DaxDevice& d, const JsonFlags& f) {
  OrderedJson j;
  j["chardev"] = d.chardev;
  j["size"] = Size(d.size, f);
  j["target_node"] = d.target_node;
  j["align"] = d.align;
  j["mode"] = std::string(DaxModeName(d.mode));
  return j;
}

OrderedJson NamespaceJson(const Namespace& n, const JsonFlags& f) {
  OrderedJson j;
  j["dev"] = n.dev;
  j["mode"] = std::string(NamespaceModeName(n.mode));
  if (n.map) j["map"] = std::string(MapLocationName(*n.map));
  j["size"] = Size(n.size, f);
  if (!n.uuid.empty()) j["uuid"] = n.uuid;
  if (f.verbose) j["raw_size"] = Size(n.raw_size, f);
  if (n.sector_size != 0) j["sector_size"] = n.sector_size;
  if (n.mode != NamespaceMode::kDevdax && n.align != 0) j["align"] = n.align;
  if (!n.blockdev.empty()) j["blockdev"] = n.blockdev;
  if (n.dax_region) {
    if (f.dax) {
      OrderedJson r;
      r["id"] = n.dax_region->id;
      r["size"] = Size(n.dax_region->size, f);
      r["align"] = n.dax_region->align;
      r["devices"] = OrderedJson::array();
      for (const auto& d : n.dax_region->devices) {
        r["devices"].push_back(DaxDeviceJson(d, f));
      }
      j["daxregion"] = std::move(r);
    } else if (!n.dax_region->devices.empty()) {
      const auto& d = n.dax_region->devices.front();
      j["chardev"] = d.chardev;
      j["align"] = d.align;
      if (d.mode == DaxMode::kSystemRam) j["dax_mode"] = "system-ram";
    }
  }
  if (!n.name.empty()) j["name"] = n.name;
  if (!n.mounted_at.empty()) j["mounted_at"] = n.mounted_at;
  if (!n.enabled) j["state"] = "disabled";
  if (f.verbose) j["numa_node"] = n.numa_node;
  return j;
}

OrderedJson RegionJson(const Region& r, const JsonFlags& f) {
  OrderedJson j;
  j["dev"] = r.dev;
  j["size"] = Size(r.size, f);
  j["align"] = r.align;
  j["available_size"] = Size(r.available_size, f);
  j["max_available_extent"] = Size(r.max_available_extent, f);
  j["type"] = r.type;
  if (r.iset_id != 0) j["iset_id"] = static_cast<int64_t>(r.iset_id);
  j["numa_node"] = r.numa_node;
  if (f.mappings || f.verbose) {
    j["mappings"] = OrderedJson::array();
    for (const auto& m : r.mappings) {
      j["mappings"].push_back({{"dimm", m.dimm},
                               {"offset", m.offset},
                               {"length", m.length},
                               {"position", m.position}});
    }
  }
  if (f.capabilities || f.verbose) {
    j["capabilities"] = OrderedJson::array();
    for (const auto& c : r.capabilities) {
      OrderedJson cj;
      cj["mode"] = std::string(NamespaceModeName(c.mode));
      if (!c.alignments.empty()) cj["alignments"] = c.alignments;
      if (!c.sector_sizes.empty()) cj["sector_sizes"] = c.sector_sizes;
      j["capabilities"].push_back(std::move(cj));
    }
  }
  if (r.persistence_domain) {
    j["persistence_domain"] =
        std::string(PersistenceDomainName(*r.persistence_domain));
  }
  if (!r.badblocks.empty()) {
    uint64_t sectors = 0;
    for (const auto& b : r.badblocks) sectors += (b.length + 511) / 512;
    j["badblock_count"] = sectors;
  }
  if (r.label_less) j["label_less"] = true;  // not in ndctl; says why -e
  if (r.labels_uninitialized) j["labels"] = "uninitialized";
  if (!r.enabled) j["state"] = "disabled";
  return j;
}

OrderedJson DimmJson(const Dimm& d, const JsonFlags& f) {
  OrderedJson j;
  j["dev"] = d.dev;
  j["id"] = d.id;
  j["handle"] = Id(d.handle, f);
  j["phys_id"] = Id(d.phys_id, f);
  if (f.verbose) j["size"] = Size(d.size, f);
  if (!d.label_area) j["flag_no_labels"] = true;
  if (!d.enabled) j["state"] = "disabled";
  return j;
}

OrderedJson BusJson(const Bus& b, const JsonFlags& f) {
  OrderedJson j;
  j["provider"] = b.provider;
  j["dev"] = b.dev;
  j["scrub_state"] = "idle";
  return j;
}

void PrintNdctlJson(const OrderedJson& j) {
  if (j.is_array() && j.empty()) return;
  const OrderedJson& out = j.is_array() && j.size() == 1 ? j[0] : j;
  std::cout << out.dump(2) << "\n";
}

}  // namespace daxstore::cli
