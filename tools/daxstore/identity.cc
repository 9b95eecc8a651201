// Identity, lock and permission refusals for destructive verbs.
#include "identity.h"

#include <fcntl.h>

#include <cerrno>

#include "daxstore/image.h"
#include "daxstore/size.h"

namespace daxstore::cli {
namespace {

bool IsDevice(FileInfo::Type t) {
  return t == FileInfo::Type::kCharDevice || t == FileInfo::Type::kBlockDevice;
}

std::string Kind(const Identity& id) {
  return IsDevice(id.type) ? "device" : "file";
}

// "disk.img", or "vm1 (/dir/region0/pmem0)" when the name is not the path.
std::string Named(const std::string& name, const std::string& path) {
  return name == path ? name : name + " (" + path + ")";
}

}  // namespace

bool Identity::operator==(const Identity& o) const {
  if (type != o.type) return false;
  if (IsDevice(type)) {
    return dev_major == o.dev_major && dev_minor == o.dev_minor;
  }
  return dev == o.dev && ino == o.ino;
}

std::optional<Identity> IdentityOf(Platform& os, const std::string& path) {
  auto st = os.StatPath(path);
  if (!st.ok()) return std::nullopt;
  Identity id;
  id.type = st->type;
  id.dev = st->dev;
  id.ino = st->ino;
  id.dev_major = st->dev_major;
  id.dev_minor = st->dev_minor;
  return id;
}

void RefuseSameTarget(const std::string& verb, const std::string& src_name,
                      const std::string& src_path, const std::string& dst_name,
                      const std::string& dst_path) {
  Platform& os = *DefaultPlatform();
  auto src = IdentityOf(os, src_path);
  auto dst = IdentityOf(os, dst_path);
  if (!src || !dst || !(*src == *dst)) return;
  throw Failure{Busy("cannot " + verb + " " + Named(src_name, src_path) +
                     " onto " + Named(dst_name, dst_path) +
                     ": they are the same " + Kind(*src) +
                     ", which would be overwritten while it is read; pick "
                     "another destination (--force does not override this)")};
}

void RefuseHeld(const std::string& name, const std::string& path) {
  Platform& os = *DefaultPlatform();
  auto fd = os.Open(path, O_RDONLY);
  if (!fd.ok()) return;
  OpenFile file(os, *fd);
  // An exclusive try on our own open conflicts with any other holder's
  // lock, shared (a read-only open) or exclusive; closing drops ours.
  Status st = os.TryLock(file.fd(), /*exclusive=*/true);
  if (st.kind() != ErrorKind::kBusy) return;
  throw Failure{Busy(Named(name, path) +
                     " is open in another process (a 'daxstore serve' or "
                     "another tool has the image open); stop that process "
                     "first (--force does not override this)")};
}

void RefuseToFormat(const ImageTarget& t, const std::string& name, bool force) {
  MapOptions ro = t.options;
  ro.access = Access::kReadOnly;
  ro.create_size = 0;
  auto probe = Image::Open(t.path, ro);
  if (probe.ok()) return;  // an image: Image::Create refuses it, and says so
  const Status& why = probe.status();
  if (PermissionDenied(why)) throw Explain(why, name, t.path);
  if (why.kind() != ErrorKind::kNotFound) {
    throw Failure{Status::Error(
        why.kind(), "cannot create an image on " + Named(name, t.path) +
                        ": it holds a daxstore image that cannot be opened (" +
                        why.message() + "); 'daxstore image check " + name +
                        "' tells what is wrong (--force does not format over "
                        "an image)")};
  }
  if (force) return;
  auto id = IdentityOf(*DefaultPlatform(), t.path);
  const bool device = id && IsDevice(id->type);
  throw Failure{
      Busy(Named(name, t.path) + " holds data that is not a daxstore image" +
           (device ? " (non-zero bytes in its first 4 MiB or last 1 MiB, where "
                     "partition tables, file systems and pools start)"
                   : "") +
           "; pick a new path, or pass --force to format it (" +
           WhatIsLost(t.path) + ")")};
}

std::string WhatIsLost(const std::string& path) {
  auto st = DefaultPlatform()->StatPath(path);
  if (st.ok() && st->type == FileInfo::Type::kRegular) {
    return "its " + FormatSizeHuman(st->size) + " of content is lost";
  }
  if (st.ok() && IsDevice(st->type)) return "everything on the device is lost";
  return "what it holds is lost";
}

bool PermissionDenied(const Status& st) {
  return st.sys_errno() == EACCES || st.sys_errno() == EPERM ||
         st.sys_errno() == EROFS;
}

Failure Explain(const Status& st, const std::string& name,
                const std::string& path, bool write) {
  if (!PermissionDenied(st)) return Failure{st};
  const std::string verb = write ? "write" : "read";
  const std::string why = st.sys_errno() == EROFS
                              ? "it is on a read-only file system"
                              : "this user may not " + verb + " it";
  return Failure{Status::Error(
      st.kind(),
      "permission denied: " + Named(name, path) + " (" + why +
          "); change its permissions or owner, or run as a user who may " +
          verb + " it",
      st.sys_errno())};
}

}  // namespace daxstore::cli
