// Exclusive access to an emulated bus directory: takes bus.lock, reads
// bus.json, and repairs what a process that died mid-operation left
// behind. Every mutation follows one order, so any crash leaves a
// consistent bus:
//   create:  device file written -> bus.json published
//   destroy: bus.json published -> device file removed
// On acquire, device files no label refers to are removed, labelled ones
// that are missing are recreated and short ones grown (sparse; a longer
// one is left as it is, data and all), and stale temp files of bus.json
// are deleted.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "daxstore/platform.h"
#include "ns/emulated_state.h"

namespace daxstore::ns {

using CrashHook = std::function<void(std::string_view)>;

class LockedBus {
 public:
  // Fails with kNotFound when dir holds no bus.
  static Result<std::unique_ptr<LockedBus>> Acquire(
      std::shared_ptr<Platform> platform, const std::string& dir,
      CrashHook hook);
  ~LockedBus();  // releases the lock
  LockedBus(const LockedBus&) = delete;
  LockedBus& operator=(const LockedBus&) = delete;

  BusState& state() { return state_; }
  // Publishes state() atomically.
  Status Commit();

  std::string RegionDir(int region) const;
  std::string DevicePath(const RegionRecord& r, const NsRecord& n) const;
  // Makes the namespace's device file exist with its usable size; with
  // wipe, its old content is discarded first.
  Status WriteDeviceFile(const RegionRecord& r, const NsRecord& n, bool wipe);
  Status RemoveDeviceFile(const std::string& path);
  // Calls the test hook, if any.
  void CrashPoint(std::string_view point) const;

  Platform& platform() { return *platform_; }

 private:
  LockedBus(std::shared_ptr<Platform> p, std::string dir, int lock_fd,
            CrashHook hook)
      : platform_(std::move(p)),
        dir_(std::move(dir)),
        lock_fd_(lock_fd),
        hook_(std::move(hook)) {}
  Status Recover();

  std::shared_ptr<Platform> platform_;
  std::string dir_;
  int lock_fd_;
  CrashHook hook_;
  BusState state_;
};

std::string StatePath(const std::string& dir);  // DIR/bus.json
std::string LockPath(const std::string& dir);   // DIR/bus.lock

}  // namespace daxstore::ns
