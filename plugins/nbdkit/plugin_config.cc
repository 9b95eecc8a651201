#include "plugin_config.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace daxstore::nbdkit_plugin {

const char kHelp[] =
    "image=TARGET  (required) the image: a file, /dev/daxX.Y, or a\n"
    "              namespace by device (namespace0.0, dax0.0) or -n name\n"
    "volume=NAME   the default export (default: the image's own disk)\n"
    "vhost=VOLUME:SOCKET[:QUEUES]  also serve VOLUME over vhost-user-blk\n"
    "              on SOCKET (repeatable)\n"
    "control=SOCKET  the image's control socket (JSON, mode 0600)\n"
    "bus=auto|kernel|emulated  the namespace bus (default auto)\n"
    "emulated-dir=DIR  the emulated bus's directory\n"
    "emulate=memory_controller|cpu_cache  treat a plain file as pmem\n"
    "threads=serial|parallel  requests of one connection one at a time\n"
    "              on the connection's thread (default), or in parallel\n"
    "              on nbdkit's worker threads\n"
    "announce=TEXT  a line printed on stderr once serving\n"
    "nbd-socket=PATH  the unix socket nbdkit serves on, reported to\n"
    "              the control socket's query-exports";

namespace {

Status ParseVhost(const std::string& value, ServedExport* e) {
  // VOLUME:SOCKET[:QUEUES]; a socket path holds no ':' here.
  size_t a = value.find(':');
  if (a == std::string::npos || a == 0 || a + 1 == value.size()) {
    return InvalidArgument("vhost=" + value +
                           ": use vhost=VOLUME:SOCKET[:QUEUES]");
  }
  e->kind = ServedExport::Kind::kVhostUserBlk;
  e->volume = value.substr(0, a);
  std::string rest = value.substr(a + 1);
  size_t b = rest.rfind(':');
  if (b != std::string::npos) {
    std::string q = rest.substr(b + 1);
    char* end = nullptr;
    unsigned long n = std::strtoul(q.c_str(), &end, 10);
    if (q.empty() || *end != '\0' || n < 1 || n > 64) {
      return InvalidArgument("vhost=" + value + ": QUEUES must be 1 to 64");
    }
    e->queues = static_cast<uint32_t>(n);
    rest = rest.substr(0, b);
  }
  e->socket = rest;
  return Status::Ok();
}

}  // namespace

Status Apply(Config* c, const std::string& key, const std::string& value) {
  DiskSpec& d = c->server.disk;
  if (key == "image") {
    d.target = value;
  } else if (key == "volume") {
    c->default_volume = value;
  } else if (key == "vhost") {
    ServedExport e;
    DAXSTORE_RETURN_IF_ERROR(ParseVhost(value, &e));
    c->server.exports.push_back(e);
  } else if (key == "control") {
    c->server.control_socket = value;
  } else if (key == "bus") {
    if (value == "auto") {
      d.bus = BusSelect::kAuto;
    } else if (value == "kernel") {
      d.bus = BusSelect::kKernel;
    } else if (value == "emulated") {
      d.bus = BusSelect::kEmulated;
    } else {
      return InvalidArgument("bus=" + value +
                             ": use bus=auto, bus=kernel or bus=emulated");
    }
  } else if (key == "emulated-dir") {
    d.emulated_dir = value;
  } else if (key == "emulate") {
    // A plain file declared pmem, as the emulated bus declares its
    // namespaces: for benchmarks and tests on machines without pmem.
    if (value == "memory_controller") {
      d.emulate = PersistenceDomain::kMemoryController;
    } else if (value == "cpu_cache") {
      d.emulate = PersistenceDomain::kCpuCache;
    } else {
      return InvalidArgument(
          "emulate=" + value +
          ": use emulate=memory_controller or emulate=cpu_cache");
    }
  } else if (key == "threads") {
    if (value != "parallel" && value != "serial") {
      return InvalidArgument("threads=" + value +
                             ": use threads=parallel or threads=serial");
    }
    c->parallel = value == "parallel";
  } else if (key == "announce") {
    c->announce = value;
  } else if (key == "nbd-socket") {
    c->server.nbd_socket = value;
  } else {
    return InvalidArgument(
        "unknown parameter '" + key +
        "' (use image=TARGET [volume=NAME] [vhost=VOLUME:SOCKET[:QUEUES]] "
        "[control=SOCKET] [bus=...] [emulated-dir=DIR] [emulate=DOMAIN] "
        "[threads=serial|parallel] [nbd-socket=PATH])");
  }
  return Status::Ok();
}

Status Complete(Config* c) {
  if (c->server.disk.target.empty()) {
    return InvalidArgument("give the image to export: image=TARGET");
  }
  c->server.nbd = true;
  return Status::Ok();
}

void NotifyReady() { sd_notify(0, "READY=1"); }

}  // namespace daxstore::nbdkit_plugin
