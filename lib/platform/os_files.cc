// File and mount-table half of OsPlatform.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <sstream>

#include "platform/os_platform.h"

namespace daxstore {

OsPlatform::OsPlatform(std::string sysfs_root) : root_(std::move(sysfs_root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

Result<int> OsPlatform::Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return FromErrno(errno, "cannot open " + path);
  return fd;
}

void OsPlatform::Close(int fd) {
  if (fd >= 0) ::close(fd);
}

FileInfo FileInfoOf(const struct ::stat& st) {
  FileInfo info;
  if (S_ISREG(st.st_mode)) {
    info.type = FileInfo::Type::kRegular;
  } else if (S_ISCHR(st.st_mode)) {
    info.type = FileInfo::Type::kCharDevice;
  } else if (S_ISBLK(st.st_mode)) {
    info.type = FileInfo::Type::kBlockDevice;
  } else if (S_ISDIR(st.st_mode)) {
    info.type = FileInfo::Type::kDirectory;
  }
  info.size = static_cast<uint64_t>(st.st_size);
  info.dev_major = major(st.st_rdev);
  info.dev_minor = minor(st.st_rdev);
  info.dev = static_cast<uint64_t>(st.st_dev);
  info.ino = static_cast<uint64_t>(st.st_ino);
  return info;
}

Result<FileInfo> OsPlatform::Stat(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return FromErrno(errno, "fstat");
  return FileInfoOf(st);
}

Status OsPlatform::Truncate(int fd, uint64_t size) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return FromErrno(errno, "cannot resize to " + std::to_string(size));
  }
  return Status::Ok();
}

Status OsPlatform::Allocate(int fd, uint64_t size) {
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (rc != 0) {
    return FromErrno(rc, "cannot allocate " + std::to_string(size) + " bytes");
  }
  return Status::Ok();
}

Result<size_t> OsPlatform::PRead(int fd, void* buf, size_t len, uint64_t off) {
  ssize_t n;
  do {
    n = ::pread(fd, buf, len, static_cast<off_t>(off));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return FromErrno(errno, "pread");
  return static_cast<size_t>(n);
}

Result<size_t> OsPlatform::PWrite(int fd, const void* buf, size_t len,
                                  uint64_t off) {
  ssize_t n;
  do {
    n = ::pwrite(fd, buf, len, static_cast<off_t>(off));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return FromErrno(errno, "pwrite");
  return static_cast<size_t>(n);
}

Result<std::string> OsPlatform::ReadFile(const std::string& path) {
  DAXSTORE_ASSIGN_OR_RETURN(int fd, Open(path, O_RDONLY, 0));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      Close(fd);
      return FromErrno(e, "cannot read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  Close(fd);
  return out;
}

Status OsPlatform::WriteFileAtomic(const std::string& path,
                                   const std::string& data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  DAXSTORE_ASSIGN_OR_RETURN(int fd,
                            Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  size_t done = 0;
  while (done < data.size()) {
    auto n = PWrite(fd, data.data() + done, data.size() - done, done);
    if (!n.ok()) {
      Close(fd);
      ::unlink(tmp.c_str());
      return n.status().WithContext(tmp);
    }
    done += *n;
  }
  // The new content is durable before the rename publishes it.
  if (::fsync(fd) != 0) {
    int e = errno;
    Close(fd);
    ::unlink(tmp.c_str());
    return FromErrno(e, "fsync " + tmp);
  }
  Close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return FromErrno(e, "rename to " + path);
  }
  return Status::Ok();
}

bool OsPlatform::Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

Status OsPlatform::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return FromErrno(errno, "cannot remove " + path);
  }
  return Status::Ok();
}

bool MountInfo::dax() const {
  std::stringstream ss(options);
  std::string opt;
  while (std::getline(ss, opt, ',')) {
    if (opt == "dax" || opt == "dax=always") return true;
  }
  return false;
}

// mountinfo escapes spaces and the like as \ooo.
static std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(
          static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<MountInfo> ParseMounts(const std::string& mountinfo) {
  std::vector<MountInfo> out;
  std::stringstream lines(mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    std::stringstream f(line);
    std::vector<std::string> fields;
    std::string w;
    while (f >> w) fields.push_back(w);
    size_t dash = 0;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 6 || dash + 3 > fields.size()) continue;
    MountInfo m;
    m.mount_point = Unescape(fields[4]);
    m.fs_type = fields[dash + 1];
    m.source = Unescape(fields[dash + 2]);
    m.options = fields[5] + "," + fields[dash + 3];
    out.push_back(std::move(m));
  }
  return out;
}

Result<MountInfo> FindMount(const std::string& mountinfo,
                            const std::string& path) {
  const MountInfo* best = nullptr;
  std::vector<MountInfo> mounts = ParseMounts(mountinfo);
  for (const MountInfo& m : mounts) {
    const std::string& mp = m.mount_point;
    bool prefix = path == mp || mp == "/" ||
                  (path.compare(0, mp.size(), mp) == 0 &&
                   path.size() > mp.size() && path[mp.size()] == '/');
    // Later lines shadow earlier mounts on the same point.
    if (prefix && (!best || mp.size() >= best->mount_point.size())) best = &m;
  }
  if (!best) return NotFound("no mount holds " + path);
  return *best;
}

Result<std::vector<MountInfo>> OsPlatform::Mounts() {
  DAXSTORE_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
  return ParseMounts(text);
}

Result<MountInfo> OsPlatform::MountOf(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    return FromErrno(errno, "cannot resolve " + path);
  }
  DAXSTORE_ASSIGN_OR_RETURN(std::string text, ReadFile("/proc/self/mountinfo"));
  return FindMount(text, resolved);
}

std::shared_ptr<Platform> MakeOsPlatform(std::string sysfs_root) {
  return std::make_shared<OsPlatform>(std::move(sysfs_root));
}

std::shared_ptr<Platform> DefaultPlatform() {
  static std::shared_ptr<Platform> p = MakeOsPlatform("/sys");
  return p;
}

}  // namespace daxstore
