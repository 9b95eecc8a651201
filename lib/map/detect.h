// Reading the facts that decide a mapping's granularity, through Platform.
// Pure functions of the (possibly fake) sysfs tree: the unit tests drive them
// with fake trees.
#pragma once

#include <optional>
#include <string>

#include "daxstore/mapping.h"
#include "daxstore/platform.h"

namespace daxstore::map {

struct DeviceDaxFacts {
  std::string name;    // "dax0.0"
  std::string region;  // "region0", empty if not found
  uint64_t size = 0;
  uint64_t align = 0;  // mapping alignment the device requires
};

// Reads /sys/dev/char/MAJ:MIN: size, alignment and the owning region.
Result<DeviceDaxFacts> ProbeDeviceDax(Platform& p, uint32_t major,
                                      uint32_t minor);

// The region a sysfs path (relative to the root) lives under, e.g.
// "/devices/.../ndbus0/region1/dax1.0/dax1.0" -> "region1".
std::string RegionOf(const std::string& resolved_path);

// regionN/persistence_domain, if the kernel reports one.
std::optional<PersistenceDomain> RegionDomain(Platform& p,
                                              const std::string& region);

// True when every nd region reports cpu_cache (eADR): then stores are
// durable once fenced. False when there are no regions.
bool AllRegionsCpuCache(Platform& p);

// The region behind a block device node name such as "pmem0" or "pmem0s".
std::string RegionOfBlockDevice(Platform& p, const std::string& dev_name);

}  // namespace daxstore::map
