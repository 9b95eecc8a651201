// A userspace NVDIMM bus kept in a directory, for machines without pmem.
//
// Layout of DIR:
//   bus.json          the bus: DIMMs, regions and their namespace labels
//                     (replaced atomically: write a temp file, rename)
//   bus.lock          flock'ed by every operation, so many processes can
//                     share the bus
//   regionN/          one directory per region; each namespace's device is a
//                     sparse file in it named like the kernel's device node
//                     (pmem0, pmem0.1s, dax0.0), sized to the usable bytes
//
// Labels (namespace records) live in bus.json and so survive restarts; the
// device files keep their data. A namespace whose device file another open
// holds a flock on (an image opened on it, e.g. by `daxstore serve`, or a
// Mapping with MapOptions::lock) is in use, as a mounted one is on the
// kernel bus: destroy, reconfigure, disable and init-labels refuse it, even
// forced, until that process closes it (or dies: the lock goes with it). A
// region created label-less behaves like memmap= pmem: one namespace spans it
// and only `create -e` changes it.
#pragma once

#include <memory>
#include <string>

#include "daxstore/mapping.h"
#include "daxstore/namespace.h"
#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore {

struct EmulatedBusConfig {
  int regions = 1;
  int dimms_per_region = 1;           // interleave ways
  uint64_t region_size = 1ull << 30;  // per region; split over its DIMMs
  bool label_less = false;
  // Label areas present but never initialised, as on a fresh QEMU NVDIMM:
  // one raw namespace spans each region until init-labels runs.
  bool uninitialized_labels = false;
  PersistenceDomain persistence = PersistenceDomain::kMemoryController;
};

struct EmulatedOptions {
  std::string dir;
  std::shared_ptr<Platform> platform;  // null: DefaultPlatform()
};

// Creates a bus in options.dir (created if missing). Fails with kBusy if a
// bus already exists there.
Status CreateEmulatedBus(const EmulatedOptions& options,
                         const EmulatedBusConfig& config);

// Removes the bus and every namespace's data. Refuses (kBusy), naming
// them, while a namespace is enabled or its device file stores a non-zero
// byte, or a dax device is online as system-ram, unless force; and while a
// namespace is in use even then.
Status DestroyEmulatedBus(const EmulatedOptions& options, bool force);

// True when options.dir holds a bus.
bool EmulatedBusExists(const EmulatedOptions& options);

// Opens the bus in options.dir. Fails with kNotFound (saying how to create
// one) when there is none. Recovers from a process that died mid-operation:
// device files no label refers to and stale temp files are removed.
Result<std::unique_ptr<NamespaceBackend>> OpenEmulatedBackend(
    EmulatedOptions options);

}  // namespace daxstore
