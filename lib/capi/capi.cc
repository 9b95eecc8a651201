// The C ABI (include/daxstore/daxstore.h) over daxstore::Image. Every
// exception-free Status becomes a negative errno plus a thread-local message.
#include <cerrno>
#include <cstring>
#include <new>
#include <span>
#include <string>

#include "daxstore/daxstore.h"
#include "daxstore/disk.h"
#include "daxstore/image.h"

struct daxstore_image {
  daxstore::Image image;
  bool read_only;
};

namespace {

using daxstore::ErrorKind;
using daxstore::Status;

thread_local std::string g_last_error;

// The library's one errno table (daxstore::ErrnoOf), negated.
int ToErrno(const Status& s) { return -daxstore::ErrnoOf(s); }

int Fail(int code, std::string message) {
  g_last_error = std::move(message);
  return code;
}

int Fail(const Status& s) { return Fail(ToErrno(s), s.message()); }

// Checks a handle and an output pointer; returns 0 or a failure code.
int CheckHandle(const daxstore_image* img, const char* fn) {
  if (img == nullptr) {
    return Fail(-EINVAL, std::string(fn) + ": the image handle is NULL");
  }
  return 0;
}

int CheckIov(const iovec* iov, int iovcnt, const char* fn) {
  if (iovcnt < 0 || (iovcnt > 0 && iov == nullptr)) {
    return Fail(-EINVAL,
                std::string(fn) + ": iov must be non-NULL and iovcnt >= 0");
  }
  return 0;
}

ssize_t TotalBytes(const iovec* iov, int iovcnt) {
  size_t n = 0;
  for (int i = 0; i < iovcnt; ++i) n += iov[i].iov_len;
  return static_cast<ssize_t>(n);
}

int Refuse(const daxstore_image* img, const char* fn) {
  if (img->read_only) {
    return Fail(-EROFS, std::string(fn) +
                            ": the image was opened read-only; reopen "
                            "without DAXSTORE_OPEN_READ_ONLY to write");
  }
  return 0;
}

int Emit(daxstore::Result<daxstore::Image> r, bool read_only,
         daxstore_image** out) {
  if (!r.ok()) return Fail(r.status());
  // A snapshot is read-only whatever the flags said. Writes to an image
  // flagged corrupt reach the engine, whose -EUCLEAN says how to repair.
  read_only = read_only || (r->read_only() && !r->corrupt());
  auto* h = new (std::nothrow) daxstore_image{std::move(r).value(), read_only};
  if (h == nullptr) return Fail(-ENOMEM, "out of memory for an image handle");
  *out = h;
  return 0;
}

constexpr unsigned kBusFlags =
    DAXSTORE_OPEN_KERNEL_BUS | DAXSTORE_OPEN_EMULATED_BUS;

// The disk factory's spec for a C ABI target and flags; fails with a
// message naming `fn` for flags it does not know or that contradict.
int SpecFor(const char* target, const char* volume, unsigned flags,
            unsigned allowed, const char* fn, daxstore::DiskSpec* spec) {
  if ((flags & ~allowed) != 0) {
    return Fail(-EINVAL, std::string(fn) + ": unknown flags " +
                             std::to_string(flags & ~allowed));
  }
  if ((flags & kBusFlags) == kBusFlags) {
    return Fail(-EINVAL, std::string(fn) +
                             ": DAXSTORE_OPEN_KERNEL_BUS and "
                             "DAXSTORE_OPEN_EMULATED_BUS exclude each other");
  }
  spec->target = target;
  spec->volume = volume ? volume : "";
  spec->access = (flags & DAXSTORE_OPEN_READ_ONLY) != 0
                     ? daxstore::Access::kReadOnly
                     : daxstore::Access::kReadWrite;
  if (flags & DAXSTORE_EMULATED_PMEM) {
    spec->emulate = daxstore::PersistenceDomain::kMemoryController;
  }
  if (flags & DAXSTORE_OPEN_KERNEL_BUS)
    spec->bus = daxstore::BusSelect::kKernel;
  if (flags & DAXSTORE_OPEN_EMULATED_BUS) {
    spec->bus = daxstore::BusSelect::kEmulated;
  }
  return 0;
}

}  // namespace

