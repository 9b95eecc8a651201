// OpenDisk: a located target's image, with errors that say what to do.
#include "daxstore/disk.h"

namespace daxstore {
namespace {

// Whether an image opens at loc at all (read-only: shares any lock).
bool HoldsImage(const DiskLocation& loc) {
  MapOptions ro = loc.options;
  ro.access = Access::kReadOnly;
  return Image::Open(loc.path, ro).ok();
}

}  // namespace

Result<Image> OpenDisk(const DiskSpec& spec, DiskLocation* where) {
  DAXSTORE_ASSIGN_OR_RETURN(DiskLocation loc, LocateDisk(spec));
  if (where != nullptr) *where = loc;
  auto image = Image::Open(loc.path, spec.volume, loc.options);
  if (image.ok()) return image;
  const Status& st = image.status();
  if (loc.ns.empty()) return st;
  const std::string what =
      spec.target == loc.ns ? loc.ns : spec.target + " (" + loc.ns + ")";
  switch (st.kind()) {
    case ErrorKind::kBusy:
      return Busy("namespace " + what +
                  " is busy: another server or tool has its image open; "
                  "stop it first, or use the server's control socket (" +
                  st.message() + ")");
    case ErrorKind::kNotFound:
      // No image at all, or no such volume in the image there.
      if (!spec.volume.empty() && HoldsImage(loc)) return st;
      return NotFound("namespace " + what +
                      " holds no daxstore image: create one with 'daxstore "
                      "image create " +
                      spec.target + " -s SIZE'");
    default:
      return st.WithContext("namespace " + what);
  }
}

}  // namespace daxstore
