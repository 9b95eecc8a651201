// daxstore vm-args TARGET: prints the QEMU arguments or libvirt XML that
// attach an image (as a disk, over NBD or vhost-user-blk) or a namespace or
// DAX file (as a virtual NVDIMM or virtio-pmem device) to a VM.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "daxstore/image.h"
#include "daxstore/image_server.h"
#include "daxstore/size.h"
#include "image_target.h"
#include "xml.h"

namespace daxstore::cli {
namespace {

struct VmArgs {
  std::string target;
  std::string volume;  // "" : the image's own disk
  std::string socket;
  std::string control;  // "": the one `daxstore serve` makes
  std::string guest_ram;
  bool qemu = false, libvirt = false, cloud_hypervisor = false;
  bool nbd = false, vhost_user = false;
  bool nvdimm = false, virtio_pmem = false;
};

std::string LastComponent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Where `daxstore serve` puts its socket when given no --socket.
std::string DefaultSocket(const std::string& name, const char* suffix) {
  return SocketDir(false) + "/" + name + suffix;
}

// A QEMU id for the target: "daxstore-" and its file name, with what QEMU
// refuses in ids turned into '_', short enough for a block node name (< 32).
std::string QemuId(const std::string& target) {
  std::string name = LastComponent(target);
  std::string id = "daxstore-";
  for (char c : name.substr(0, 20)) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
              c == '.' || c == '_';
    id += ok ? c : '_';
  }
  return id;
}

// A value inside a QEMU option list ("path=VALUE,..."): QEMU reads ",," as
// one ','.
std::string QemuValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

// One argv word as a shell reads it: as is when it holds nothing a shell
// would split or expand, else single-quoted.
std::string ShellWord(const std::string& w) {
  bool plain = !w.empty();
  for (char c : w) {
    plain = plain &&
            (std::isalnum(static_cast<unsigned char>(c)) ||
             std::string_view("_-./:=,@%+").find(c) != std::string_view::npos);
  }
  if (plain) return w;
  std::string out = "'";
  for (char c : w) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Prints argv words on one line, each as ShellWord gives it.
void PrintArgs(const std::vector<std::string>& words) {
  std::string line;
  for (const std::string& w : words) {
    if (!line.empty()) line += ' ';
    line += ShellWord(w);
  }
  std::printf("%s\n", line.c_str());
}

// cloud-hypervisor splits its option lists on ',' and has no escape for it.
void RefuseCommaForCloudHypervisor(const std::string& path) {
  if (path.find(',') != std::string::npos) {
    throw Fail(path +
               " holds a ',', which cloud-hypervisor's option syntax cannot "
               "carry: use a path without one (a symlink will do)");
  }
}

// The guest RAM words: placeholders, or --guest-ram in MiB (QEMU reads a
// bare -m number as MiB).
struct GuestRam {
  std::string ram = "GUEST_RAM";  // for -m and size=
  uint64_t mib = 0;               // 0: placeholders
  std::string MaxMem(uint64_t device_bytes) const {
    if (mib == 0) return "MAXMEM";
    return std::to_string(mib + (device_bytes >> 20)) + "M";
  }
  std::string MaxMemKiB(uint64_t device_bytes) const {
    if (mib == 0) return "MAXMEM_KIB";
    return std::to_string((mib << 10) + (device_bytes >> 10));
  }
};

GuestRam ReadGuestRam(const VmArgs& a) {
  GuestRam g;
  if (a.guest_ram.empty()) return g;
  uint64_t bytes = Must(ParseSize(a.guest_ram));
  if (bytes == 0 || bytes % (1ull << 20) != 0) {
    throw Fail("--guest-ram " + a.guest_ram +
               " is not a whole number of MiB; try e.g. --guest-ram 2G");
  }
  g.mib = bytes >> 20;
  g.ram = std::to_string(g.mib) + "M";
  return g;
}

// The `type` export of `volume` on the server that owns t, if one answers
// on its control socket (--control, else the default): its socket (for NBD,
// known when served on a unix socket) and queues.
struct Served {
  std::string socket;
  uint32_t queues = 1;
};
std::optional<Served> ServedExport(const VmArgs& a, const ImageTarget& t,
                                   const char* type,
                                   const std::string& volume) {
  auto reply =
      ControlRequest(a.control.empty() ? DefaultControlSocket(t) : a.control,
                     R"({"execute": "query-exports"})", 5000);
  if (!reply.ok()) return std::nullopt;
  auto j = nlohmann::json::parse(*reply, nullptr, false);
  if (j.is_discarded() || !j.contains("return")) return std::nullopt;
  for (const auto& e : j["return"]) {
    if (e.value("type", "") != type || e.value("socket", "").empty()) continue;
    if (e.value("volume", "") != (volume.empty() ? "base" : volume)) continue;
    return Served{e.value("socket", ""), e.value("queues", 1u)};
  }
  return std::nullopt;
}

// `what` is what `daxstore serve` is told: the absolute path of an image
// file, or the namespace as the user named it.
void Disk(const VmArgs& a, const ImageTarget& t) {
  std::string what =
      t.ns.empty() ? Must(DefaultPlatform()->AbsolutePath(t.path)) : a.target;
  std::string base = TargetBaseName(t);
  std::string id = QemuId(a.volume.empty() ? base : base + "-" + a.volume);
  if (a.vhost_user) {
    std::optional<Served> served =
        a.socket.empty() ? ServedExport(a, t, "vhost-user-blk", a.volume)
                         : std::nullopt;
    std::string sock =
        served ? served->socket
        : !a.socket.empty()
            ? a.socket
            : DefaultSocket(a.volume.empty() ? base : base + "-" + a.volume,
                            ".vhost");
    const uint32_t queues = served ? served->queues : 1;
    if (served) {
      std::printf("# served by the running daxstore server on %s\n",
                  sock.c_str());
    } else if (a.volume.empty()) {
      std::printf("# first: daxstore serve vhost-user-blk %s --socket %s\n",
                  ShellWord(what).c_str(), ShellWord(sock).c_str());
    } else {
      std::printf(
          "# first: daxstore serve vhost-user-blk %s --volume %s --socket "
          "%s\n# (or add it to the image's server: daxstore serve nbd %s "
          "--vhost-user-blk %s)\n",
          ShellWord(what).c_str(), ShellWord(a.volume).c_str(),
          ShellWord(sock).c_str(), ShellWord(what).c_str(),
          ShellWord(a.volume + "=" + sock).c_str());
    }
    // The server maps guest RAM to reach the virtqueues: it must be shared.
    if (a.libvirt) {
      std::printf(
          "<!-- under <domain>: guest RAM the server can map -->\n"
          "%s"
          "<!-- under <devices>: -->\n"
          "%s",
          XmlElement("memoryBacking")
              .Add(std::move(XmlElement("source").Attr("type", "memfd")))
              .Add(std::move(XmlElement("access").Attr("mode", "shared")))
              .Dump()
              .c_str(),
          XmlElement("disk")
              .Attr("type", "vhostuser")
              .Attr("device", "disk")
              .Add(std::move(XmlElement("driver")
                                 .Attr("name", "qemu")
                                 .Attr("type", "raw")))
              .Add(std::move(XmlElement("source")
                                 .Attr("type", "unix")
                                 .Attr("path", sock)
                                 .Add(std::move(XmlElement("reconnect")
                                                    .Attr("enabled", "yes")
                                                    .Attr("timeout", "10")))))
              .Add(std::move(XmlElement("target")
                                 .Attr("dev", "vda")
                                 .Attr("bus", "virtio")))
              .Dump()
              .c_str());
      return;
    }
    GuestRam g = ReadGuestRam(a);
    if (a.cloud_hypervisor) {
      RefuseCommaForCloudHypervisor(sock);
      PrintArgs({"--memory", "size=" + g.ram + ",shared=on", "--disk",
                 "vhost_user=true,socket=" + sock +
                     ",num_queues=" + std::to_string(queues)});
    } else {
      PrintArgs(
          {"-object",
           "memory-backend-memfd,id=daxstore-ram,size=" + g.ram + ",share=on",
           "-machine", "memory-backend=daxstore-ram", "-m", g.ram, "-chardev",
           "socket,id=" + id + ",path=" + QemuValue(sock), "-device",
           "vhost-user-blk-pci,chardev=" + id +
               ",num-queues=" + std::to_string(queues)});
    }
    if (g.mib == 0) {
      std::printf(
          "# GUEST_RAM: the guest's RAM (e.g. 2G), or pass --guest-ram\n");
    }
    return;
  }
  if (a.cloud_hypervisor) {
    throw Fail(
        "cloud-hypervisor has no NBD client: attach the volume with "
        "--vhost-user (add it to the image's server with 'daxstore serve nbd "
        "IMAGE --vhost-user-blk VOLUME=SOCKET', or 'daxstore serve "
        "vhost-user-blk')");
  }
  std::optional<Served> served =
      a.socket.empty() ? ServedExport(a, t, "nbd", a.volume) : std::nullopt;
  std::string sock = served             ? served->socket
                     : a.socket.empty() ? DefaultSocket(base, ".nbd")
                                        : a.socket;
  if (served) {
    std::printf("# served by the running daxstore server on %s\n",
                ShellWord(sock).c_str());
  } else {
    std::printf("# first: daxstore serve nbd %s --socket %s\n",
                ShellWord(what).c_str(), ShellWord(sock).c_str());
  }
  // Every volume is an export named by the volume; none: the default.
  if (a.libvirt) {
    XmlElement source("source");
    source.Attr("protocol", "nbd");
    if (!a.volume.empty()) source.Attr("name", a.volume);
    source.Add(std::move(
        XmlElement("host").Attr("transport", "unix").Attr("socket", sock)));
    std::printf(
        "%s",
        XmlElement("disk")
            .Attr("type", "network")
            .Attr("device", "disk")
            .Add(std::move(XmlElement("driver")
                               .Attr("name", "qemu")
                               .Attr("type", "raw")
                               .Attr("cache", "none")))
            .Add(std::move(source))
            .Add(std::move(
                XmlElement("target").Attr("dev", "vda").Attr("bus", "virtio")))
            .Dump()
            .c_str());
  } else {
    std::string name = a.volume.empty() ? "" : ",export=" + QemuValue(a.volume);
    PrintArgs({"-blockdev",
               "driver=nbd,server.type=unix,server.path=" + QemuValue(sock) +
                   name + ",node-name=" + id + ",cache.direct=on",
               "-device", "virtio-blk-pci,drive=" + id});
  }
}

// The devdax alignment from sysfs (2M or 1G), or 2M.
uint64_t DaxAlign(const std::string& path) {
  auto text = DefaultPlatform()->ReadSysfs("bus/dax/devices/" +
                                           LastComponent(path) + "/align");
  if (text.ok()) {
    uint64_t align = std::strtoull(text->c_str(), nullptr, 10);
    if (align != 0) return align;
  }
  return 2ull << 20;
}

void Memory(const VmArgs& a, const ImageTarget& t) {
  MapOptions options = t.options;
  options.access = Access::kReadOnly;
  Mapping m = Must(Mapping::Open(t.path, options));
  const MappingInfo& info = m.info();
  // pmem=on makes QEMU map with MAP_SYNC and persist with libpmem. QEMU 7.2
  // on a file without DAX warns that it proceeds without persistence and
  // that this use is deprecated, so only devdax and DAX files get it.
  bool real = info.kind == MappingKind::kDeviceDax ||
              info.kind == MappingKind::kDaxFile;
  uint64_t align =
      info.kind == MappingKind::kDeviceDax ? DaxAlign(t.path) : (2ull << 20);
  uint64_t size = info.size / align * align;
  if (size == 0) {
    throw Fail(t.path + " holds less than one " + std::to_string(align >> 20) +
               " MiB alignment unit; grow it or pick a larger namespace");
  }
  std::string abs = Must(DefaultPlatform()->AbsolutePath(t.path));
  std::string id = QemuId(abs);
  GuestRam g = ReadGuestRam(a);
  std::printf("# backing %s (%s): pmem=%s\n", abs.c_str(),
              std::string(MappingKindName(info.kind)).c_str(),
              real ? "on (real pmem)" : "off (not DAX)");
  if (!real && !a.virtio_pmem) {
    std::printf(
        "# not DAX: the guest's cache flushes do not reach the file; a host "
        "crash can lose writes the guest saw persisted (--virtio-pmem turns "
        "guest flushes into fsync)\n");
  }
  if (a.libvirt) {
    std::printf(
        "<!-- the domain also needs a NUMA cell with all its RAM: "
        "<cpu><numa><cell id='0' cpus='0-N' memory='%s' unit='KiB'/>"
        "</numa></cpu>%s -->\n",
        g.mib ? std::to_string(g.mib << 10).c_str() : "RAM_KIB",
        a.virtio_pmem
            ? ""
            : "; and ACPI for the NFIT: <features><acpi/></features>");
    XmlElement source("source");
    source.Add(std::move(XmlElement("path").Text(abs)));
    if (!a.virtio_pmem) {
      source.Add(std::move(XmlElement("alignsize")
                               .Attr("unit", "KiB")
                               .Text(std::to_string(align >> 10))));
      if (real) source.Add(XmlElement("pmem"));
    }
    XmlElement target("target");
    target.Add(std::move(XmlElement("size")
                             .Attr("unit", "KiB")
                             .Text(std::to_string(size >> 10))));
    // libvirt's QEMU driver puts an NVDIMM in a NUMA node (it refuses one
    // without) and takes none for virtio-pmem.
    if (!a.virtio_pmem) target.Add(std::move(XmlElement("node").Text("0")));
    std::printf(
        "<!-- under <domain>: the guest's RAM plus the device, in KiB -->\n"
        "%s<!-- under <devices>: -->\n%s",
        XmlElement("maxMemory")
            .Attr("slots", "1")
            .Attr("unit", "KiB")
            .Text(g.MaxMemKiB(size))
            .Dump()
            .c_str(),
        XmlElement("memory")
            .Attr("model", a.virtio_pmem ? "virtio-pmem" : "nvdimm")
            .Attr("access", "shared")
            .Add(std::move(source))
            .Add(std::move(target))
            .Dump()
            .c_str());
    if (a.virtio_pmem) {
      std::printf(
          "<!-- libvirt 9.0 (Debian 12) starts QEMU, then fails: \"virtio-pmem "
          "memory device info is not handled yet\"; there, use the QEMU form "
          "(--qemu) -->\n");
    }
    if (g.mib == 0) {
      std::printf(
          "<!-- MAXMEM_KIB: the guest's RAM + %llu, or pass "
          "--guest-ram -->\n",
          (unsigned long long)(size >> 10));
    }
    return;
  }
  if (a.cloud_hypervisor) {
    // cloud-hypervisor's --pmem is a virtio-pmem device; it maps the file
    // shared, and discard_writes=off keeps the guest's writes.
    RefuseCommaForCloudHypervisor(abs);
    PrintArgs({"--pmem", "file=" + abs + ",size=" + std::to_string(size) +
                             ",discard_writes=off"});
    return;
  }
  std::vector<std::string> words = {
      "-object", "memory-backend-file,id=" + id + ",mem-path=" +
                     QemuValue(abs) + ",size=" + std::to_string(size) +
                     ",share=on,align=" + std::to_string(align) +
                     ",pmem=" + (real ? "on" : "off")};
  if (a.virtio_pmem) {
    words.insert(
        words.end(),
        {"-device", "virtio-pmem-pci,memdev=" + id + ",id=" + id + "-dev", "-m",
         g.ram + ",maxmem=" + g.MaxMem(size)});
  } else {
    words.insert(
        words.end(),
        {"-device", "nvdimm,memdev=" + id + ",id=" + id + "-dev", "-machine",
         "nvdimm=on", "-m", g.ram + ",slots=1,maxmem=" + g.MaxMem(size)});
  }
  PrintArgs(words);
  if (g.mib == 0) {
    std::printf(
        "# GUEST_RAM: the guest's RAM (e.g. 2G); MAXMEM: GUEST_RAM + %lluM "
        "or more (or pass --guest-ram); several devices add up\n",
        (unsigned long long)(size >> 20));
  }
}

void Run(const VmArgs& a, const CLI::App* cmd) {
  int disk = a.nbd + a.vhost_user, mem = a.nvdimm + a.virtio_pmem;
  if (disk + mem > 1)
    throw Fail("pick one of --nbd, --vhost-user, --nvdimm, --virtio-pmem");
  if (a.qemu + a.libvirt + a.cloud_hypervisor > 1) {
    throw Fail("pick one of --qemu, --libvirt and --cloud-hypervisor");
  }
  if (a.cloud_hypervisor && a.nvdimm) {
    throw Fail(
        "cloud-hypervisor attaches pmem as virtio-pmem (its --pmem): use "
        "--virtio-pmem");
  }
  if (mem != 0 && !a.volume.empty()) {
    throw Fail(
        "--volume attaches a volume of an image as a disk: drop "
        "--nvdimm and --virtio-pmem");
  }
  ImageTarget t = ResolveImageTarget(cmd, a.target, "");
  if (t.ns.empty() && !DefaultPlatform()->StatPath(t.path).ok()) {
    throw Failure{NotFound("no file or namespace " + a.target +
                           ": give an image, a DAX file, /dev/daxX.Y or a "
                           "namespace ('daxstore list -N' shows them)")};
  }
  if (mem == 0) {
    MapOptions read_only = t.options;
    read_only.access = Access::kReadOnly;
    auto image = Image::Open(t.path, a.volume, read_only);
    // Busy: a server (or another tool) has the image open, which is the
    // usual order: serve, then print what attaches to the server.
    if (image.ok() || image.status().kind() == ErrorKind::kBusy) {
      return Disk(a, t);
    }
    // A volume names a disk of an image: no volume, no image, no disk.
    if (!a.volume.empty()) throw Failure{image.status()};
    if (disk && !t.ns.empty()) {
      throw Failure{
          NotFound("namespace " + a.target +
                   " holds no daxstore image: create one with 'daxstore image "
                   "create " +
                   a.target +
                   " -s SIZE', or attach it as "
                   "memory with --nvdimm")};
    }
    if (disk) {
      throw Fail(a.target + " is not a daxstore image (" +
                 image.status().message() + ")");
    }
  }
  Memory(a, t);
}

}  // namespace

void AddVmArgsCommands(CLI::App& app) {
  static VmArgs a;
  auto* c = app.add_subcommand(
      "vm-args",
      "print QEMU or cloud-hypervisor arguments or libvirt XML that attach a "
      "target");
  c->add_option("target", a.target,
                "an image, a DAX file, /dev/daxX.Y, or a namespace by "
                "device (namespace0.0, dax0.0, pmem0) or -n name")
      ->required();
  c->add_option("--volume", a.volume,
                "attach this volume of the image (a clone, or a snapshot "
                "read-only): its NBD export or vhost-user-blk socket");
  c->add_flag("--qemu", a.qemu, "QEMU arguments (default)");
  c->add_flag("--libvirt", a.libvirt, "libvirt domain XML");
  c->add_flag("--cloud-hypervisor", a.cloud_hypervisor,
              "cloud-hypervisor arguments (vhost-user-blk disks, virtio-pmem)");
  c->add_flag("--nbd", a.nbd, "an image as a disk over NBD (default)");
  c->add_flag("--vhost-user", a.vhost_user,
              "an image as a vhost-user-blk disk");
  c->add_flag("--nvdimm", a.nvdimm,
              "a virtual NVDIMM (default for non-images)");
  c->add_flag("--virtio-pmem", a.virtio_pmem, "a virtio-pmem device");
  c->add_option("--socket", a.socket,
                "the server's socket (default: the one the image's running "
                "server reports, else the one 'daxstore serve' makes)");
  c->add_option("--control", a.control,
                "the control socket of the image's running server, asked "
                "for its sockets (default: the one 'daxstore serve' makes)");
  c->add_option("--guest-ram", a.guest_ram,
                "the guest's RAM (e.g. 2G) in place of the GUEST_RAM and "
                "MAXMEM placeholders");
  c->callback([c] { Run(a, c); });
}

}  // namespace daxstore::cli
