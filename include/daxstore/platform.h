// The one seam between daxstore and the operating system: files, mmap,
// sysfs, mounts and CPU features. Everything in daxstore that touches the OS
// goes through a Platform, so tests can hand in a fake sysfs tree or inject
// faults without link-time tricks or environment variables.
//
// Thread safety: implementations must be safe to call from many threads.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daxstore/status.h"

namespace daxstore {

struct FileInfo {
  enum class Type { kRegular, kCharDevice, kBlockDevice, kDirectory, kOther };
  Type type = Type::kOther;
  uint64_t size = 0;       // st_size (0 for devices)
  uint32_t dev_major = 0;  // of st_rdev, for device nodes
  uint32_t dev_minor = 0;
  // st_dev and st_ino: the file itself. Two paths name one file when both
  // are equal (symlinks and hard links included); a device node's other
  // names (/dev/daxX.Y aliases) share its type and dev_major/dev_minor.
  uint64_t dev = 0;
  uint64_t ino = 0;
};

// The filesystem a path lives on, from the mount table.
struct MountInfo {
  std::string mount_point;  // e.g. "/mnt/pmem0"
  std::string fs_type;      // e.g. "ext4", "xfs", "tmpfs"
  std::string source;       // e.g. "/dev/pmem0"
  std::string options;      // e.g. "rw,relatime,dax=always"
  bool dax() const;         // mounted with -o dax / dax=always
};

struct CpuFeatures {
  bool clflush = false;
  bool clflushopt = false;
  bool clwb = false;
  bool sse2 = false;
  bool avx = false;
  bool avx512f = false;
  bool movdir64b = false;
  // The best available flush instruction's name: "clwb", "clflushopt",
  // "clflush" or "none".
  std::string flush_instruction() const;
};

// The file system an open file lives on (fstatfs).
struct FileSystemInfo {
  uint64_t magic = 0;  // statfs f_type, e.g. 0x01021994 for tmpfs
  // tmpfs and ramfs keep file data in memory only: msync and fsync have no
  // backing store to write to and return at once. Data there survives a
  // process crash, not a reboot or a power loss.
  bool memory_only() const;
  // "tmpfs", "ramfs", or "" for any other file system.
  std::string_view memory_fs_name() const;
};

// A byte range [offset, offset + length).
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const ByteRange&) const = default;
};

// What is at a unix socket path (Platform::ProbeUnixSocket).
enum class SocketPath {
  kAbsent,     // nothing: free to listen on
  kStale,      // a socket nobody listens on (left by a dead server)
  kLive,       // a socket a server accepts connections on
  kNotSocket,  // a file, directory or anything else
};

// What one Platform::Receive got.
struct Received {
  size_t bytes = 0;            // 0 without would_block: the peer closed
  bool would_block = false;    // nothing to read yet; wait and try again
  bool fds_truncated = false;  // descriptors beyond max_fds were dropped
};

// One descriptor for Platform::Wait.
struct WaitFd {
  int fd = -1;
  bool write = false;  // wait until writable (default: readable)
  // Set by Wait:
  bool ready = false;   // readable/writable, or failed
  bool failed = false;  // an error, a hang-up or not an open descriptor
};

struct ExecOptions {
  int umask = -1;  // set this umask in the new program (-1: keep ours)
};

class Platform {
 public:
  virtual ~Platform() = default;

  // --- files (fds are plain POSIX descriptors) ---
  virtual Result<int> Open(const std::string& path, int flags,
                           mode_t mode = 0644) = 0;
  virtual void Close(int fd) = 0;
  virtual Result<FileInfo> Stat(int fd) = 0;
  virtual Status Truncate(int fd, uint64_t size) = 0;
  // Allocates blocks for [0, size) (posix_fallocate).
  virtual Status Allocate(int fd, uint64_t size) = 0;
  virtual Result<size_t> PRead(int fd, void* buf, size_t len, uint64_t off) = 0;
  virtual Result<size_t> PWrite(int fd, const void* buf, size_t len,
                                uint64_t off) = 0;
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Replaces the file's content atomically (write temp, rename).
  virtual Status WriteFileAtomic(const std::string& path,
                                 const std::string& data) = 0;
  virtual bool Exists(const std::string& path) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Renames `from` to `to`, replacing `to` (rename(2): one file system).
  virtual Status Rename(const std::string& from, const std::string& to);
  virtual Result<MountInfo> MountOf(const std::string& path) = 0;
  // The file system of an open file. The default fails with kUnsupported
  // (callers then assume a file system with a backing store).
  virtual Result<FileSystemInfo> FileSystemOf(int fd);

