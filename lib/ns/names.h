// Device and object names ("region0", "namespace0.1", "pmem0.1s",
// "dax0.1") and their parsing. The mode-name quirks are in names.cc too.
#pragma once

#include <string>
#include <string_view>

#include "daxstore/namespace.h"

namespace daxstore::ns {

std::string RegionName(int region);
std::string NamespaceName(int region, int id);
// The block device of a namespace: pmemR, pmemR.I, with "s" for sector.
std::string BlockDevName(int region, int id, NamespaceMode mode);
std::string DaxDevName(int region, int id);

// "region3" or "3" -> 3; -1 if malformed.
int ParseRegionName(std::string_view s);
// "namespace0.1" or "0.1" -> (0, 1); false if malformed.
bool ParseNamespaceName(std::string_view s, int* region, int* id);

}  // namespace daxstore::ns
