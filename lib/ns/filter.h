// Applies a ListFilter to buses from any backend, and finds objects by the
// names users type ("region0", "0", "namespace0.1", "all").
#pragma once

#include <vector>

#include "daxstore/namespace.h"

namespace daxstore::ns {

void ApplyFilter(const ListFilter& filter, std::vector<Bus>& buses);

bool MatchesRegion(const std::string& want, const std::string& dev);
bool MatchesNamespace(const std::string& want, const std::string& dev);

}  // namespace daxstore::ns
