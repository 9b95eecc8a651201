#include "daxstore/mapping.h"

namespace daxstore {

std::string_view GranularityName(Granularity g) {
  switch (g) {
    case Granularity::kByte:
      return "byte";
    case Granularity::kCacheLine:
      return "cache-line";
    case Granularity::kPage:
      return "page";
  }
  return "unknown";
}

std::string_view MappingKindName(MappingKind k) {
  switch (k) {
    case MappingKind::kDaxFile:
      return "fsdax";
    case MappingKind::kDeviceDax:
      return "devdax";
    case MappingKind::kPageCacheFile:
      return "page-cache";
    case MappingKind::kEmulated:
      return "emulated";
    case MappingKind::kSimulated:
      return "simulated";
  }
  return "unknown";
}

std::string_view PersistenceDomainName(PersistenceDomain d) {
  switch (d) {
    case PersistenceDomain::kCpuCache:
      return "cpu_cache";
    case PersistenceDomain::kMemoryController:
      return "memory_controller";
  }
  return "unknown";
}

Result<Granularity> ParseGranularity(std::string_view s) {
  if (s == "byte") return Granularity::kByte;
  if (s == "cache-line" || s == "cacheline" || s == "cache_line") {
    return Granularity::kCacheLine;
  }
  if (s == "page") return Granularity::kPage;
  return InvalidArgument("unknown granularity '" + std::string(s) +
                         "': use byte, cache-line or page");
}

Result<PersistenceDomain> ParsePersistenceDomain(std::string_view s) {
  if (s == "cpu_cache") return PersistenceDomain::kCpuCache;
  if (s == "memory_controller") return PersistenceDomain::kMemoryController;
  return InvalidArgument("unknown persistence domain '" + std::string(s) +
                         "': use cpu_cache or memory_controller");
}

}  // namespace daxstore
