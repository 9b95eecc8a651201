// Shared pieces of the `daxstore image`, `serve` and `vm-args` verbs:
// turning a TARGET (a path or a namespace) into what Mapping::Open needs,
// opening the image a server is to serve, and a stderr progress bar.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "daxstore/disk.h"
#include "daxstore/image.h"
#include "daxstore/mapping.h"
#include "daxstore/platform.h"

namespace daxstore::cli {

struct ImageTarget {
  std::string path;
  MapOptions options;
  std::string ns;  // the namespace's device ("namespace0.0"); "" for a path
};

// The library's DiskSpec for TARGET with the global --bus and
// --emulated-dir options of cmd's tree. `emulate` ("" or a persistence
// domain) declares a plain file pmem.
DiskSpec SpecFor(const CLI::App* cmd, const std::string& target,
                 const std::string& emulate);

// TARGET located as LocateDisk does (include/daxstore/disk.h), its note
// printed on stderr. Throws Failure with an actionable line.
ImageTarget ResolveImageTarget(const CLI::App* cmd, const std::string& target,
                               const std::string& emulate);

// Opens `volume` ("" the default) of the image TARGET names, for a server
// (OpenDisk). Throws Failure with a line that says what to do. `where`, if
// set, receives the location.
Image OpenImageToServe(const CLI::App* cmd, const std::string& target,
                       const std::string& volume, bool read_only,
                       ImageTarget* where = nullptr);

// Whether formatting t as an image loses nothing: t is a regular file that
// is missing, empty, or stores no non-zero byte (only its data extents are
// read: a new emulated namespace is all hole, and tmpfs fills the holes an
// earlier open read through a shared mapping with zero pages; at most
// 64 MiB of extents, past that it is assumed to hold data), or a device
// whose first 4 MiB and last 1 MiB are zeros (where partition tables, file
// systems and pools keep their headers; a whole device is not read).
bool FormatLosesNothing(const ImageTarget& t);

// Creates an image at t. A namespace keeps its size (an emulated one's
// backing file is not grown: the image's data blocks are what fits, thin
// provisioned like a device's); a path is created or grown to what the
// layout needs. Throws Failure (kBusy when t already holds an image).
Image CreateImage(const ImageTarget& t, const ImageOptions& o);

// The file name servers and vm-args derive default socket names from: the
// namespace's device name, else the path's last component.
std::string TargetBaseName(const ImageTarget& t);

// Where servers put their sockets by default: $XDG_RUNTIME_DIR/daxstore,
// else /tmp/daxstore-UID. With `create`, made 0700 and checked to be ours
// (throws Failure otherwise, naming `option` as the way around it).
std::string SocketDir(bool create, const std::string& option = "--socket");
// The control socket `daxstore serve` makes for t by default, and where
// the image verbs look for a server holding t: SocketDir()/NAME.ctl.
std::string DefaultControlSocket(const ImageTarget& t);

// The options of a verb that sends ImageRequest/ServerRequest: --emulate,
// --control and --output.
void AddImageRequestOptions(CLI::App* verb, std::string* emulate,
                            std::string* control);

// One control request on the image TARGET names: answered by the image
// itself when no other process has it open, else by the control socket
// of the server that does (`control`, or DefaultControlSocket), after
// checking that server serves this very image. `write`: the request
// changes the image. Returns the reply's "return"; throws Failure with
// the server's message on an error reply.
nlohmann::json ImageRequest(const CLI::App* cmd, const std::string& target,
                            const std::string& emulate,
                            const std::string& control,
                            const nlohmann::json& request, bool write);

// ImageRequest for requests only a running server can answer (a mirror,
// which follows the guests' writes): fails with `why` when no server has
// the image open.
nlohmann::json ServerRequest(const CLI::App* cmd, const std::string& target,
                             const std::string& emulate,
                             const std::string& control,
                             const nlohmann::json& request,
                             const std::string& why);

}  // namespace daxstore::cli
