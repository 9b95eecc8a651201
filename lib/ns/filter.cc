#include "ns/filter.h"

#include <algorithm>

#include "ns/names.h"

namespace daxstore::ns {

bool MatchesRegion(const std::string& want, const std::string& dev) {
  if (want.empty() || want == "all") return true;
  int a = ParseRegionName(want), b = ParseRegionName(dev);
  return a >= 0 && a == b;
}

bool MatchesNamespace(const std::string& want, const std::string& dev) {
  if (want.empty() || want == "all") return true;
  int r1, i1, r2, i2;
  return ParseNamespaceName(want, &r1, &i1) &&
         ParseNamespaceName(dev, &r2, &i2) && r1 == r2 && i1 == i2;
}

void ApplyFilter(const ListFilter& f, std::vector<Bus>& buses) {
  std::erase_if(buses, [&](const Bus& b) {
    return !f.bus.empty() && f.bus != "all" && f.bus != b.dev &&
           f.bus != b.provider;
  });
  for (auto& b : buses) {
    std::erase_if(b.regions, [&](const Region& r) {
      return !MatchesRegion(f.region, r.dev) || (!f.include_idle && !r.enabled);
    });
    for (auto& r : b.regions) {
      std::erase_if(r.namespaces, [&](const Namespace& n) {
        return !MatchesNamespace(f.ns, n.dev) ||
               (f.mode && n.mode != *f.mode) || (!f.include_idle && !n.enabled);
      });
    }
  }
}

}  // namespace daxstore::ns
