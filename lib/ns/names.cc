// Every name the kernel and ndctl use for namespace things, in one place:
// mode names (including the kernel's old "memory", "dax" and "safe"), map
// locations, dax modes and device-node names.
#include "ns/names.h"

#include <cctype>

namespace daxstore {

std::string_view NamespaceModeName(NamespaceMode m) {
  switch (m) {
    case NamespaceMode::kFsdax:
      return "fsdax";
    case NamespaceMode::kDevdax:
      return "devdax";
    case NamespaceMode::kSector:
      return "sector";
    case NamespaceMode::kRaw:
      return "raw";
  }
  return "unknown";
}

std::string_view MapLocationName(MapLocation m) {
  return m == MapLocation::kMem ? "mem" : "dev";
}

std::string_view DaxModeName(DaxMode m) {
  return m == DaxMode::kSystemRam ? "system-ram" : "devdax";
}

Result<NamespaceMode> ParseNamespaceMode(std::string_view s) {
  // ndctl before v60 and the kernel's sysfs say "memory" for fsdax, "dax"
  // for devdax and "safe" for sector.
  if (s == "fsdax" || s == "memory") return NamespaceMode::kFsdax;
  if (s == "devdax" || s == "dax") return NamespaceMode::kDevdax;
  if (s == "sector" || s == "safe") return NamespaceMode::kSector;
  if (s == "raw") return NamespaceMode::kRaw;
  return InvalidArgument("unknown mode '" + std::string(s) +
                         "': use fsdax, devdax, sector or raw");
}

Result<MapLocation> ParseMapLocation(std::string_view s) {
  if (s == "mem" || s == "memory") return MapLocation::kMem;
  if (s == "dev") return MapLocation::kDev;
  return InvalidArgument("unknown map location '" + std::string(s) +
                         "': use mem or dev");
}

Result<DaxMode> ParseDaxMode(std::string_view s) {
  if (s == "devdax") return DaxMode::kDevdax;
  if (s == "system-ram" || s == "system_ram") return DaxMode::kSystemRam;
  return InvalidArgument("unknown dax mode '" + std::string(s) +
                         "': use system-ram or devdax");
}

namespace ns {

std::string RegionName(int region) { return "region" + std::to_string(region); }

std::string NamespaceName(int region, int id) {
  return "namespace" + std::to_string(region) + "." + std::to_string(id);
}

std::string BlockDevName(int region, int id, NamespaceMode mode) {
  std::string n = "pmem" + std::to_string(region);
  if (id != 0) n += "." + std::to_string(id);
  if (mode == NamespaceMode::kSector) n += "s";
  return n;
}

std::string DaxDevName(int region, int id) {
  return "dax" + std::to_string(region) + "." + std::to_string(id);
}

namespace {
// Parses "<prefix>N" or plain "N"; -1 when it does not match.
int ParseIndexed(std::string_view s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) == prefix) s.remove_prefix(prefix.size());
  if (s.empty() || s.size() > 6) return -1;
  int v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}
}  // namespace

int ParseRegionName(std::string_view s) { return ParseIndexed(s, "region"); }

bool ParseNamespaceName(std::string_view s, int* region, int* id) {
  if (s.substr(0, 9) == "namespace") s.remove_prefix(9);
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return false;
  int r = ParseIndexed(s.substr(0, dot), "");
  int i = ParseIndexed(s.substr(dot + 1), "");
  if (r < 0 || i < 0) return false;
  *region = r;
  *id = i;
  return true;
}

}  // namespace ns
}  // namespace daxstore
