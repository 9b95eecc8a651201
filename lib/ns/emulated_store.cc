#include "ns/emulated_store.h"

#include <fcntl.h>

#include <set>

namespace daxstore::ns {

std::string StatePath(const std::string& dir) { return dir + "/bus.json"; }
std::string LockPath(const std::string& dir) { return dir + "/bus.lock"; }

Result<std::unique_ptr<LockedBus>> LockedBus::Acquire(
    std::shared_ptr<Platform> platform, const std::string& dir,
    CrashHook hook) {
  if (!platform->Exists(StatePath(dir))) {
    return NotFound("no emulated bus in " + dir +
                    ": create one with 'daxstore emulate create'");
  }
  DAXSTORE_ASSIGN_OR_RETURN(int fd, platform->LockFile(LockPath(dir)));
  std::unique_ptr<LockedBus> bus(
      new LockedBus(std::move(platform), dir, fd, std::move(hook)));
  // The bus may have been destroyed while we waited for the lock.
  if (!bus->platform_->Exists(StatePath(dir))) {
    return NotFound("no emulated bus in " + dir +
                    ": create one with 'daxstore emulate create'");
  }
  DAXSTORE_ASSIGN_OR_RETURN(std::string text,
                            bus->platform_->ReadFile(StatePath(dir)));
  auto state = ParseState(text);
  if (!state.ok()) return state.status().WithContext(dir);
  bus->state_ = std::move(state).value();
  DAXSTORE_RETURN_IF_ERROR(bus->Recover());
  return bus;
}

LockedBus::~LockedBus() { platform_->Close(lock_fd_); }

Status LockedBus::Commit() {
  return platform_->WriteFileAtomic(StatePath(dir_), SerializeState(state_));
}

std::string LockedBus::RegionDir(int region) const {
  return dir_ + "/region" + std::to_string(region);
}

std::string LockedBus::DevicePath(const RegionRecord& r,
                                  const NsRecord& n) const {
  return RegionDir(r.id) + "/" + DeviceFileName(r, n);
}

Status LockedBus::WriteDeviceFile(const RegionRecord& r, const NsRecord& n,
                                  bool wipe) {
  std::string path = DevicePath(r, n);
  DAXSTORE_ASSIGN_OR_RETURN(int fd, platform_->Open(path, O_RDWR | O_CREAT));
  Status st = Status::Ok();
  if (wipe) st = platform_->Truncate(fd, 0);
  // Sparse: the region's bytes cost nothing until written.
  if (st.ok()) st = platform_->Truncate(fd, UsableBytes(n));
  platform_->Close(fd);
  return st.WithContext(path);
}

Status LockedBus::RemoveDeviceFile(const std::string& path) {
  return platform_->Remove(path);
}

void LockedBus::CrashPoint(std::string_view point) const {
  if (hook_) hook_(point);
}

Status LockedBus::Recover() {
  DAXSTORE_ASSIGN_OR_RETURN(auto top, platform_->ListDir(dir_));
  for (const auto& name : top) {
    if (name.rfind("bus.json.tmp.", 0) == 0) {
      DAXSTORE_RETURN_IF_ERROR(platform_->Remove(dir_ + "/" + name));
    }
  }
  for (const auto& r : state_.regions) {
    std::string rdir = RegionDir(r.id);
    DAXSTORE_RETURN_IF_ERROR(platform_->MakeDirs(rdir));
    std::set<std::string> labelled;
    for (const auto& n : r.namespaces) {
      labelled.insert(DeviceFileName(r, n));
      // Bad ranges the mapping layer reads for emulated pmem.
      labelled.insert(DeviceFileName(r, n) + ".badblocks");
      std::string path = DevicePath(r, n);
      uint64_t size = UINT64_MAX;
      if (auto fd = platform_->Open(path, O_RDONLY, 0); fd.ok()) {
        auto st = platform_->Stat(*fd);
        if (st.ok()) size = st->size;
        platform_->Close(*fd);
      }
      // Grown, never shrunk: a device file made under an older size
      // model keeps its tail (its data) and maps whole.
      if (size == UINT64_MAX || size < UsableBytes(n)) {
        DAXSTORE_RETURN_IF_ERROR(WriteDeviceFile(r, n, /*wipe=*/false));
      }
    }
    DAXSTORE_ASSIGN_OR_RETURN(auto files, platform_->ListDir(rdir));
    for (const auto& f : files) {
      if (!labelled.count(f)) {
        DAXSTORE_RETURN_IF_ERROR(platform_->Remove(rdir + "/" + f));
      }
    }
  }
  return Status::Ok();
}

}  // namespace daxstore::ns
