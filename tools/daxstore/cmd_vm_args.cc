// daxstore vm-args TARGET: prints the QEMU arguments or libvirt XML that
// attach an image (as a disk, over NBD or vhost-user-blk) or a namespace or
// DAX file (as a virtual NVDIMM or virtio-pmem device) to a VM.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "bus_select.h"
#include "commands.h"
#include "daxstore/image.h"

namespace daxstore::cli {
namespace {

struct VmArgs {
  std::string target;
  std::string socket;
  bool qemu = false, libvirt = false;
  bool nbd = false, vhost_user = false;
  bool nvdimm = false, virtio_pmem = false;
};

Failure Fail(const std::string& message) {
  return Failure{Status::Error(ErrorKind::kInvalidArgument, message)};
}

std::string DefaultSocket(const std::string& image, const char* suffix) {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::string dir = (xdg && *xdg) ? std::string(xdg) + "/daxstore"
                                  : "/tmp/daxstore-" + std::to_string(getuid());
  return dir + "/" + std::filesystem::path(image).filename().string() + suffix;
}

void Disk(const VmArgs& a, const std::string& image) {
  std::string abs = std::filesystem::absolute(image).string();
  if (a.vhost_user) {
    std::string sock =
        a.socket.empty() ? DefaultSocket(abs, ".vhost") : a.socket;
    std::printf("# first: daxstore serve vhost-user-blk %s --socket %s\n",
                abs.c_str(), sock.c_str());
    if (a.libvirt) {
      std::printf(
          "<disk type='vhostuser' device='disk'>\n"
          "  <driver name='qemu' type='raw'/>\n"
          "  <source type='unix' path='%s'><reconnect enabled='yes' "
          "timeout='10'/></source>\n"
          "  <target dev='vda' bus='virtio'/>\n</disk>\n"
          "<!-- also: <memoryBacking><source type='memfd'/><access "
          "mode='shared'/></memoryBacking> -->\n",
          sock.c_str());
    } else {
      std::printf(
          "-object memory-backend-memfd,id=mem,size=GUEST_RAM,share=on "
          "-machine memory-backend=mem "
          "-chardev socket,id=daxstore0,path=%s "
          "-device vhost-user-blk-pci,chardev=daxstore0,num-queues=1\n",
          sock.c_str());
    }
    return;
  }
  std::string sock = a.socket.empty() ? DefaultSocket(abs, ".nbd") : a.socket;
  std::printf("# first: daxstore serve nbd %s --socket %s\n", abs.c_str(),
              sock.c_str());
  if (a.libvirt) {
    std::printf(
        "<disk type='network' device='disk'>\n"
        "  <driver name='qemu' type='raw' cache='none'/>\n"
        "  <source protocol='nbd'><host transport='unix' socket='%s'/>"
        "</source>\n"
        "  <target dev='vda' bus='virtio'/>\n</disk>\n",
        sock.c_str());
  } else {
    std::printf(
        "-blockdev driver=nbd,server.type=unix,server.path=%s,"
        "node-name=daxstore0,cache.direct=on "
        "-device virtio-blk-pci,drive=daxstore0\n",
        sock.c_str());
  }
}

// The devdax alignment from sysfs (2M or 1G), or 2M.
uint64_t DaxAlign(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  std::ifstream f("/sys/bus/dax/devices/" + name + "/align");
  uint64_t align = 0;
  if (f >> align && align != 0) return align;
  return 2ull << 20;
}

void Memory(const VmArgs& a, const MapTarget& t) {
  MapOptions options = t.options;
  options.access = Access::kReadOnly;
  Mapping m = Must(Mapping::Open(t.path, options));
  const MappingInfo& info = m.info();
  // pmem=on tells QEMU the backing is real pmem (it then uses pmem_persist);
  // only devdax and DAX files are.
  bool real = info.kind == MappingKind::kDeviceDax ||
              info.kind == MappingKind::kDaxFile;
  uint64_t align =
      info.kind == MappingKind::kDeviceDax ? DaxAlign(t.path) : (2ull << 20);
  uint64_t size = info.size / align * align;
  std::string abs = std::filesystem::absolute(t.path).string();
  std::printf("# backing %s (%s): pmem=%s\n", abs.c_str(),
              std::string(MappingKindName(info.kind)).c_str(),
              real ? "on (real pmem)" : "off (not pmem: no DAX)");
  if (a.libvirt) {
    const char* model = a.virtio_pmem ? "virtio-pmem" : "nvdimm";
    std::printf(
        "<memory model='%s' access='shared'>\n"
        "  <source><path>%s</path>%s<alignsize unit='KiB'>%llu</alignsize>"
        "</source>\n"
        "  <target><size unit='KiB'>%llu</size>%s</target>\n</memory>\n",
        model, abs.c_str(), real ? "<pmem/>" : "",
        (unsigned long long)(align >> 10), (unsigned long long)(size >> 10),
        a.virtio_pmem ? "" : "<label><size unit='KiB'>128</size></label>");
    return;
  }
  std::printf(
      "-object memory-backend-file,id=daxstore0,mem-path=%s,size=%llu,"
      "share=on,align=%llu%s ",
      abs.c_str(), (unsigned long long)size, (unsigned long long)align,
      real ? ",pmem=on" : "");
  if (a.virtio_pmem) {
    std::printf("-device virtio-pmem-pci,memdev=daxstore0,id=pmem0\n");
  } else {
    std::printf(
        "-machine nvdimm=on -m GUEST_RAM,slots=2,maxmem=MAXMEM "
        "-device nvdimm,memdev=daxstore0,id=nvdimm0\n"
        "# MAXMEM >= GUEST_RAM + %llu\n",
        (unsigned long long)size);
  }
}

void Run(const VmArgs& a, const CLI::App* cmd) {
  int disk = a.nbd + a.vhost_user, mem = a.nvdimm + a.virtio_pmem;
  if (disk + mem > 1)
    throw Fail("pick one of --nbd, --vhost-user, --nvdimm, --virtio-pmem");
  if (a.qemu && a.libvirt) throw Fail("pick one of --qemu and --libvirt");
  bool exists = std::filesystem::exists(a.target);
  if (exists && mem == 0) {
    MapOptions read_only;
    read_only.access = Access::kReadOnly;
    auto image = Image::Open(a.target, read_only);
    if (image.ok()) return Disk(a, a.target);
    if (disk) {
      throw Fail(a.target + " is not a daxstore image (" +
                 image.status().message() + ")");
    }
  }
  if (disk) throw Fail(a.target + " is not an image file");
  if (exists) return Memory(a, MapTarget{a.target, {}});
  BackendHandle backend = OpenBackend(ReadBusChoice(cmd));
  Memory(a, Must(backend->MapTargetOf(a.target)));
}

}  // namespace

void AddVmArgsCommands(CLI::App& app) {
  static VmArgs a;
  auto* c = app.add_subcommand(
      "vm-args", "print QEMU arguments or libvirt XML that attach a target");
  c->add_option("target", a.target,
                "an image, a namespace, a DAX file or "
                "/dev/daxX.Y")
      ->required();
  c->add_flag("--qemu", a.qemu, "QEMU arguments (default)");
  c->add_flag("--libvirt", a.libvirt, "libvirt domain XML");
  c->add_flag("--nbd", a.nbd, "an image as a disk over NBD (default)");
  c->add_flag("--vhost-user", a.vhost_user,
              "an image as a vhost-user-blk disk");
  c->add_flag("--nvdimm", a.nvdimm,
              "a virtual NVDIMM (default for non-images)");
  c->add_flag("--virtio-pmem", a.virtio_pmem, "a virtio-pmem device");
  c->add_option("--socket", a.socket, "the server's socket");
  c->callback([c] { Run(a, c); });
}

}  // namespace daxstore::cli
