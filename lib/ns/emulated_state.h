// The emulated bus's persistent state (bus.json) and its translation into
// the public model. Pure data: no file access here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daxstore/namespace.h"

namespace daxstore::ns {

// One namespace label.
struct NsRecord {
  int id = 0;
  uint64_t offset = 0;    // into the region
  uint64_t raw_size = 0;  // bytes taken from the region
  NamespaceMode mode = NamespaceMode::kRaw;
  MapLocation map = MapLocation::kDev;
  uint64_t align = 0;
  uint32_t sector_size = 512;
  std::string uuid;  // "" for label-less
  std::string name;
  bool enabled = true;
  DaxMode dax_mode = DaxMode::kDevdax;
};

struct RegionRecord {
  int id = 0;
  uint64_t size = 0;
  uint64_t align = 0;
  uint64_t iset_id = 0;
  int numa_node = 0;
  std::vector<int> dimms;
  bool label_less = false;
  bool labels_initialized = true;
  bool enabled = true;
  std::vector<ByteRange> badblocks;
  std::vector<NsRecord> namespaces;
};

struct DimmRecord {
  int id = 0;
  uint64_t size = 0;
  bool label_area = true;
};

struct BusState {
  PersistenceDomain domain = PersistenceDomain::kMemoryController;
  std::vector<DimmRecord> dimms;
  std::vector<RegionRecord> regions;
};

std::string SerializeState(const BusState& s);
Result<BusState> ParseState(const std::string& text);

// The device file of a namespace inside its region directory: "pmem0",
// "pmem0.1s" or "dax0.1".
std::string DeviceFileName(const RegionRecord& r, const NsRecord& n);
uint64_t UsableBytes(const NsRecord& n);
// A label-less (or uninitialised) region's one namespace, spanning it.
NsRecord WholeRegionNamespace(const RegionRecord& r, NamespaceMode mode,
                              MapLocation map);

Region ToRegion(const BusState& s, const RegionRecord& r);
Namespace ToNamespace(const RegionRecord& r, const NsRecord& n);
Dimm ToDimm(const DimmRecord& d);

RegionRecord* FindRegion(BusState& s, int id);
NsRecord* FindNamespace(RegionRecord& r, int id);

}  // namespace daxstore::ns