  // --- directories and locks (the defaults fail with kUnsupported) ---
  // Creates path and its missing parents (mkdir -p).
  virtual Status MakeDirs(const std::string& path);
  // Entry names in a directory (no "." or ".."), sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path);
  // Removes an empty directory; a missing one is not an error.
  virtual Status RemoveDir(const std::string& path);
  // Opens (creating) path and takes an exclusive flock on it, waiting for
  // other holders. Close(fd) releases it; so does the process dying.
  virtual Result<int> LockFile(const std::string& path);
  // Takes a flock on an open fd without waiting: exclusive or shared.
  // kBusy if another open file holds a conflicting lock. Closing fd
  // releases it. The default (platforms without locks) does nothing.
  virtual Status TryLock(int fd, bool exclusive);
  // Every mount in the mount table.
  virtual Result<std::vector<MountInfo>> Mounts();

  // --- paths and file durability (the defaults fail with kUnsupported) ---
  // What is at path, following symlinks; kNotFound when nothing is there.
  virtual Result<FileInfo> StatPath(const std::string& path);
  // The first extent of a regular file at or after `from` that stores data
  // (SEEK_DATA to SEEK_HOLE); nullopt when only holes follow. A file only
  // ever truncated to its size is all hole. Where the file system cannot
  // tell, everything from `from` to the end counts as data.
  virtual Result<std::optional<ByteRange>> NextData(int fd, uint64_t from);
  // Makes the file's data and metadata durable (fsync).
  virtual Status SyncFile(int fd);
  // Makes the file's data durable, and only the metadata needed to read it
  // back (fdatasync).
  virtual Status SyncData(int fd);
  // path made absolute against the working directory, without resolving
  // symlinks; an absolute path comes back unchanged.
  virtual Result<std::string> AbsolutePath(const std::string& path);

  // --- memory mapping ---
  // Like mmap(2); a failure carries the errno (EOPNOTSUPP for MAP_SYNC on a
  // non-DAX file).
  virtual Result<void*> Map(void* addr, size_t len, int prot, int flags, int fd,
                            uint64_t off) = 0;
  virtual Status Unmap(void* addr, size_t len) = 0;
  virtual Status Sync(void* addr, size_t len) = 0;  // msync(MS_SYNC)

  // --- sysfs, relative to the root (normally "/sys") ---
  virtual const std::string& sysfs_root() const = 0;
  // Reads a sysfs attribute with the trailing newline removed.
  virtual Result<std::string> ReadSysfs(const std::string& rel) = 0;
  virtual Status WriteSysfs(const std::string& rel,
                            const std::string& value) = 0;
  // Entry names in a sysfs directory, sorted.
  virtual Result<std::vector<std::string>> ListSysfs(
      const std::string& rel) = 0;
  // Resolves symlinks; the result is relative to the root.
  virtual Result<std::string> ResolveSysfs(const std::string& rel) = 0;

  // --- CPU ---
  virtual CpuFeatures Cpu() = 0;

  // --- media errors of a DAX source (fsdax file or devdax device) ---
  // Bad byte ranges, relative to the start of the file or device.
  virtual Result<std::vector<ByteRange>> BadBlocks(int fd) = 0;
  virtual Status ClearBadBlock(int fd, const ByteRange& range) = 0;

