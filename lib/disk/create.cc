// CreateDisk: a new image on a located target. A namespace is formatted
// whole, and only when it holds no image (nor a damaged one).
#include "daxstore/disk.h"

namespace daxstore {

Result<Image> CreateDiskAt(const DiskLocation& loc, const ImageOptions& o) {
  if (loc.ns.empty()) return Image::Create(loc.path, o, loc.options);
  const std::string what = "namespace " + loc.ns + " (" + loc.path + ")";
  MapOptions probe = loc.options;
  probe.access = Access::kReadOnly;
  auto held = Image::Open(loc.path, probe);
  if (held.ok()) {
    return Busy(what +
                " already holds a daxstore image; destroy and recreate the "
                "namespace to start over");
  }
  // Anything but "no image here" (busy, damaged, crashed, unreadable) may
  // be an image someone needs: never format over it.
  if (held.status().kind() != ErrorKind::kNotFound) {
    return held.status().WithContext(what +
                                     " may hold an image; not formatting it");
  }
  MapOptions mo = loc.options;
  mo.access = Access::kReadWrite;
  mo.lock = true;
  mo.create_size = 0;  // the namespace's size, whatever the layout asks
  DAXSTORE_ASSIGN_OR_RETURN(Mapping m, Mapping::Open(loc.path, mo));
  auto img = Image::Format(std::move(m), o);
  if (!img.ok()) return img.status().WithContext("image on " + what);
  return img;
}

Result<Image> CreateDisk(const DiskSpec& spec, const ImageOptions& options,
                         DiskLocation* where) {
  DAXSTORE_ASSIGN_OR_RETURN(DiskLocation loc, LocateDisk(spec));
  if (where != nullptr) *where = loc;
  return CreateDiskAt(loc, options);
}

}  // namespace daxstore
