#include "bus_select.h"

#include <cstdio>
#include <exception>

#include "commands.h"
#include "daxstore/disk.h"

namespace daxstore::cli {

void AddBusOptions(CLI::App& root) {
  if (root.get_option_no_throw("--bus") != nullptr) return;
  root.add_option("--bus", "namespace bus: kernel, emulated or auto")
      ->default_val("auto")
      ->check(CLI::IsMember({"kernel", "emulated", "auto"}));
  root.add_option("--emulated-dir",
                  "emulated bus directory (default $DAXSTORE_EMULATED_DIR, "
                  "else a per-user data directory)");
}

BusChoice ReadBusChoice(const CLI::App* cmd) {
  while (cmd->get_parent() != nullptr) cmd = cmd->get_parent();
  BusChoice c;
  if (auto* o = cmd->get_option_no_throw("--bus"); o && o->count() > 0) {
    c.bus = o->as<std::string>();
  }
  auto* d = cmd->get_option_no_throw("--emulated-dir");
  c.emulated_dir = d && d->count() > 0 ? d->as<std::string>()
                                       : DefaultEmulatedDir(*DefaultPlatform());
  return c;
}

EmulatedOptions EmulatedOptionsFor(const BusChoice& choice) {
  EmulatedOptions o;
  o.dir = choice.emulated_dir;
  return o;
}

BackendHandle::~BackendHandle() {
  if (!note_.empty() && std::uncaught_exceptions() == 0) {
    std::fprintf(stderr, "daxstore: %s\n", note_.c_str());
  }
}

namespace {
Result<std::unique_ptr<NamespaceBackend>> Open(const BusChoice& choice,
                                               std::string* note) {
  std::string bus = choice.bus;
  if (bus == "auto") {
    bus = KernelBusPresent(*DefaultPlatform()) ? "kernel" : "emulated";
    *note = bus == "kernel"
                ? "used the kernel's NVDIMM bus (--bus auto)"
                : "no kernel NVDIMM bus; used the emulated bus in " +
                      choice.emulated_dir + " (--bus auto)";
  }
  if (bus == "kernel") return OpenKernelBackend();
  return OpenEmulatedBackend(EmulatedOptionsFor(choice));
}
}  // namespace

BackendHandle OpenBackend(const BusChoice& choice) {
  std::string note;
  auto backend = Must(Open(choice, &note));
  return {std::move(backend), note};
}

std::optional<BackendHandle> TryOpenBackend(const BusChoice& choice) {
  std::string note;
  auto backend = Open(choice, &note);
  if (!backend.ok()) return std::nullopt;
  return BackendHandle(std::move(backend).value(), note);
}

}  // namespace daxstore::cli