  // --- unix stream sockets (serving; the defaults fail with kUnsupported) --
  // Every descriptor is close-on-exec; Close(fd) releases it.
  // What is at path; probes a socket by connecting to it. A path longer
  // than a socket address holds is kInvalidArgument.
  virtual Result<SocketPath> ProbeUnixSocket(const std::string& path);
  // A listening socket at path, which must not exist (ProbeUnixSocket,
  // Remove a stale one first). Only the owner may connect: mode 0600.
  virtual Result<int> ListenUnix(const std::string& path, int backlog);
  // Waits for and accepts one connection (a connection the peer aborted
  // before it was accepted is skipped).
  virtual Result<int> Accept(int listen_fd);
  // Connects to the socket at path. kNotFound when nothing listens there
  // (no file, or a stale socket); a refusal for want of permission is an
  // I/O error carrying EACCES.
  virtual Result<int> ConnectUnix(const std::string& path);
  // Reads up to len bytes without waiting. If fds is not null, descriptors
  // that come with the bytes (SCM_RIGHTS, up to max_fds) are appended to
  // it, close-on-exec, and the caller owns them even when this fails.
  virtual Result<Received> Receive(int fd, void* buf, size_t len,
                                   std::vector<int>* fds, size_t max_fds);
  // Writes up to len bytes without waiting; 0 means it would block. A peer
  // that is gone is an error, never SIGPIPE.
  virtual Result<size_t> Send(int fd, const void* buf, size_t len);
  // Send, with descriptors (SCM_RIGHTS) attached to the first byte sent;
  // 0 means it would block and nothing (no descriptor either) went out.
  virtual Result<size_t> SendWithFds(int fd, const void* buf, size_t len,
                                     std::span<const int> fds);

  // --- events and waiting (the defaults fail with kUnsupported; those of
  // SignalEvent and ConsumeEvent do nothing) ---
  // A counter descriptor (eventfd): readable while signalled.
  virtual Result<int> MakeEvent();
  // Adds 1 to an event's counter. Async-signal-safe; never fails on an
  // event from MakeEvent.
  virtual void SignalEvent(int event_fd);
  // Resets a signalled event's counter. On an unsignalled event it returns
  // at once if the descriptor is non-blocking (MakeEvent's are) and waits
  // otherwise, so call it after Wait said the event is ready.
  virtual void ConsumeEvent(int event_fd);
  // Waits until at least one descriptor is ready, or timeout_ms passes
  // (-1: no limit; 0: just look); fills in ready/failed and returns how
  // many are ready (0 on timeout). A signal does not end the wait.
  virtual Result<int> Wait(std::span<WaitFd> fds, int timeout_ms);
  // A second descriptor for the same open file (dup).
  virtual Result<int> Duplicate(int fd);

  // --- shared memory (the defaults fail with kUnsupported) ---
  // An anonymous, zero-filled shared memory file of `size` bytes (memfd),
  // close-on-exec, sealed so that nobody can shrink or grow it: a mapping
  // of it can never fault on a truncated page. `name` shows in /proc.
  virtual Result<int> MakeSharedMemory(const std::string& name, uint64_t size);
  // True if fd's size is sealed (cannot shrink or grow), as the files of
  // MakeSharedMemory are; false for any other file.
  virtual Result<bool> SizeIsSealed(int fd);

  // --- this process (the defaults fail with kUnsupported; those of
  // Environment and IsTerminal say "unset" and false) ---
  virtual Result<uint32_t> UserId();
  // An environment variable's value; nullopt when it is unset.
  virtual std::optional<std::string> Environment(const std::string& name);
  // True when fd is a terminal (progress bars draw only there).
  virtual bool IsTerminal(int fd);
  // The first executable `name` in the directories of $PATH
  // (/usr/bin:/bin without one); kNotFound if there is none.
  virtual Result<std::string> FindProgram(const std::string& name);
  // Creates the directory (mode 0700) if it is missing; then it must be a
  // directory (not a symlink) owned by this user with no group or other
  // access. A failed mkdir carries its errno; a directory that is not
  // private is kInvalidArgument with sys_errno() 0.
  virtual Status MakePrivateDir(const std::string& path);
  // Replaces this process with the program argv[0] (a path), passing our
  // environment. Returns only when that fails.
  virtual Status Exec(const std::vector<std::string>& argv,
                      const ExecOptions& options);
  // Calls handler (which must be async-signal-safe) on SIGINT and SIGTERM.
  virtual Status OnStopSignals(void (*handler)(int));
  // Calls handler (async-signal-safe) on SIGUSR1: a request to print the
  // progress of a long operation once, as dd and qemu-img take it.
  virtual Status OnProgressSignal(void (*handler)(int));
};

// The real operating system, with sysfs at sysfs_root.
std::shared_ptr<Platform> MakeOsPlatform(std::string sysfs_root = "/sys");

// Process-wide default (MakeOsPlatform("/sys")), created on first use.
std::shared_ptr<Platform> DefaultPlatform();

}  // namespace daxstore
