// Target resolution: a path, a kernel devdax device, or a namespace on a
// bus (include/daxstore/disk.h).
#include <regex>
#include <vector>

#include "daxstore/disk.h"
#include "daxstore/emulated_bus.h"
#include "daxstore/namespace.h"

namespace daxstore {
namespace {

// Names that can only mean a namespace: its device, its dax or block device.
bool NamespaceShaped(const std::string& s) {
  static const std::regex kNs(
      "^((dax|namespace)[0-9]+\\.[0-9]+|pmem[0-9]+(\\.[0-9]+)?s?)$");
  return std::regex_match(s, kNs);
}

bool NamesDevice(const Namespace& n, const std::string& want) {
  if (want == n.dev || want == n.blockdev) return true;
  if (n.dax_region) {
    for (const DaxDevice& d : n.dax_region->devices) {
      if (want == d.chardev) return true;
    }
  }
  return false;
}

// The namespaces `target` names: by device if any, else by -n name.
Result<std::vector<Namespace>> Matching(NamespaceBackend& backend,
                                        const std::string& target) {
  ListFilter all;
  all.include_idle = true;
  DAXSTORE_ASSIGN_OR_RETURN(std::vector<Bus> buses, backend.List(all));
  std::vector<Namespace> by_dev, by_name;
  for (const Bus& b : buses) {
    for (const Region& r : b.regions) {
      for (const Namespace& n : r.namespaces) {
        if (NamesDevice(n, target)) by_dev.push_back(n);
        if (!n.name.empty() && n.name == target) by_name.push_back(n);
      }
    }
  }
  return by_dev.empty() ? by_name : by_dev;
}

struct OpenedBus {
  std::unique_ptr<NamespaceBackend> backend;
  std::string note;  // which bus auto picked
};

Result<OpenedBus> OpenBus(const DiskSpec& spec,
                          const std::shared_ptr<Platform>& os) {
  BusSelect bus = spec.bus;
  std::string dir =
      spec.emulated_dir.empty() ? DefaultEmulatedDir(*os) : spec.emulated_dir;
  OpenedBus out;
  if (bus == BusSelect::kAuto) {
    bus = KernelBusPresent(*os) ? BusSelect::kKernel : BusSelect::kEmulated;
    out.note = bus == BusSelect::kKernel
                   ? "used the kernel's NVDIMM bus (--bus auto)"
                   : "no kernel NVDIMM bus; used the emulated bus in " + dir +
                         " (--bus auto)";
  }
  if (bus == BusSelect::kKernel) {
    DAXSTORE_ASSIGN_OR_RETURN(out.backend, OpenKernelBackend(os));
  } else {
    EmulatedOptions eo;
    eo.dir = dir;
    eo.platform = os;
    DAXSTORE_ASSIGN_OR_RETURN(out.backend, OpenEmulatedBackend(eo));
  }
  return out;
}

}  // namespace

std::string DiskLocation::Describe() const {
  return ns.empty() ? path : ns + " (" + path + ")";
}

std::string DiskLocation::BaseName() const {
  if (!ns.empty()) return ns;
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DefaultEmulatedDir(Platform& os) {
  auto env = [&os](const char* name) {
    return os.Environment(name).value_or(std::string());
  };
  if (std::string dir = env("DAXSTORE_EMULATED_DIR"); !dir.empty()) {
    return dir;
  }
  if (auto uid = os.UserId(); uid.ok() && *uid == 0) {
    return "/var/lib/daxstore/emulated";
  }
  if (std::string xdg = env("XDG_DATA_HOME"); !xdg.empty()) {
    return xdg + "/daxstore/emulated";
  }
  std::string home = env("HOME");
  return (home.empty() ? "." : home) + "/.local/share/daxstore/emulated";
}

Result<DiskLocation> LocateDisk(const DiskSpec& spec) {
  std::shared_ptr<Platform> os =
      spec.platform ? spec.platform : DefaultPlatform();
  const std::string& target = spec.target;
  if (target.empty()) {
    return InvalidArgument(
        "no disk named: give a file, /dev/daxX.Y or a namespace");
  }
  DiskLocation loc;
  loc.options.access = spec.access;
  loc.options.emulate = spec.emulate;
  // Anything at the path (or a lookup failing for another reason than
  // "nothing there") makes it a path; opening it then reports on it.
  auto at = os->StatPath(target);
  const bool shaped = NamespaceShaped(target);
  if (target.find('/') != std::string::npos ||
      at.status().kind() != ErrorKind::kNotFound) {
    loc.path = target;
    return loc;
  }
  // A kernel devdax device by its character-device name.
  if (target.rfind("dax", 0) == 0 && shaped &&
      os->StatPath("/dev/" + target).ok()) {
    loc.path = "/dev/" + target;
    return loc;
  }
  auto bus = OpenBus(spec, os);
  if (!bus.ok()) {
    // Only a name that can mean nothing but a namespace needs the bus.
    if (shaped) return bus.status();
    loc.path = target;  // no bus: a file
    return loc;
  }
  loc.bus = std::string(bus->backend->name());
  DAXSTORE_ASSIGN_OR_RETURN(std::vector<Namespace> found,
                            Matching(*bus->backend, target));
  if (found.empty()) {
    if (shaped) {
      return NotFound("no namespace " + target + " on the " + loc.bus +
                      " bus and no file of that name; 'daxstore list -N -i' "
                      "shows the namespaces");
    }
    if (target.find('.') == std::string::npos) {
      loc.note = "no namespace on the " + loc.bus + " bus is named '" + target +
                 "'; taking it as a file in the working directory (write ./" +
                 target +
                 " to mean a file; 'daxstore list -N' shows the namespaces)";
    }
    loc.bus.clear();
    loc.path = target;
    return loc;
  }
  if (found.size() > 1) {
    std::string devs;
    for (const Namespace& n : found) devs += (devs.empty() ? "" : ", ") + n.dev;
    return InvalidArgument(std::to_string(found.size()) +
                           " namespaces are named " + target + " (" + devs +
                           "): pick one by its device name");
  }
  DAXSTORE_ASSIGN_OR_RETURN(MapTarget m,
                            bus->backend->MapTargetOf(found.front().dev));
  loc.path = m.path;
  loc.ns = found.front().dev;
  loc.note = bus->note;
  MapOptions o = m.options;
  o.access = spec.access;
  if (spec.emulate) o.emulate = spec.emulate;
  loc.options = o;
  return loc;
}

}  // namespace daxstore
