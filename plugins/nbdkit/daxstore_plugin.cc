// nbdkit-daxstore-plugin: serves every volume of a daxstore VM image over
// NBD, and optionally the same image's vhost-user-blk sockets and control
// socket, from the one nbdkit process that owns the image.
//
//   nbdkit daxstore image=TARGET [volume=NAME] [vhost=VOLUME:SOCKET[:QUEUES]]
//          [control=SOCKET] [bus=auto|kernel|emulated] [emulated-dir=DIR]
//          [emulate=memory_controller|cpu_cache] [threads=serial|parallel]
//
// TARGET is a file, /dev/daxX.Y or a namespace by device or -n name
// (include/daxstore/disk.h). Every live volume is an export named by the
// volume (`nbdinfo --list`); snapshots are read-only; the default export
// ("") is volume= or the image's own disk. The image is opened once, in
// get_ready, and shared by every connection; each connection holds its own
// handle on its volume, so a volume in use cannot be deleted under it.
//
// Every Write, Discard and WriteZeroes of the engine is durable when it
// returns, so:
//   - FUA is native: a write with FUA needs nothing more than the write;
//   - flush is a fence and can never lose data another connection wrote;
//   - multi-conn is safe: a flush on any connection covers every write any
//     connection completed before it (they were all durable already).
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "daxstore/image_server.h"
#include "plugin_config.h"

namespace {

using daxstore::Image;
using daxstore::Status;
namespace cfg = daxstore::nbdkit_plugin;

cfg::Config g_config;
std::unique_ptr<daxstore::ImageServer> g_server;

// One NBD connection: its own handle on its volume.
struct Handle {
  std::unique_ptr<Image> image;
  bool read_only;
};

// Reports a failed Status to nbdkit; returns -1 (nbdkit's error value).
int Fail(const Status& s) {
  nbdkit_error("daxstore: %s", s.message().c_str());
  nbdkit_set_error(daxstore::ErrnoOf(s));
  return -1;
}

int Config(const char* key, const char* value) {
  Status st = cfg::Apply(&g_config, key, value);
  if (!st.ok()) {
    nbdkit_error("daxstore: %s", st.message().c_str());
    return -1;
  }
  if (std::strcmp(key, "image") == 0 &&
      (std::strchr(value, '/') != nullptr || access(value, F_OK) == 0)) {
    // A path is taken from where nbdkit started (it may chdir later).
    char* abs = nbdkit_absolute_path(value);
    if (abs == nullptr) return -1;
    g_config.server.disk.target = abs;
    free(abs);
  }
  return 0;
}

int ConfigComplete() {
  Status st = cfg::Complete(&g_config);
  if (!st.ok()) {
    nbdkit_error("daxstore: %s", st.message().c_str());
    return -1;
  }
  return 0;
}

// Opens the image before nbdkit listens, so a missing, busy or corrupt one
// stops nbdkit with our message instead of failing each connection.
int GetReady() {
  auto server = daxstore::ImageServer::Open(g_config.server);
  if (!server.ok()) return Fail(server.status());
  g_server = std::move(server).value();
  return 0;
}

// nbdkit has bound its sockets by now (and forked, if it does): threads
// start here, and the announcement is true once it is printed.
int AfterFork() {
  Status st = g_server->Start();
  if (!st.ok()) return Fail(st);
  if (!g_config.announce.empty()) {
    std::fprintf(stderr, "%s\n", g_config.announce.c_str());
    std::fflush(stderr);
  }
  cfg::NotifyReady();
  return 0;
}

void Unload() { g_server.reset(); }

int ListExports(int readonly, int is_tls, struct nbdkit_exports* exports) {
  for (const std::string& name : g_server->NbdExports()) {
    if (nbdkit_add_export(exports, name.c_str(), nullptr) == -1) return -1;
  }
  return 0;
}

const char* DefaultExport(int readonly, int is_tls) {
  return nbdkit_strdup_intern(g_config.default_volume.empty()
                                  ? g_server->default_volume().c_str()
                                  : g_config.default_volume.c_str());
}

void* Open(int readonly) {
  const char* name = nbdkit_export_name();
  std::string want = name != nullptr ? name : "";
  if (want.empty()) want = g_config.default_volume;
  auto image = g_server->OpenNbdExport(want, readonly != 0);
  if (!image.ok()) {
    Fail(image.status());
    return nullptr;
  }
  auto* h = new Handle{std::move(image).value(), readonly != 0};
  h->read_only = h->read_only || h->image->read_only();
  return h;
}

void Close(void* handle) { delete static_cast<Handle*>(handle); }

// nbdkit calls this after config_complete and uses the lower of it and
// THREAD_MODEL (below). threads=parallel lets nbdkit run several requests
// of one connection at once on its worker threads; serial (the default,
// SERIALIZE_REQUESTS) runs each connection's requests one at a time on the
// connection's own thread, connections still in parallel: an engine write
// (~1 us on tmpfs) costs less than handing the request to a worker, so one
// connection (a VM's) goes faster on its own thread; parallel gains only
// with several busy connections (docs/serving.md, "NBD thread model").
int ThreadModel() {
  return g_config.parallel ? NBDKIT_THREAD_MODEL_PARALLEL
                           : NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;
}

Image& ImageOf(void* handle) { return *static_cast<Handle*>(handle)->image; }

int64_t GetSize(void* handle) {
  return static_cast<int64_t>(ImageOf(handle).virtual_size());
}

// Minimum 1: the engine reads and writes any byte range (it does the
// read-modify-write of partial blocks itself). Preferred: the engine's
// block, the unit it writes out of place; smaller writes cost a copy of the
// rest of the block. Maximum: no limit of ours.
int BlockSize(void* handle, uint32_t* minimum, uint32_t* preferred,
              uint32_t* maximum) {
  *minimum = 1;
  *preferred = ImageOf(handle).block_size();
  *maximum = 0xffffffff;
  return 0;
}

int Yes(void*) { return 1; }
int CanWrite(void* handle) { return !static_cast<Handle*>(handle)->read_only; }
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
  p.description = "Export every volume of a daxstore VM disk image";
  p.unload = Unload;
  p.config = Config;
  p.config_complete = ConfigComplete;
  p.config_help = cfg::kHelp;
  p.magic_config_key = "image";
  p.thread_model = ThreadModel;
  p.get_ready = GetReady;
  p.after_fork = AfterFork;
  p.list_exports = ListExports;
  p.default_export = DefaultExport;
  p.open = Open;
  p.close = Close;
  p.get_size = GetSize;
  p.block_size = BlockSize;
  p.can_write = CanWrite;
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
