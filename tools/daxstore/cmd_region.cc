// Region verbs: enable-region, disable-region, init-labels.
#include <cstdio>
#include <memory>

#include "bus_select.h"
#include "commands.h"

namespace daxstore::cli {
namespace {

std::vector<std::string> Regions(NamespaceBackend& b, const std::string& r) {
  if (r != "all") return {r};
  std::vector<std::string> out;
  for (const auto& bus : Must(b.List({.include_idle = true}))) {
    for (const auto& reg : bus.regions) out.push_back(reg.dev);
  }
  return out;
}

void Toggle(const CLI::App* cmd, const std::string& region, bool enable) {
  auto backend = OpenBackend(ReadBusChoice(cmd));
  int n = 0;
  for (const auto& r : Regions(*backend, region)) {
    Must(enable ? backend->EnableRegion(r) : backend->DisableRegion(r));
    ++n;
  }
  std::fprintf(stderr, "%s %d region%s\n", enable ? "enabled" : "disabled", n,
               n == 1 ? "" : "s");
}

void InitLabels(const CLI::App* cmd, const std::string& region, bool force) {
  auto backend = OpenBackend(ReadBusChoice(cmd));
  int dimms = Must(backend->InitLabels(region, force));
  std::fprintf(stderr, "initialized %d nmem%s\n", dimms, dimms == 1 ? "" : "s");
}

}  // namespace

void AddRegionCommands(CLI::App& app) {
  AddBusOptions(app);
  for (bool enable : {true, false}) {
    auto region = std::make_shared<std::string>();
    auto* c =
        app.add_subcommand(enable ? "enable-region" : "disable-region",
                           enable ? "enable a region" : "disable a region");
    c->add_option("region", *region, "regionX or all")->required();
    c->callback([c, region, enable] { Toggle(c, *region, enable); });
  }
  auto region = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);
  auto* c = app.add_subcommand(
      "init-labels", "initialise the label areas of a region's DIMMs");
  c->add_option("region", *region, "regionX or all")->required();
  c->add_flag("-f,--force", *force,
              "even if the region is enabled (its namespaces are lost)");
  c->callback([c, region, force] { InitLabels(c, *region, *force); });
}

}  // namespace daxstore::cli
