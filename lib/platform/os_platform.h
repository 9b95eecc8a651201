// The real OS behind the Platform seam. Tests derive from it to fake one
// piece (a device node, a fault) and keep the rest real.
#pragma once

#include <sys/stat.h>

#include "daxstore/platform.h"

namespace daxstore {

class OsPlatform : public Platform {
 public:
  explicit OsPlatform(std::string sysfs_root);

  Result<int> Open(const std::string& path, int flags, mode_t mode) override;
  void Close(int fd) override;
  Result<FileInfo> Stat(int fd) override;
  Status Truncate(int fd, uint64_t size) override;
  Status Allocate(int fd, uint64_t size) override;
  Result<size_t> PRead(int fd, void* buf, size_t len, uint64_t off) override;
  Result<size_t> PWrite(int fd, const void* buf, size_t len,
                        uint64_t off) override;
  Result<std::string> ReadFile(const std::string& path) override;
  Status WriteFileAtomic(const std::string& path,
                         const std::string& data) override;
  bool Exists(const std::string& path) override;
  Status Remove(const std::string& path) override;
  Result<MountInfo> MountOf(const std::string& path) override;
  Result<FileSystemInfo> FileSystemOf(int fd) override;
  Status MakeDirs(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override;
  Status RemoveDir(const std::string& path) override;
  Result<int> LockFile(const std::string& path) override;
  Status TryLock(int fd, bool exclusive) override;
  Result<std::vector<MountInfo>> Mounts() override;
  Result<FileInfo> StatPath(const std::string& path) override;
  Status SyncFile(int fd) override;
  Status SyncData(int fd) override;
  Result<std::optional<ByteRange>> NextData(int fd, uint64_t from) override;
  Result<std::string> AbsolutePath(const std::string& path) override;

  Result<void*> Map(void* addr, size_t len, int prot, int flags, int fd,
                    uint64_t off) override;
  Status Unmap(void* addr, size_t len) override;
  Status Sync(void* addr, size_t len) override;

  const std::string& sysfs_root() const override { return root_; }
  Result<std::string> ReadSysfs(const std::string& rel) override;
  Status WriteSysfs(const std::string& rel, const std::string& value) override;
  Result<std::vector<std::string>> ListSysfs(const std::string& rel) override;
  Result<std::string> ResolveSysfs(const std::string& rel) override;

  CpuFeatures Cpu() override;

  Result<std::vector<ByteRange>> BadBlocks(int fd) override;
  Status ClearBadBlock(int fd, const ByteRange& range) override;

  Result<SocketPath> ProbeUnixSocket(const std::string& path) override;
  Result<int> ListenUnix(const std::string& path, int backlog) override;
  Result<int> Accept(int listen_fd) override;
  Result<int> ConnectUnix(const std::string& path) override;
  Result<Received> Receive(int fd, void* buf, size_t len, std::vector<int>* fds,
                           size_t max_fds) override;
  Result<size_t> Send(int fd, const void* buf, size_t len) override;
  Result<size_t> SendWithFds(int fd, const void* buf, size_t len,
                             std::span<const int> fds) override;

  Result<int> MakeEvent() override;
  void SignalEvent(int event_fd) override;
  void ConsumeEvent(int event_fd) override;
  Result<int> Wait(std::span<WaitFd> fds, int timeout_ms) override;
  Result<int> Duplicate(int fd) override;
  Result<int> MakeSharedMemory(const std::string& name, uint64_t size) override;
  Result<bool> SizeIsSealed(int fd) override;

  Result<uint32_t> UserId() override;
  std::optional<std::string> Environment(const std::string& name) override;
  bool IsTerminal(int fd) override;
  Result<std::string> FindProgram(const std::string& name) override;
  Status MakePrivateDir(const std::string& path) override;
  Status Exec(const std::vector<std::string>& argv,
              const ExecOptions& options) override;
  Status OnStopSignals(void (*handler)(int)) override;
  Status OnProgressSignal(void (*handler)(int)) override;
  Status Rename(const std::string& from, const std::string& to) override;

 private:
  std::string Abs(const std::string& rel) const;
  std::string root_;
};

// A stat(2) result as a FileInfo.
FileInfo FileInfoOf(const struct ::stat& st);

// Parses /proc/self/mountinfo text and returns the mount holding `path`
// (longest mount-point prefix). Exposed for tests.
Result<MountInfo> FindMount(const std::string& mountinfo,
                            const std::string& path);

// Every mount in /proc/self/mountinfo text. Exposed for tests.
std::vector<MountInfo> ParseMounts(const std::string& mountinfo);

}  // namespace daxstore
