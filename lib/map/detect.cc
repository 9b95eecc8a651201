#include "map/detect.h"

#include <regex>

namespace daxstore::map {

std::string RegionOf(const std::string& resolved) {
  static const std::regex kRegion("^region[0-9]+$");
  std::string found;
  size_t start = 0;
  while (start <= resolved.size()) {
    size_t end = resolved.find('/', start);
    if (end == std::string::npos) end = resolved.size();
    std::string part = resolved.substr(start, end - start);
    if (std::regex_match(part, kRegion)) found = part;
    start = end + 1;
  }
  return found;
}

static Result<uint64_t> ReadNumber(Platform& p, const std::string& rel) {
  DAXSTORE_ASSIGN_OR_RETURN(std::string s, p.ReadSysfs(rel));
  try {
    size_t used = 0;
    uint64_t v = std::stoull(s, &used, 0);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  } catch (const std::exception&) {
    return Corruption(p.sysfs_root() + "/" + rel + " holds '" + s +
                      "', not a number");
  }
}

Result<DeviceDaxFacts> ProbeDeviceDax(Platform& p, uint32_t major,
                                      uint32_t minor) {
  std::string base =
      "dev/char/" + std::to_string(major) + ":" + std::to_string(minor);
  DeviceDaxFacts f;
  auto resolved = p.ResolveSysfs(base);
  if (!resolved.ok()) {
    return NotFound("character device " + std::to_string(major) + ":" +
                    std::to_string(minor) +
                    " is not in sysfs; is it a device-DAX device (is the "
                    "device_dax module loaded)?");
  }
  f.region = RegionOf(*resolved);
  size_t slash = resolved->find_last_of('/');
  f.name = resolved->substr(slash + 1);
  auto size = ReadNumber(p, base + "/size");
  if (!size.ok()) {
    return size.status().WithContext(
        "not a device-DAX device (no size attribute)");
  }
  f.size = *size;
  // Newer kernels put align on the device, older ones on its dax region.
  for (const char* attr : {"/align", "/device/align",
                           "/device/dax_region/align", "/dax_region/align"}) {
    auto a = ReadNumber(p, base + attr);
    if (a.ok() && *a != 0) {
      f.align = *a;
      break;
    }
  }
  if (f.align == 0) f.align = 4096;
  if ((f.align & (f.align - 1)) != 0) {
    return Corruption(f.name + " reports alignment " + std::to_string(f.align) +
                      ", not a power of two");
  }
  return f;
}

std::optional<PersistenceDomain> RegionDomain(Platform& p,
                                              const std::string& region) {
  if (region.empty()) return std::nullopt;
  auto s = p.ReadSysfs("bus/nd/devices/" + region + "/persistence_domain");
  if (!s.ok()) return std::nullopt;
  auto d = ParsePersistenceDomain(*s);
  if (!d.ok()) return std::nullopt;
  return *d;
}

bool AllRegionsCpuCache(Platform& p) {
  auto names = p.ListSysfs("bus/nd/devices");
  if (!names.ok()) return false;
  int regions = 0;
  for (const auto& n : *names) {
    if (n.rfind("region", 0) != 0) continue;
    ++regions;
    auto d = RegionDomain(p, n);
    if (!d || *d != PersistenceDomain::kCpuCache) return false;
  }
  return regions > 0;
}

std::string RegionOfBlockDevice(Platform& p, const std::string& dev_name) {
  auto r = p.ResolveSysfs("class/block/" + dev_name);
  if (!r.ok()) return "";
  return RegionOf(*r);
}

}  // namespace daxstore::map
