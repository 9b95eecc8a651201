#include <iostream>

#include "commands.h"
#include "output.h"

namespace daxstore::cli {

void PrintJson(const nlohmann::json& j) {
  EndProgressLine();
  if (Output().quiet) return;
  if (Output().format == OutputFormat::kHuman) {
    std::cout << HumanView(j);
  } else {
    std::cout << j.dump(2) << "\n";
  }
}

nlohmann::json MappingJson(const MappingInfo& info) {
  nlohmann::json j;
  j["path"] = info.path;
  j["kind"] = MappingKindName(info.kind);
  j["granularity"] = GranularityName(info.granularity);
  j["size"] = info.size;
  j["align"] = info.alignment;
  j["map_sync"] = info.map_sync;
  j["read_only"] = info.access == Access::kReadOnly;
  if (info.domain)
    j["persistence_domain"] = PersistenceDomainName(*info.domain);
  if (!info.region.empty()) j["region"] = info.region;
  j["flush"] = info.flush_instruction;
  // tmpfs/ramfs: survives a process crash, not a reboot.
  j["memory_only"] = info.memory_only;
  j["why"] = info.why;
  return j;
}

}  // namespace daxstore::cli
