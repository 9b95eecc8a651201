// JSON for namespace-manager objects, with ndctl's field names, order and
// units, shared by `list` and every command that prints what it created.
#pragma once

#include <nlohmann/json.hpp>

#include "daxstore/namespace.h"

namespace daxstore::cli {

using OrderedJson = nlohmann::ordered_json;

struct JsonFlags {
  bool human = false;    // -u: sizes as "1006.00 MiB (1054.87 MB)", hex ids
  bool verbose = false;  // -v: every field
  bool dax = false;      // -X: devdax namespaces show their daxregion
  bool capabilities = false;
  bool mappings = false;  // regions show their DIMM mappings
};

OrderedJson NamespaceJson(const Namespace& n, const JsonFlags& f);
OrderedJson DaxDeviceJson(const DaxDevice& d, const JsonFlags& f);
// Without namespaces; callers nest them.
OrderedJson RegionJson(const Region& r, const JsonFlags& f);
OrderedJson DimmJson(const Dimm& d, const JsonFlags& f);
OrderedJson BusJson(const Bus& b, const JsonFlags& f);

// Prints like ndctl: a one-element array as its element, nothing for none.
void PrintNdctlJson(const OrderedJson& j);

}  // namespace daxstore::cli
