// One server per image: the process that owns an open image and serves
// every volume of it at once, as qemu-storage-daemon serves several
// exports and a monitor from one process.
//
//  - NBD: every live volume is an export named by the volume (snapshots
//    read-only). The host that speaks NBD (nbdkit with the daxstore
//    plugin) calls NbdExports and OpenNbdExport per connection.
//  - vhost-user-blk: one socket per served volume, each on its own thread.
//  - A control socket (mode 0600): one JSON object per line in each
//    direction, modelled on QMP. The server greets with
//      {"daxstore": {"version": "...", "image": "/abs/path"}}
//    then answers each {"execute": CMD, "arguments": {...}, "id": ANY} with
//    {"return": ..., "id": ANY} or {"error": {"class": KIND, "desc": TEXT,
//    "errno": N}, "id": ANY}. Commands: query-image, query-volumes,
//    query-exports, snapshot {name, volume?}, clone {snapshot, name,
//    group?}, set-group {volume, group} ("" : the volume alone), delete
//    {name}, export-add {type: "nbd"|"vhost-user-blk", volume,
//    socket?, queues?, read-only?}, export-remove {type, volume},
//    export-diff {to-snap, from-snap?, path} (an RBD diff v1 stream,
//    include/daxstore/rbd_diff.h, into the new file `path`, made 0600;
//    returns data_bytes, zero_bytes, records, bytes), query-sharing
//    {volumes?: [NAME...]} (Image::Sharing as JSON: block_size,
//    data_blocks_used, volumes [{name, group, counts...}], total), dedup
//    {scope?: "volume"|"group", volumes?: [NAME...], speed?: BYTES/S}
//    (Image::Dedup while guests write, speed its rate limit; returns
//    remapped_blocks, zero_blocks, freed_blocks, freed_bytes,
//    skipped_blocks), mirror {volume?, to: NBD URI, tls?,
//    tls-psk-file?, tls-certificates?, tls-username?, ready-blocks?,
//    io-timeout? (s)} (starts copying the volume to that NBD export while
//    guests write: lib/mirror/job.h), query-mirrors {volume?},
//    mirror-complete {volume?} (waits until completed or failed) and
//    mirror-cancel {volume?}; each returns a job's status: volume,
//    target, state (running|ready|completed|cancelled|failed), ready,
//    bytes_total, bytes_done, zero_bytes, dirty_blocks, passes, error?.
//    A request line is at most 64 KiB; a longer one, or bytes that are
//    not a JSON object, get an error and the connection is closed.
//
// Volume operations while serving: a snapshot waits for the writes in
// flight and holds new ones until it is made, so it holds every write
// completed before the request and none that started after the reply. A
// volume that a vhost-user-blk export or an open NBD connection uses
// cannot be deleted (kBusy): remove the export or disconnect first.
//
// Thread safety: every method may be called from any thread, except that
// Start, Run and the destructor must not race each other.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daxstore/disk.h"
#include "daxstore/image.h"
#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore {

struct ServedExport {
  enum class Kind { kNbd, kVhostUserBlk };
  Kind kind = Kind::kVhostUserBlk;
  std::string volume;      // "" : the image's default volume
  std::string socket;      // vhost-user-blk: the socket to create (0600)
  uint32_t queues = 1;     // vhost-user-blk: 1 to 64
  bool read_only = false;  // also implied by a snapshot volume
  std::string serial;      // vhost-user-blk GET_ID, <= 20 bytes
};

struct ImageServerOptions {
  DiskSpec disk;  // the image (disk.volume is ignored: every volume)
  // Whether volumes are NBD exports (a host that speaks NBD calls in).
  bool nbd = false;
  // The unix socket NBD clients connect to, when known ("" otherwise):
  // query-exports reports it with each NBD export.
  std::string nbd_socket;
  std::string control_socket;          // "" : no control socket
  std::vector<ServedExport> exports;   // vhost-user-blk exports to start
  bool read_only = false;              // the whole image
  std::shared_ptr<Platform> platform;  // null: DefaultPlatform()
};

class ImageServer {
 public:
  // Opens the image (kBusy if another process has it) and checks every
  // export's volume and socket path, creating nothing yet.
  [[nodiscard]] static Result<std::unique_ptr<ImageServer>> Open(
      const ImageServerOptions& options);
  ~ImageServer();  // stops every thread and removes the sockets it made

  // Creates the sockets and starts the vhost-user-blk and control threads.
  // Call once, in the process that will serve (after any fork).
  Status Start();
  // Start, then block until Stop (a signal handler may call it).
  Status Run();
  // Makes Run return and the threads end soon. Async-signal-safe.
  void Stop();

  // The location served and the default volume's name.
  const DiskLocation& location() const;
  std::string default_volume() const;

  // What the operator should know before clients connect, one sentence
  // each (empty when nothing): the image is flagged corrupt and served
  // read-only, volume table entries are damaged (those volumes are not
  // served). Each names the command that repairs or lists it.
  std::vector<std::string> Warnings() const;

  // NBD: the export names (live volumes not removed with export-remove).
  std::vector<std::string> NbdExports() const;
  // A handle for one NBD connection on export `name` ("" : the default
  // volume). kNotFound if no such export; read-only if asked, or if the
  // image or the volume is. The handle keeps the volume from deletion.
  [[nodiscard]] Result<std::unique_ptr<Image>> OpenNbdExport(
      const std::string& name, bool read_only);

  // One control request (a JSON text) and its reply (a JSON text, one
  // line). The control socket calls this; so may a host.
  std::string Handle(const std::string& request);

  struct State;  // lib/server/

 private:
  explicit ImageServer(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

// The client side of a control socket: connects to `socket`, reads the
// greeting, sends `request` (one JSON object) and returns the reply's text.
// kNotFound when nothing listens there.
[[nodiscard]] Result<std::string> ControlRequest(const std::string& socket,
                                                 const std::string& request,
                                                 int timeout_ms = 60000);
// The greeting's "image" of the server at `socket` (to tell whether it is
// the image one means).
[[nodiscard]] Result<std::string> ControlImagePath(const std::string& socket,
                                                   int timeout_ms = 5000);

}  // namespace daxstore