extern "C" {

void daxstore_image_options_init(daxstore_image_options* o) {
  if (o == nullptr) return;
  daxstore::ImageOptions d;
  o->virtual_size = 0;
  o->logical_block_size = d.logical_block_size;
  o->block_size = d.block_size;
  o->lanes = d.lanes;
  o->flags = 0;
  o->max_volumes = d.max_volumes;
}

int daxstore_image_create(const char* path, const daxstore_image_options* o,
                          daxstore_image** out) {
  if (path == nullptr || o == nullptr || out == nullptr) {
    return Fail(-EINVAL,
                "daxstore_image_create: path, options and out must be set");
  }
  *out = nullptr;
  daxstore::ImageOptions io;
  io.virtual_size = o->virtual_size;
  io.logical_block_size = o->logical_block_size;
  io.block_size = o->block_size;
  io.lanes = o->lanes;
  io.max_volumes = o->max_volumes;
  daxstore::DiskSpec spec;
  if (int rc =
          SpecFor(path, nullptr, o->flags, DAXSTORE_EMULATED_PMEM | kBusFlags,
                  "daxstore_image_create", &spec)) {
    return rc;
  }
  return Emit(daxstore::CreateDisk(spec, io), false, out);
}

int daxstore_image_open(const char* path, const char* volume, unsigned flags,
                        daxstore_image** out) {
  if (path == nullptr || out == nullptr) {
    return Fail(-EINVAL, "daxstore_image_open: path and out must be set");
  }
  *out = nullptr;
  daxstore::DiskSpec spec;
  if (int rc =
          SpecFor(path, volume, flags,
                  DAXSTORE_OPEN_READ_ONLY | DAXSTORE_EMULATED_PMEM | kBusFlags,
                  "daxstore_image_open", &spec)) {
    return rc;
  }
  return Emit(daxstore::OpenDisk(spec), (flags & DAXSTORE_OPEN_READ_ONLY) != 0,
              out);
}

void daxstore_image_close(daxstore_image* img) { delete img; }

ssize_t daxstore_image_preadv(daxstore_image* img, const iovec* iov, int iovcnt,
                              uint64_t offset) {
  if (int rc = CheckHandle(img, "daxstore_image_preadv")) return rc;
  if (int rc = CheckIov(iov, iovcnt, "daxstore_image_preadv")) return rc;
  Status s = img->image.Readv(
      offset, std::span<const iovec>(iov, static_cast<size_t>(iovcnt)));
  if (!s.ok()) return Fail(s);
  return TotalBytes(iov, iovcnt);
}

ssize_t daxstore_image_pwritev(daxstore_image* img, const iovec* iov,
                               int iovcnt, uint64_t offset) {
  if (int rc = CheckHandle(img, "daxstore_image_pwritev")) return rc;
  if (int rc = CheckIov(iov, iovcnt, "daxstore_image_pwritev")) return rc;
  if (int rc = Refuse(img, "daxstore_image_pwritev")) return rc;
  Status s = img->image.Writev(
      offset, std::span<const iovec>(iov, static_cast<size_t>(iovcnt)));
  if (!s.ok()) return Fail(s);
  return TotalBytes(iov, iovcnt);
}

ssize_t daxstore_image_pread(daxstore_image* img, void* buf, size_t count,
                             uint64_t offset) {
  iovec v{buf, count};
  return daxstore_image_preadv(img, &v, 1, offset);
}

ssize_t daxstore_image_pwrite(daxstore_image* img, const void* buf,
                              size_t count, uint64_t offset) {
  iovec v{const_cast<void*>(buf), count};
  return daxstore_image_pwritev(img, &v, 1, offset);
}

int daxstore_image_flush(daxstore_image* img) {
  if (int rc = CheckHandle(img, "daxstore_image_flush")) return rc;
  Status s = img->image.Flush();
  return s.ok() ? 0 : Fail(s);
}

int daxstore_image_discard(daxstore_image* img, uint64_t offset,
                           uint64_t length) {
  if (int rc = CheckHandle(img, "daxstore_image_discard")) return rc;
  if (int rc = Refuse(img, "daxstore_image_discard")) return rc;
  Status s = img->image.Discard(offset, length);
  return s.ok() ? 0 : Fail(s);
}

int daxstore_image_write_zeroes(daxstore_image* img, uint64_t offset,
                                uint64_t length) {
  if (int rc = CheckHandle(img, "daxstore_image_write_zeroes")) return rc;
  if (int rc = Refuse(img, "daxstore_image_write_zeroes")) return rc;
  Status s = img->image.WriteZeroes(offset, length);
  return s.ok() ? 0 : Fail(s);
}

uint64_t daxstore_image_size(const daxstore_image* img) {
  return img ? img->image.virtual_size() : 0;
}
uint32_t daxstore_image_block_size(const daxstore_image* img) {
  return img ? img->image.block_size() : 0;
}
uint32_t daxstore_image_logical_block_size(const daxstore_image* img) {
  return img ? img->image.logical_block_size() : 0;
}

int daxstore_image_info(const daxstore_image* img,
                        struct daxstore_image_info* info) {
  if (int rc = CheckHandle(img, "daxstore_image_info")) return rc;
  if (info == nullptr)
    return Fail(-EINVAL, "daxstore_image_info: info is NULL");
  auto r = img->image.Info();
  if (!r.ok()) return Fail(r.status());
  info->virtual_size = r->virtual_size;
  info->allocated_bytes = r->allocated_bytes;
  info->metadata_bytes = r->metadata_bytes;
  info->data_blocks = r->data_blocks;
  info->block_size = r->block_size;
  info->logical_block_size = r->logical_block_size;
  info->lanes = r->lanes;
  return 0;
}

const char* daxstore_last_error(void) { return g_last_error.c_str(); }

const char* daxstore_strerror(int code) {
  if (code == -EUCLEAN)
    return "the image is corrupt (run daxstore image check)";
  if (code == -EROFS) return "the image handle is read-only";
  const char* d = strerrordesc_np(code < 0 ? -code : code);
  return d != nullptr ? d : "unknown error code";
}

}  // extern "C"

