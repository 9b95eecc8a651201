// nbdkit-daxstore-plugin: exports a daxstore VM image over NBD.
//
//   nbdkit daxstore image=PATH          (read-write)
//   nbdkit -r daxstore image=PATH       (read-only)
//   nbdkit daxstore image=PATH emulate=memory_controller  (a plain file
//                                       declared pmem: no msync per write)
//   nbdkit daxstore image=PATH threads=serial|parallel  (default serial)
//
// One Image per nbdkit process, shared by every connection: it is opened by
// the first connection (read-only if that connection is) and closed when
// nbdkit unloads the plugin. The engine is thread-safe, so any thread model
// is correct; `threads=` picks one (see ThreadModel below).
//
// Every Write, Discard and WriteZeroes of the engine is durable when it
// returns, so:
//   - FUA is native: a write with FUA needs nothing more than the write;
//   - flush is a fence and can never lose data another connection wrote;
//   - multi-conn is safe: a flush on any connection covers every write any
//     connection completed before it (they were all durable already).
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "daxstore/image.h"

namespace {

using daxstore::Access;
using daxstore::ErrorKind;
using daxstore::Image;
using daxstore::MapOptions;
using daxstore::Status;

std::string g_path;
std::optional<daxstore::PersistenceDomain> g_emulate;
std::mutex g_mu;                 // guards opening g_image
std::unique_ptr<Image> g_image;  // set once, then read-only until unload
bool g_image_readonly = false;
// nbdkit's thread model for this plugin (threads=): parallel lets nbdkit
// run several requests of one connection at once on its worker threads;
// serial (SERIALIZE_REQUESTS) has it run each connection's requests one at
// a time on the connection's own thread, connections still in parallel.
// Serial is the default: an engine write (~1 us on tmpfs) costs less than
// handing the request to a worker, so one connection (a VM's) goes faster
// on its own thread; parallel gains only with several busy connections
// (docs/serving.md, "NBD thread model").
int g_thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;

int ErrnoOf(const Status& s) {
  switch (s.kind()) {
    case ErrorKind::kInvalidArgument:
      return EINVAL;
    case ErrorKind::kNotFound:
      return ENOENT;
    case ErrorKind::kUnsupported:
      return EOPNOTSUPP;
    case ErrorKind::kBusy:
      return EBUSY;
    case ErrorKind::kNoSpace:
      return ENOSPC;
    default:
      return EIO;
  }
}

// Reports a failed Status to nbdkit; returns -1 (nbdkit's error value).
int Fail(const Status& s) {
  nbdkit_error("daxstore: %s", s.message().c_str());
  nbdkit_set_error(ErrnoOf(s));
  return -1;
}

void Unload() { g_image.reset(); }

int Config(const char* key, const char* value) {
  if (std::strcmp(key, "image") == 0) {
    char* abs = nbdkit_absolute_path(value);
    if (abs == nullptr) return -1;
    g_path = abs;
    free(abs);
    return 0;
  }
  if (std::strcmp(key, "emulate") == 0) {
    // A plain file declared pmem, as the emulated bus declares its
    // namespaces: for benchmarks and tests on machines without pmem.
    if (std::strcmp(value, "memory_controller") == 0) {
      g_emulate = daxstore::PersistenceDomain::kMemoryController;
    } else if (std::strcmp(value, "cpu_cache") == 0) {
      g_emulate = daxstore::PersistenceDomain::kCpuCache;
    } else {
      nbdkit_error(
          "daxstore: emulate=%s: use emulate=memory_controller or "
          "emulate=cpu_cache",
          value);
      return -1;
    }
    return 0;
  }
  if (std::strcmp(key, "threads") == 0) {
    if (std::strcmp(value, "parallel") == 0) {
      g_thread_model = NBDKIT_THREAD_MODEL_PARALLEL;
    } else if (std::strcmp(value, "serial") == 0) {
      g_thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;
    } else {
      nbdkit_error(
          "daxstore: threads=%s: use threads=parallel or "
          "threads=serial",
          value);
      return -1;
    }
    return 0;
  }
  nbdkit_error(
      "daxstore: unknown parameter '%s' (use image=PATH [emulate=DOMAIN] "
      "[threads=serial|parallel])",
      key);
  return -1;
}

int ConfigComplete() {
  if (g_path.empty()) {
    nbdkit_error("daxstore: give the image to export: image=PATH");
    return -1;
  }
  return 0;
}

void* Open(int readonly) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_image == nullptr) {
    MapOptions options;
    options.access = readonly ? Access::kReadOnly : Access::kReadWrite;
    options.emulate = g_emulate;
    auto image = Image::Open(g_path, options);
    if (!image.ok()) {
      Fail(image.status());
      return nullptr;
    }
    g_image = std::make_unique<Image>(std::move(image).value());
    g_image_readonly = readonly != 0;
  } else if (g_image_readonly && !readonly) {
    nbdkit_error("daxstore: %s is open read-only in this nbdkit process",
                 g_path.c_str());
    nbdkit_set_error(EROFS);
    return nullptr;
  }
  return g_image.get();
}

