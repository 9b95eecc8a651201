// TARGET resolution, opening an image to serve, and the progress bar.
#include "image_target.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <regex>
#include <vector>

#include "bus_select.h"
#include "commands.h"

namespace daxstore::cli {
namespace {

// Names that can only mean a namespace: its device, its dax or block device.
bool NamespaceShaped(const std::string& s) {
  static const std::regex kNs(
      "^((dax|namespace)[0-9]+\\.[0-9]+|pmem[0-9]+(\\.[0-9]+)?s?)$");
  return std::regex_match(s, kNs);
}

bool NamesDevice(const Namespace& n, const std::string& want) {
  if (want == n.dev || want == n.blockdev) {
    return true;
  }
  if (n.dax_region) {
    for (const DaxDevice& d : n.dax_region->devices) {
      if (want == d.chardev) return true;
    }
  }
  return false;
}

// The namespaces TARGET names: by device if any, else by -n name.
std::vector<Namespace> Matching(NamespaceBackend& backend,
                                const std::string& target) {
  ListFilter all;
  all.include_idle = true;
  std::vector<Bus> buses = Must(backend.List(all));
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

// Whether the file stores a non-zero byte: its data extents only, at most
// 64 MiB of them; past that, or when the extents cannot be told, yes.
bool StoresNonZero(Platform& os, int fd) {
  constexpr uint64_t kScanLimit = 64ull << 20;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t at = 0, scanned = 0;
  for (;;) {
    auto ext = os.NextData(fd, at);
    if (!ext.ok()) return true;
    if (!ext->has_value()) return false;
    const uint64_t end = (*ext)->offset + (*ext)->length;
    for (uint64_t off = (*ext)->offset; off < end;) {
      if (scanned >= kScanLimit) return true;
      auto n = os.PRead(fd, buf.data(),
                        std::min<uint64_t>(buf.size(), end - off), off);
      if (!n.ok() || *n == 0) return true;
      if (std::any_of(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*n),
                      [](uint8_t b) { return b != 0; })) {
        return true;
      }
      off += *n;
      scanned += *n;
    }
    at = end;
  }
}

// Whether a device stores a non-zero byte where partition tables (and
// their backups), file system, pool and image headers live: its first
// 4 MiB and its last 1 MiB, read through a read-only mapping (a devdax
// device has no read()). One that cannot be mapped cannot be formatted
// either, so no: the format then reports why.
bool DeviceHeadOrTailStoresNonZero(const ImageTarget& t) {
  constexpr uint64_t kHead = 4ull << 20, kTail = 1ull << 20;
  MapOptions ro = t.options;
  ro.access = Access::kReadOnly;
  ro.create_size = 0;
  auto m = Mapping::Open(t.path, ro);
  if (!m.ok()) return false;
  const uint8_t* p = m->bytes();
  const uint64_t size = m->size();
  auto nonzero = [p](uint64_t from, uint64_t to) {
    return std::any_of(p + from, p + to, [](uint8_t b) { return b != 0; });
  };
  return nonzero(0, std::min(size, kHead)) ||
         nonzero(size > kTail ? size - kTail : 0, size);
}

}  // namespace

ImageTarget ResolveImageTarget(const CLI::App* cmd, const std::string& target,
                               const std::string& emulate) {
  ImageTarget t;
  if (!emulate.empty())
    t.options.emulate = Must(ParsePersistenceDomain(emulate));
  Platform& os = *DefaultPlatform();
  // Anything at the path (or a lookup failing for another reason than
  // "nothing there") makes it a path; the verb then reports on it.
  auto at = os.StatPath(target);
  const bool shaped = NamespaceShaped(target);
  if (target.find('/') != std::string::npos ||
      at.status().kind() != ErrorKind::kNotFound) {
    t.path = target;
    return t;
  }
  // A kernel devdax device by its character-device name.
  if (target.rfind("dax", 0) == 0 && shaped &&
      os.StatPath("/dev/" + target).ok()) {
    t.path = "/dev/" + target;
    return t;
  }
  const BusChoice choice = ReadBusChoice(cmd);
  std::optional<BackendHandle> backend =
      shaped ? std::optional<BackendHandle>(OpenBackend(choice))
             : TryOpenBackend(choice);
  if (!backend) {
    t.path = target;  // no bus: a new file
    return t;
  }
  std::vector<Namespace> found = Matching(**backend, target);
  if (found.empty()) {
    if (!shaped) {
      backend->DropNote();
      // A word shaped like a namespace's name rather than a file's (no
      // '.': "vm1", not "vm1.img") that matched nothing, say because its
      // create-namespace failed, would otherwise quietly become a file in
      // the working directory.
      if (target.find('.') == std::string::npos) {
        std::fprintf(stderr,
                     "daxstore: no namespace on the %s bus is named '%s'; "
                     "taking it as a file in the working directory (write "
                     "./%s to mean a file; 'daxstore list -N' shows the "
                     "namespaces)\n",
                     std::string((*backend)->name()).c_str(), target.c_str(),
                     target.c_str());
      }
      t.path = target;
      return t;
    }
    throw Failure{NotFound("no namespace " + target + " on the " +
                           std::string((*backend)->name()) +
                           " bus and no file of that name; 'daxstore list "
                           "-N -i' shows the namespaces")};
  }
  if (found.size() > 1) {
    std::string devs;
    for (const Namespace& n : found) devs += (devs.empty() ? "" : ", ") + n.dev;
    throw Failure{InvalidArgument(std::to_string(found.size()) +
                                  " namespaces are named " + target + " (" +
                                  devs + "): pick one by its device name")};
  }
  MapTarget m = Must((*backend)->MapTargetOf(found.front().dev));
  t.path = m.path;
  t.ns = found.front().dev;
  MapOptions o = m.options;
  if (t.options.emulate) o.emulate = t.options.emulate;
  t.options = o;
  return t;
}

Image OpenImageToServe(const ImageTarget& t, const std::string& target,
                       bool read_only) {
  MapOptions o = t.options;
  o.access = read_only ? Access::kReadOnly : Access::kReadWrite;
  auto image = Image::Open(t.path, o);
  if (image.ok()) return std::move(image).value();
  const Status& st = image.status();
  std::string what = t.ns.empty()     ? target
                     : target == t.ns ? t.ns
                                      : target + " (" + t.ns + ")";
  if (!t.ns.empty() && st.kind() == ErrorKind::kBusy) {
    throw Failure{Busy("namespace " + what +
                       " is busy: another server or tool has its image "
                       "open; stop it first (" +
                       st.message() + ")")};
  }
  if (!t.ns.empty() && st.kind() == ErrorKind::kNotFound) {
    throw Failure{NotFound("namespace " + what +
                           " holds no daxstore image: create one with "
                           "'daxstore image create " +
                           target + " -s SIZE'")};
  }
  throw Failure{
      Status::Error(st.kind(), "cannot serve " + what + ": " + st.message())};
}

bool FormatLosesNothing(const ImageTarget& t) {
  Platform& os = *DefaultPlatform();
  auto at = os.StatPath(t.path);
  if (!at.ok()) return at.status().kind() == ErrorKind::kNotFound;
  if (at->type != FileInfo::Type::kRegular) {
    return !DeviceHeadOrTailStoresNonZero(t);
  }
  if (at->size == 0) return true;
  auto fd = os.Open(t.path, O_RDONLY);
  if (!fd.ok()) return false;
  OpenFile file(os, *fd);
  return !StoresNonZero(os, file.fd());
}

Image CreateImage(const ImageTarget& t, const ImageOptions& o) {
  if (t.ns.empty()) return Must(Image::Create(t.path, o, t.options));
  if (Image::Open(t.path, t.options).ok()) {
    throw Failure{
        Busy("namespace " + t.ns + " (" + t.path +
             ") already holds a daxstore image (destroy and recreate the "
             "namespace to start over)")};
  }
  MapOptions mo = t.options;
  mo.access = Access::kReadWrite;
  mo.lock = true;
  mo.create_size = 0;  // the namespace's size, whatever the layout asks
  Mapping m = Must(Mapping::Open(t.path, mo));
  auto img = Image::Format(std::move(m), o);
  if (!img.ok()) {
    throw Failure{img.status().WithContext("image on namespace " + t.ns)};
  }
  return std::move(img).value();
}

std::string TargetBaseName(const ImageTarget& t) {
  if (!t.ns.empty()) return t.ns;
  size_t slash = t.path.find_last_of('/');
  return slash == std::string::npos ? t.path : t.path.substr(slash + 1);
}

Progress::Progress(std::string verb, uint64_t total)
    : verb_(std::move(verb)),
      total_(total),
      tty_(DefaultPlatform()->IsTerminal(2)) {}

Progress::~Progress() {
  if (tty_ && last_ >= 0) std::fputs("\n", stderr);
}

void Progress::Update(uint64_t done) {
  if (!tty_ || total_ == 0) return;
  const int pct = static_cast<int>(done * 100 / total_);
  if (pct == last_) return;
  last_ = pct;
  char bar[41];
  const int fill = pct * 40 / 100;
  for (int i = 0; i < 40; ++i) bar[i] = i < fill ? '#' : '.';
  bar[40] = '\0';
  std::fprintf(stderr, "\r%s %3d%% [%s]", verb_.c_str(), pct, bar);
  std::fflush(stderr);
}

}  // namespace daxstore::cli