extern "C" {

int daxstore_image_snapshot(daxstore_image* img, const char* name) {
  if (int rc = CheckHandle(img, "daxstore_image_snapshot")) return rc;
  if (name == nullptr)
    return Fail(-EINVAL, "daxstore_image_snapshot: name is NULL");
  Status s = img->image.Snapshot(name);
  return s.ok() ? 0 : Fail(s);
}

int daxstore_image_clone(daxstore_image* img, const char* snapshot,
                         const char* name) {
  if (int rc = CheckHandle(img, "daxstore_image_clone")) return rc;
  if (snapshot == nullptr || name == nullptr) {
    return Fail(-EINVAL, "daxstore_image_clone: snapshot and name must be set");
  }
  if (int rc = Refuse(img, "daxstore_image_clone")) return rc;
  Status s = img->image.Clone(snapshot, name);
  return s.ok() ? 0 : Fail(s);
}

int daxstore_image_delete_volume(daxstore_image* img, const char* name) {
  if (int rc = CheckHandle(img, "daxstore_image_delete_volume")) return rc;
  if (name == nullptr) {
    return Fail(-EINVAL, "daxstore_image_delete_volume: name is NULL");
  }
  if (int rc = Refuse(img, "daxstore_image_delete_volume")) return rc;
  Status s = img->image.DeleteVolume(name);
  return s.ok() ? 0 : Fail(s);
}

int daxstore_image_open_volume(const daxstore_image* img, const char* volume,
                               daxstore_image** out) {
  if (int rc = CheckHandle(img, "daxstore_image_open_volume")) return rc;
  if (volume == nullptr || out == nullptr) {
    return Fail(-EINVAL,
                "daxstore_image_open_volume: volume and out must be set");
  }
  *out = nullptr;
  return Emit(img->image.OpenVolume(volume), img->read_only, out);
}

int daxstore_image_list_volumes(const daxstore_image* img,
                                daxstore_volume_info* volumes,
                                size_t capacity) {
  if (int rc = CheckHandle(img, "daxstore_image_list_volumes")) return rc;
  if (capacity > 0 && volumes == nullptr) {
    return Fail(
        -EINVAL,
        "daxstore_image_list_volumes: volumes is NULL but capacity > 0");
  }
  auto r = img->image.Volumes();
  if (!r.ok()) return Fail(r.status());
  // Damaged volume table entries cannot be opened: daxstore image check
  // lists them.
  std::erase_if(*r, [](const daxstore::VolumeInfo& v) { return v.damaged; });
  for (size_t i = 0; i < r->size() && i < capacity; i++) {
    const daxstore::VolumeInfo& v = (*r)[i];
    daxstore_volume_info& o = volumes[i];
    std::memset(&o, 0, sizeof(o));
    std::strncpy(o.name, v.name.c_str(), sizeof(o.name) - 1);
    std::strncpy(o.parent, v.parent.c_str(), sizeof(o.parent) - 1);
    o.snapshot = v.snapshot ? 1 : 0;
    o.created_unix_ns = v.created_unix_ns;
    o.mapped_blocks = v.mapped_blocks;
    o.unique_blocks = v.unique_blocks;
  }
  return static_cast<int>(r->size());
}

}  // extern "C"