// nbdkit calls this after config_complete and uses the lower of it and
// THREAD_MODEL (below).
int ThreadModel() { return g_thread_model; }

Image& ImageOf(void* handle) { return *static_cast<Image*>(handle); }

int64_t GetSize(void* handle) {
  return static_cast<int64_t>(ImageOf(handle).virtual_size());
}

// Minimum 1: the engine reads and writes any byte range (it does the
// read-modify-write of partial blocks itself). Preferred: the engine's
// block, the unit it writes out of place; smaller writes cost a copy of the
// rest of the block. Maximum: no limit of ours.
int BlockSize(void* handle, uint32_t* minimum, uint32_t* preferred,
              uint32_t* maximum) {
  const Image& image = ImageOf(handle);
  *minimum = 1;  // the engine handles any byte range
  *preferred = image.block_size();
  *maximum = 0xffffffff;
  return 0;
}

int Yes(void*) { return 1; }
int CanFua(void*) { return NBDKIT_FUA_NATIVE; }
int CanCache(void*) { return NBDKIT_CACHE_NONE; }

int Pread(void* handle, void* buf, uint32_t count, uint64_t offset,
          uint32_t flags) {
  Status s = ImageOf(handle).Read(offset, buf, count);
  return s.ok() ? 0 : Fail(s);
}

// Durable on return, so FUA needs nothing more (see the top of the file).
int Pwrite(void* handle, const void* buf, uint32_t count, uint64_t offset,
           uint32_t flags) {
  Status s = ImageOf(handle).Write(offset, buf, count);
  return s.ok() ? 0 : Fail(s);
}

// Every completed write is already durable; Flush is the engine's fence.
int Flush(void* handle, uint32_t flags) {
  Status s = ImageOf(handle).Flush();
  return s.ok() ? 0 : Fail(s);
}

int Trim(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  Status s = ImageOf(handle).Discard(offset, count);
  return s.ok() ? 0 : Fail(s);
}

// Whole blocks become holes (cheap: one map entry each); only the partial
// blocks at either end are written, so a fast zero never falls back to a
// slow write of zeros worth refusing.
int Zero(void* handle, uint32_t count, uint64_t offset, uint32_t flags) {
  Status s = ImageOf(handle).WriteZeroes(offset, count);
  return s.ok() ? 0 : Fail(s);
}

int Extents(void* handle, uint32_t count, uint64_t offset, uint32_t flags,
            struct nbdkit_extents* extents) {
  // REQ_ONE: the client needs only the first extent.
  size_t max = (flags & NBDKIT_FLAG_REQ_ONE) ? 1 : SIZE_MAX;
  auto runs = ImageOf(handle).Extents(offset, count, max);
  if (!runs.ok()) return Fail(runs.status());
  for (const auto& e : runs.value()) {
    uint32_t type = e.hole ? (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) : 0;
    if (nbdkit_add_extent(extents, e.offset, e.length, type) == -1) return -1;
  }
  return 0;
}

struct nbdkit_plugin MakePlugin() {
  struct nbdkit_plugin p = {};
  p.name = "daxstore";
  p.longname = "daxstore pmem VM image";
  p.version = "0.1.0";
  p.description = "Export a daxstore VM disk image";
  p.unload = Unload;
  p.config = Config;
  p.config_complete = ConfigComplete;
  p.config_help =
      "image=PATH    (required) the daxstore image to export\n"
      "emulate=memory_controller|cpu_cache  treat a plain file as pmem\n"
      "threads=serial|parallel  requests of one connection one at a time\n"
      "              on the connection's thread (default), or in parallel\n"
      "              on nbdkit's worker threads";
  p.magic_config_key = "image";
  p.thread_model = ThreadModel;
  p.open = Open;
  p.get_size = GetSize;
  p.block_size = BlockSize;
  p.can_write = Yes;
  p.can_flush = Yes;
  p.can_trim = Yes;
  p.can_zero = Yes;
  p.can_fast_zero = Yes;
  p.can_extents = Yes;
  p.can_multi_conn = Yes;
  p.can_fua = CanFua;
  p.can_cache = CanCache;
  p.pread = Pread;
  p.pwrite = Pwrite;
  p.flush = Flush;
  p.trim = Trim;
  p.zero = Zero;
  p.extents = Extents;
  return p;
}

}  // namespace

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
static struct nbdkit_plugin plugin = MakePlugin();
NBDKIT_REGISTER_PLUGIN(plugin)
