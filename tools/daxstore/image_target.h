// Shared pieces of the `daxstore image`, `serve` and `vm-args` verbs:
// turning a TARGET (a path or a namespace) into what Mapping::Open needs,
// opening the image a server is to serve, and a stderr progress bar.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "daxstore/image.h"
#include "daxstore/mapping.h"
#include "daxstore/platform.h"

namespace daxstore::cli {

struct ImageTarget {
  std::string path;
  MapOptions options;
  std::string ns;  // the namespace's device ("namespace0.0"); "" for a path
};

// TARGET, in this order:
//  - a path: it has a '/' or something exists there;
//  - "daxX.Y" with a /dev/daxX.Y: that device;
//  - a namespace on the bus --bus picks, by device ("namespace0.0", "0.0"),
//    by its dax or block device ("dax0.0", "pmem0") or by its -n name;
//    names of that shape that match nothing fail;
//  - anything else is a path to create; when a bus was there to look on
//    and the word has no '.', with a note on stderr (a mistyped or missing
//    namespace name would otherwise quietly become a file in the working
//    directory; "disk.img" says file on its own).
// `emulate` ("" or a persistence domain) declares a plain file pmem.
// Throws Failure with an actionable line.
ImageTarget ResolveImageTarget(const CLI::App* cmd, const std::string& target,
                               const std::string& emulate);

// Opens the image at t for a server. A namespace that holds no image, or
// whose image something else has open, fails with a line that names the
// namespace and says what to do. Throws Failure.
Image OpenImageToServe(const ImageTarget& t, const std::string& target,
                       bool read_only);

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

// Draws "\rVERB  42% [#####.....]" on stderr while stderr is a terminal;
// does nothing otherwise.
class Progress {
 public:
  Progress(std::string verb, uint64_t total);
  ~Progress();  // ends the line if one was drawn
  void Update(uint64_t done);

 private:
  std::string verb_;
  uint64_t total_;
  bool tty_;
  int last_ = -1;
};

}  // namespace daxstore::cli
