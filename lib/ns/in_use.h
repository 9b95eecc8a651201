// Whether a namespace's device is in use, the two ways both backends ask:
// a flock held by another open (daxstore images and Mapping::Open with
// MapOptions::lock take one on the file or device they map), and, for a
// kernel block device, an exclusive open that fails because a file system
// is mounted on it or another process holds it (what ndctl checks).
#pragma once

#include <string>

#include "daxstore/platform.h"
#include "daxstore/status.h"

namespace daxstore::ns {

// True when another open file holds a flock on path. A missing path is not
// in use.
Result<bool> LockedByAnotherOpen(Platform& p, const std::string& path);

// True when the file at path stores a non-zero byte. Only its data extents
// are read (a new emulated namespace is all hole), at most 64 MiB of them:
// past that, true. A missing file stores nothing.
Result<bool> StoresData(Platform& p, const std::string& path);

// True when the block device cannot be opened O_EXCL (EBUSY).
Result<bool> BlockDeviceBusy(Platform& p, const std::string& path);

}  // namespace daxstore::ns
