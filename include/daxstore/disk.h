// One way to open a disk. Every front end (the CLI, both servers, vm-args,
// the nbdkit plugin and the C ABI) turns what a user names into an open
// volume of an image through these two calls, so a name means the same
// thing everywhere and every failure reads the same.
//
// A target is, in this order:
//  - a path: it has a '/' or something exists there;
//  - "daxX.Y" with a /dev/daxX.Y: that kernel device-DAX device;
//  - a namespace on the bus `bus` picks, by device ("namespace0.0", "0.0"),
//    by its dax or block device ("dax0.0", "pmem0"), or by its -n name;
//    a word of a device's shape that matches nothing fails with kNotFound;
//  - anything else is a path in the working directory (a new file, for
//    the verbs that create one). When a bus was there to look on and the
//    word has no '.', DiskLocation::note says so: a mistyped or missing
//    namespace name would otherwise quietly become a file.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "daxstore/image.h"
#include "daxstore/mapping.h"
#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore {

enum class BusSelect {
  kAuto,      // the kernel's NVDIMM bus if there is one, else the emulated
  kKernel,    // the kernel's (libndctl)
  kEmulated,  // the emulated bus in DiskSpec::emulated_dir
};

struct DiskSpec {
  std::string target;  // see the top of this file
  std::string volume;  // "" : the image's default volume ("base")
  Access access = Access::kReadWrite;
  // Declares a plain file pmem with this persistence domain (tests and
  // benchmarks without pmem). A namespace of the emulated bus is declared
  // by the bus itself.
  std::optional<PersistenceDomain> emulate;
  BusSelect bus = BusSelect::kAuto;
  // The emulated bus's directory; "" : DefaultEmulatedDir().
  std::string emulated_dir;
  std::shared_ptr<Platform> platform;  // null: DefaultPlatform()
};

// Where a target lives and how to map it.
struct DiskLocation {
  std::string path;    // what Mapping::Open maps
  MapOptions options;  // access and emulate as the spec and the bus say
  std::string ns;      // the namespace's device ("namespace0.0"); "" else
  std::string bus;     // "kernel" or "emulated" when a bus was consulted
  // A line the user should read (which bus --bus auto picked, or that a
  // bare word became a file); "" when there is nothing to say.
  std::string note;
  // "namespace0.0 (/dev/dax0.0)" or the path: for messages.
  std::string Describe() const;
  // The name servers derive default socket names from: the namespace's
  // device, else the path's last component.
  std::string BaseName() const;
};

// $DAXSTORE_EMULATED_DIR, else /var/lib/daxstore/emulated for root, else
// $XDG_DATA_HOME/daxstore/emulated or ~/.local/share/daxstore/emulated.
std::string DefaultEmulatedDir(Platform& platform);

// Resolves spec.target without opening anything. Fails with kNotFound for
// a device-shaped name that matches nothing, kInvalidArgument when a name
// matches several namespaces, and the bus's own error when an explicitly
// chosen bus cannot be opened.
[[nodiscard]] Result<DiskLocation> LocateDisk(const DiskSpec& spec);

// Locates spec.target and opens spec.volume of the image there (replaying
// what a crash left, as Image::Open does). Failures say what to do: a
// namespace that holds no image names the create command, a busy one says
// another server has it, a missing volume lists how to see them. `where`,
// if set, receives the location (also on failure, when it was found).
[[nodiscard]] Result<Image> OpenDisk(const DiskSpec& spec,
                                     DiskLocation* where = nullptr);

// Creates an image at a located target and opens it read-write. A file is
// created (or an existing one formatted, as Image::Create does); a
// namespace is formatted whole (its size, whatever the file layout asks)
// and only when no image is there: one that opens, or one that fails to
// open for any reason but "no image here" (busy, damaged, crashed), is
// refused with kBusy or that failure. Fails with kBusy when another
// process has the target open.
[[nodiscard]] Result<Image> CreateDiskAt(const DiskLocation& where,
                                         const ImageOptions& options);

// LocateDisk, then CreateDiskAt. spec.volume is ignored.
[[nodiscard]] Result<Image> CreateDisk(const DiskSpec& spec,
                                       const ImageOptions& options,
                                       DiskLocation* where = nullptr);

}  // namespace daxstore
