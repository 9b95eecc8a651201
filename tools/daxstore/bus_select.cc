#include "bus_select.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "commands.h"

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

namespace {
std::string DefaultEmulatedDir() {
  if (const char* env = std::getenv("DAXSTORE_EMULATED_DIR"); env && *env) {
    return env;
  }
  if (::geteuid() == 0) return "/var/lib/daxstore/emulated";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/daxstore/emulated";
  }
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") +
         "/.local/share/daxstore/emulated";
}
}  // namespace

BusChoice ReadBusChoice(const CLI::App* cmd) {
  while (cmd->get_parent() != nullptr) cmd = cmd->get_parent();
  BusChoice c;
  if (auto* o = cmd->get_option_no_throw("--bus"); o && o->count() > 0) {
    c.bus = o->as<std::string>();
  }
  auto* d = cmd->get_option_no_throw("--emulated-dir");
  c.emulated_dir =
      d && d->count() > 0 ? d->as<std::string>() : DefaultEmulatedDir();
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

BackendHandle OpenBackend(const BusChoice& choice) {
  std::string bus = choice.bus, note;
  if (bus == "auto") {
    bus = KernelBusPresent(*DefaultPlatform()) ? "kernel" : "emulated";
    note = bus == "kernel" ? "used the kernel's NVDIMM bus (--bus auto)"
                           : "no kernel NVDIMM bus; used the emulated bus in " +
                                 choice.emulated_dir + " (--bus auto)";
  }
  if (bus == "kernel") return {Must(OpenKernelBackend()), note};
  return {Must(OpenEmulatedBackend(EmulatedOptionsFor(choice))), note};
}

}  // namespace daxstore::cli
