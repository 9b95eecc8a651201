// daxstore list: ndctl list's options and JSON over either bus, or a table
// with --table.
#include <cstdio>
#include <iostream>
#include <memory>

#include "bus_select.h"
#include "commands.h"
#include "daxstore/size.h"
#include "ns_json.h"

namespace daxstore::cli {
namespace {

struct ListArgs {
  bool buses = false, regions = false, namespaces = false, dimms = false;
  bool dax = false, idle = false, human_units = false;
  int verbose = 0;  // -v, -vv, -vvv
  bool capabilities = false, table = false;
  std::string region, ns, mode, bus;
};

// Nests what was asked for the way ndctl does: buses hold dimms and
// regions, regions hold namespaces.
OrderedJson Nest(const std::vector<Bus>& buses, const ListArgs& a,
                 const JsonFlags& f) {
  auto regions_of = [&](const Bus& b, OrderedJson& into) {
    for (const auto& r : b.regions) {
      if (a.regions) {
        OrderedJson rj = RegionJson(r, f);
        if (a.namespaces) {
          OrderedJson ns = OrderedJson::array();
          for (const auto& n : r.namespaces) ns.push_back(NamespaceJson(n, f));
          if (!ns.empty()) rj["namespaces"] = std::move(ns);
        }
        into["regions"].push_back(std::move(rj));
      } else if (a.namespaces) {
        for (const auto& n : r.namespaces) {
          into["namespaces"].push_back(NamespaceJson(n, f));
        }
      }
    }
  };
  auto body_of = [&](const Bus& b, OrderedJson& into) {
    if (a.dimms) {
      into["dimms"] = OrderedJson::array();
      for (const auto& d : b.dimms) into["dimms"].push_back(DimmJson(d, f));
    }
    if (a.regions) into["regions"] = OrderedJson::array();
    if (a.namespaces && !a.regions) into["namespaces"] = OrderedJson::array();
    regions_of(b, into);
  };
  if (a.buses) {
    OrderedJson out = OrderedJson::array();
    for (const auto& b : buses) {
      OrderedJson bj = BusJson(b, f);
      body_of(b, bj);
      out.push_back(std::move(bj));
    }
    return out;
  }
  OrderedJson all = OrderedJson::object();
  for (const auto& b : buses) body_of(b, all);
  // One kind of object: a plain array, as ndctl prints it.
  if (all.size() == 1) return all.begin().value();
  return all;
}

void PrintTable(const std::vector<Bus>& buses, const ListArgs& a) {
  for (const auto& b : buses) {
    if (a.regions) {
      std::printf("%-10s %12s %12s %14s %4s %-18s %s\n", "REGION", "SIZE",
                  "AVAILABLE", "LARGEST-EXTENT", "WAYS", "DOMAIN", "STATE");
      for (const auto& r : b.regions) {
        std::printf(
            "%-10s %12s %12s %14s %4d %-18s %s%s\n", r.dev.c_str(),
            FormatSizeHuman(r.size).c_str(),
            FormatSizeHuman(r.available_size).c_str(),
            FormatSizeHuman(r.max_available_extent).c_str(),
            r.interleave_ways(),
            r.persistence_domain
                ? std::string(PersistenceDomainName(*r.persistence_domain))
                      .c_str()
                : "-",
            r.enabled ? "enabled" : "disabled",
            r.label_less ? " label-less" : "");
      }
    }
    if (a.namespaces) {
      std::printf("%-14s %-7s %-4s %12s %-9s %-8s %s\n", "NAMESPACE", "MODE",
                  "MAP", "SIZE", "DEVICE", "STATE", "NAME");
      for (const auto& r : b.regions) {
        for (const auto& n : r.namespaces) {
          std::string dev = n.blockdev;
          if (n.dax_region && !n.dax_region->devices.empty()) {
            dev = n.dax_region->devices[0].chardev;
            if (n.dax_region->devices[0].mode == DaxMode::kSystemRam) {
              dev += "(ram)";
            }
          }
          std::printf(
              "%-14s %-7s %-4s %12s %-9s %-8s %s\n", n.dev.c_str(),
              std::string(NamespaceModeName(n.mode)).c_str(),
              n.map ? std::string(MapLocationName(*n.map)).c_str() : "-",
              FormatSizeHuman(n.size).c_str(), dev.c_str(),
              n.enabled ? "enabled" : "disabled", n.name.c_str());
        }
      }
    }
  }
}

void List(const CLI::App* cmd, ListArgs a) {
  // As ndctl: -vv adds buses, DIMMs, regions and namespaces; -vvv also the
  // idle ones and the regions' capabilities.
  if (a.verbose >= 2) a.buses = a.dimms = a.regions = a.namespaces = true;
  if (a.verbose >= 3) a.idle = a.capabilities = true;
  if (!a.buses && !a.regions && !a.namespaces && !a.dimms) a.namespaces = true;
  ListFilter filter;
  filter.bus = a.bus;
  filter.region = a.region;
  filter.ns = a.ns;
  filter.include_idle = a.idle;
  if (!a.mode.empty()) filter.mode = Must(ParseNamespaceMode(a.mode));
  auto backend = OpenBackend(ReadBusChoice(cmd));
  auto buses = Must(backend->List(filter));
  if (a.table) {
    PrintTable(buses, a);
    return;
  }
  JsonFlags f;
  f.human = a.human_units;
  f.verbose = a.verbose >= 1;
  f.dax = a.dax;
  f.capabilities = a.capabilities;
  f.mappings = a.dimms && a.regions;
  PrintNdctlJson(Nest(buses, a, f));
}

}  // namespace

void AddListCommands(CLI::App& app) {
  AddBusOptions(app);
  auto a = std::make_shared<ListArgs>();
  auto* c = app.add_subcommand("list",
                               "list buses, regions, DIMMs and "
                               "namespaces as ndctl-compatible JSON");
  c->add_flag("-B,--buses", a->buses, "include buses");
  c->add_flag("-R,--regions", a->regions, "include regions");
  c->add_flag("-N,--namespaces", a->namespaces, "include namespaces");
  c->add_flag("-D,--dimms", a->dimms, "include DIMMs");
  c->add_flag("-X,--device-dax", a->dax, "include device-dax details");
  c->add_flag("-C,--capabilities", a->capabilities,
              "include region capabilities");
  c->add_flag("-i,--idle", a->idle, "include disabled devices");
  c->add_flag("-u,--human", a->human_units,
              "human units: sizes as \"1006.00 MiB (1054.87 MB)\", DIMM "
              "handles and ids in hex");
  c->add_flag("-v,--verbose", a->verbose,
              "-v every field; -vv also buses, DIMMs and regions; -vvv also "
              "idle devices and capabilities");
  c->add_option("-b,--bus-filter", a->bus, "only this bus");
  c->add_option("-r,--region", a->region, "only this region");
  c->add_option("-n,--namespace", a->ns, "only this namespace");
  c->add_option("-m,--mode", a->mode, "only namespaces in this mode");
  c->add_flag("--table", a->table, "a table for people instead of JSON");
  c->callback([c, a] { List(c, *a); });
}

}  // namespace daxstore::cli
