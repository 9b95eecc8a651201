// TARGET resolution, opening an image to serve, and the progress bar.
#include "image_target.h"

#include <fcntl.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "bus_select.h"
#include "commands.h"

namespace daxstore::cli {
namespace {

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

DiskSpec SpecFor(const CLI::App* cmd, const std::string& target,
                 const std::string& emulate) {
  DiskSpec spec;
  spec.target = target;
  if (!emulate.empty()) spec.emulate = Must(ParsePersistenceDomain(emulate));
  const BusChoice choice = ReadBusChoice(cmd);
  spec.bus = choice.bus == "kernel"     ? BusSelect::kKernel
             : choice.bus == "emulated" ? BusSelect::kEmulated
                                        : BusSelect::kAuto;
  spec.emulated_dir = choice.emulated_dir;
  return spec;
}

namespace {
// Which bus `--bus auto` picked, said once per process: a verb that asks
// a server again and again (image mirror --wait) resolves its target each
// time.
void SayBusNote(const std::string& note) {
  static std::string said;
  if (note.empty() || note == said) return;
  said = note;
  std::fprintf(stderr, "daxstore: %s\n", note.c_str());
}
}  // namespace

ImageTarget ResolveImageTarget(const CLI::App* cmd, const std::string& target,
                               const std::string& emulate) {
  DiskLocation loc = Must(LocateDisk(SpecFor(cmd, target, emulate)));
  SayBusNote(loc.note);
  ImageTarget t;
  t.path = loc.path;
  t.options = loc.options;
  t.ns = loc.ns;
  return t;
}

Image OpenImageToServe(const CLI::App* cmd, const std::string& target,
                       const std::string& volume, bool read_only,
                       ImageTarget* where) {
  DiskSpec spec = SpecFor(cmd, target, "");
  spec.volume = volume;
  spec.access = read_only ? Access::kReadOnly : Access::kReadWrite;
  DiskLocation loc;
  auto image = OpenDisk(spec, &loc);
  SayBusNote(loc.note);
  if (!image.ok()) {
    const Status& st = image.status();
    if (!loc.ns.empty()) throw Failure{st};
    throw Failure{Status::Error(st.kind(),
                                "cannot serve " + target + ": " + st.message(),
                                st.sys_errno())};
  }
  if (where != nullptr) *where = ImageTarget{loc.path, loc.options, loc.ns};
  return std::move(image).value();
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
  DiskLocation loc;
  loc.path = t.path;
  loc.options = t.options;
  loc.ns = t.ns;
  return Must(CreateDiskAt(loc, o));
}

std::string TargetBaseName(const ImageTarget& t) {
  DiskLocation loc;
  loc.path = t.path;
  loc.ns = t.ns;
  return loc.BaseName();
}

}  // namespace daxstore::cli
