// Refusals shared by every verb that writes or formats a target (image
// create, import, export; the namespace and bus verbs get theirs from the
// backend): one file or device under two names, an image another process
// has open, and an open the OS denied. Names never decide: a file is its
// st_dev + st_ino and a device its type + st_rdev, so symlinks, hard links,
// /dev/daxX.Y and a namespace's resolved path all compare by what they are.
// `--force` overrides none of these refusals.
#pragma once

#include <optional>
#include <string>

#include "commands.h"
#include "daxstore/platform.h"
#include "image_target.h"

namespace daxstore::cli {

// What a path is, as the OS knows it.
struct Identity {
  FileInfo::Type type = FileInfo::Type::kOther;
  uint64_t dev = 0, ino = 0;              // files (and everything not a device)
  uint32_t dev_major = 0, dev_minor = 0;  // device nodes
  bool operator==(const Identity& o) const;
};

// What is at path, symlinks followed; nullopt when nothing is there (or
// it cannot be looked up: the verb's own open then says why).
std::optional<Identity> IdentityOf(Platform& os, const std::string& path);

// Throws Failure (kBusy) when src_path and dst_path are one file or
// device. Names are what the user typed, for the message:
//   "cannot export disk.img onto link.raw: they are the same file ..."
void RefuseSameTarget(const std::string& verb, const std::string& src_name,
                      const std::string& src_path, const std::string& dst_name,
                      const std::string& dst_path);

// Throws Failure (kBusy) when another process holds the lock on path (an
// open image: `daxstore serve`, another tool, the C ABI). A missing or
// unreadable path is not held.
void RefuseHeld(const std::string& name, const std::string& path);

// A Failure for a Status from opening `name` (at `path`) to write it, or
// to read it when !write: an open the OS denied (EACCES, EPERM, EROFS)
// says "permission denied" with the path; anything else keeps its message.
Failure Explain(const Status& st, const std::string& name,
                const std::string& path, bool write = true);

// For `image create` on t (named `name`), which holds something that is
// not all zeros: returns when formatting may go ahead, throws Failure
// otherwise. An image (even damaged or needing crash recovery) is never
// formatted over, --force or not; data that is not an image is formatted
// only with force, and the refusal says what formatting would lose.
void RefuseToFormat(const ImageTarget& t, const std::string& name, bool force);

// What replacing or formatting path loses, for a message's parenthesis:
// "its 8 MiB of content is lost", "everything on the device is lost".
std::string WhatIsLost(const std::string& path);

// True when st comes from an open the OS denied.
bool PermissionDenied(const Status& st);

}  // namespace daxstore::cli
