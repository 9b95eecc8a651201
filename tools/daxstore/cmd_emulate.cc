// daxstore emulate create|show|destroy: the emulated NVDIMM bus.
#include <cstdio>
#include <memory>

#include "bus_select.h"
#include "commands.h"
#include "daxstore/size.h"
#include "ns_json.h"

namespace daxstore::cli {
namespace {

struct EmulateArgs {
  int regions = 1;
  int dimms = 1;
  std::string size = "1G";
  bool label_less = false;
  bool uninitialized = false;
  std::string persistence = "memory_controller";
  bool force = false;
};

// The bus with its DIMMs and regions, as `list -BDR` prints it.
void Show(const BusChoice& choice) {
  auto backend = Must(OpenEmulatedBackend(EmulatedOptionsFor(choice)));
  auto buses = Must(backend->List({.include_idle = true}));
  JsonFlags f{.mappings = true};
  OrderedJson out = BusJson(buses.at(0), f);
  out["emulated_dir"] = choice.emulated_dir;
  out["dimms"] = OrderedJson::array();
  for (const auto& d : buses[0].dimms) out["dimms"].push_back(DimmJson(d, f));
  out["regions"] = OrderedJson::array();
  for (const auto& r : buses[0].regions) {
    out["regions"].push_back(RegionJson(r, f));
  }
  PrintNdctlJson(out);
}

void Create(const CLI::App* cmd, const EmulateArgs& a) {
  BusChoice choice = ReadBusChoice(cmd);
  EmulatedBusConfig c;
  c.regions = a.regions;
  c.dimms_per_region = a.dimms;
  c.region_size = Must(ParseSize(a.size));
  c.label_less = a.label_less;
  c.uninitialized_labels = a.uninitialized;
  c.persistence = Must(ParsePersistenceDomain(a.persistence));
  Must(CreateEmulatedBus(EmulatedOptionsFor(choice), c));
  Show(choice);
}

void Destroy(const CLI::App* cmd, bool force) {
  BusChoice choice = ReadBusChoice(cmd);
  Must(DestroyEmulatedBus(EmulatedOptionsFor(choice), force));
  std::fprintf(stderr, "destroyed the emulated bus in %s\n",
               choice.emulated_dir.c_str());
}

}  // namespace

void AddEmulateCommands(CLI::App& app) {
  AddBusOptions(app);
  auto a = std::make_shared<EmulateArgs>();
  auto* noun = app.add_subcommand("emulate", "the emulated NVDIMM bus")
                   ->require_subcommand(1);
  auto* c = noun->add_subcommand("create", "create an emulated bus");
  c->add_option("--regions", a->regions, "number of regions")
      ->capture_default_str();
  c->add_option("--dimms-per-region", a->dimms, "interleave ways")
      ->capture_default_str();
  c->add_option("--size", a->size, "size of each region")
      ->capture_default_str();
  c->add_flag("--label-less", a->label_less,
              "no label areas: behave like memmap= pmem");
  c->add_flag("--uninitialized-labels", a->uninitialized,
              "label areas not initialised yet (run init-labels first)");
  c->add_option("--persistence", a->persistence,
                "cpu_cache (eADR) or memory_controller (ADR)")
      ->capture_default_str();
  c->callback([c, a] { Create(c, *a); });
  auto* s = noun->add_subcommand("show", "print the emulated bus");
  s->callback([s] { Show(ReadBusChoice(s)); });
  auto* d =
      noun->add_subcommand("destroy", "remove the emulated bus and its data");
  d->add_flag("-f,--force", a->force,
              "even with namespaces enabled or holding data (all lost), or "
              "a device online as system-ram");
  d->callback([d, a] { Destroy(d, a->force); });
}

}  // namespace daxstore::cli
