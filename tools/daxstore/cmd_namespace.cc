// Namespace verbs, as ndctl and daxctl spell them: create-namespace,
// destroy-namespace, enable-namespace, disable-namespace and
// reconfigure-device.
#include <cstdio>
#include <memory>

#include "bus_select.h"
#include "commands.h"
#include "daxstore/size.h"
#include "ns_json.h"

namespace daxstore::cli {
namespace {

struct CreateArgs {
  std::string region, mode = "fsdax", size, align, map, name, uuid, reconfig;
  uint32_t sector_size = 0;
  bool force = false;
};

void CreateNamespace(const CLI::App* cmd, const CreateArgs& a) {
  CreateRequest r;
  r.region = a.region;
  r.mode = Must(ParseNamespaceMode(a.mode));
  r.size = Must(ParseSizeRequest(a.size));
  if (!a.align.empty()) r.align = Must(ParseSize(a.align));
  if (!a.map.empty()) r.map = Must(ParseMapLocation(a.map));
  r.sector_size = a.sector_size;
  r.name = a.name;
  r.uuid = a.uuid;
  r.reconfigure = a.reconfig;
  r.force = a.force;
  auto backend = OpenBackend(ReadBusChoice(cmd));
  Namespace n = Must(backend->Create(r));
  // Like ndctl create-namespace: human sizes and the dax region.
  PrintNdctlJson(NamespaceJson(n, {.human = true, .dax = true}));
}

// Namespace names a verb applies to: one, or every one for "all".
std::vector<std::string> Targets(NamespaceBackend& b, const std::string& ns,
                                 bool idle) {
  if (ns != "all") return {ns};
  std::vector<std::string> out;
  for (const auto& bus : Must(b.List({.include_idle = idle}))) {
    for (const auto& r : bus.regions) {
      for (const auto& n : r.namespaces) out.push_back(n.dev);
    }
  }
  return out;
}

enum class Verb { kDestroy, kEnable, kDisable };

void NamespaceVerb(const CLI::App* cmd, Verb verb, const std::string& ns,
                   bool force) {
  auto backend = OpenBackend(ReadBusChoice(cmd));
  int done = 0;
  for (const auto& dev : Targets(*backend, ns, true)) {
    Status st;
    switch (verb) {
      case Verb::kDestroy:
        st = backend->Destroy(dev, force);
        break;
      case Verb::kEnable:
        st = backend->EnableNamespace(dev);
        break;
      case Verb::kDisable:
        st = backend->DisableNamespace(dev);
        break;
    }
    Must(st);
    ++done;
  }
  static constexpr const char* kDone[] = {"destroyed", "enabled", "disabled"};
  std::fprintf(stderr, "%s %d namespace%s\n", kDone[static_cast<int>(verb)],
               done, done == 1 ? "" : "s");
}

struct DeviceArgs {
  std::string dev, mode;
  bool force = false;
};

void ReconfigureDevice(const CLI::App* cmd, const DeviceArgs& a) {
  if (a.mode.empty()) {
    Must(InvalidArgument("reconfigure-device needs -m system-ram or devdax"));
  }
  DaxMode mode = Must(ParseDaxMode(a.mode));
  auto backend = OpenBackend(ReadBusChoice(cmd));
  DaxDevice d = Must(backend->ReconfigureDevice(a.dev, mode, a.force));
  OrderedJson out = OrderedJson::array();
  out.push_back(DaxDeviceJson(d, {}));
  std::printf("%s\n", out.dump(2).c_str());  // daxctl prints an array
  std::fprintf(stderr, "reconfigured 1 device\n");
}

}  // namespace

void AddNamespaceCommands(CLI::App& app) {
  AddBusOptions(app);
  auto a = std::make_shared<CreateArgs>();
  auto* c = app.add_subcommand("create-namespace",
                               "create a namespace (or -e: reconfigure one)");
  c->add_option("-r,--region", a->region, "region to create it in");
  c->add_option("-m,--mode", a->mode, "fsdax, devdax, sector or raw")
      ->capture_default_str();
  c->add_option("-s,--size", a->size,
                "size (4G, 1536M, 50% of available; default: all)");
  c->add_option("-a,--align", a->align, "page-map alignment: 4K, 2M, 1G");
  c->add_option("-M,--map", a->map, "where page metadata lives: mem or dev");
  c->add_option("-l,--sector-size", a->sector_size, "logical sector size");
  c->add_option("-n,--name", a->name, "name (at most 63 bytes)");
  c->add_option("-u,--uuid", a->uuid, "uuid (default: a new one)");
  c->add_option("-e,--reconfig", a->reconfig,
                "reconfigure this namespace in place, keeping name and size");
  c->add_flag("-f,--force", a->force, "reconfigure an active namespace");
  c->callback([c, a] { CreateNamespace(c, *a); });

  struct Spec {
    const char* name;
    const char* help;
    Verb verb;
  };
  for (const Spec& s :
       {Spec{"destroy-namespace", "destroy a namespace and its data",
             Verb::kDestroy},
        Spec{"enable-namespace", "enable a namespace", Verb::kEnable},
        Spec{"disable-namespace", "disable a namespace", Verb::kDisable}}) {
    auto ns = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    auto* v = app.add_subcommand(s.name, s.help);
    v->add_option("namespace", *ns, "namespaceX.Y or all")->required();
    if (s.verb == Verb::kDestroy) {
      v->add_flag("-f,--force", *force, "destroy even if active");
    }
    Verb verb = s.verb;
    v->callback([v, verb, ns, force] { NamespaceVerb(v, verb, *ns, *force); });
  }

  auto d = std::make_shared<DeviceArgs>();
  auto* r = app.add_subcommand(
      "reconfigure-device", "move a dax device between devdax and system-ram");
  r->add_option("device", d->dev, "daxX.Y")->required();
  r->add_option("-m,--mode", d->mode, "system-ram or devdax")->required();
  r->add_flag("-f,--force", d->force, "offline system-ram memory");
  r->callback([r, d] { ReconfigureDevice(r, *d); });
}

}  // namespace daxstore::cli
