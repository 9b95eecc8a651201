// Directory and lock half of OsPlatform, and the Platform defaults for
// implementations that do not offer them.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "platform/os_platform.h"

namespace daxstore {

Status Platform::MakeDirs(const std::string& path) {
  return Unsupported("this platform cannot create directories");
}
Result<std::vector<std::string>> Platform::ListDir(const std::string& path) {
  return Unsupported("this platform cannot list directories");
}
Status Platform::RemoveDir(const std::string& path) {
  return Unsupported("this platform cannot remove directories");
}
Result<int> Platform::LockFile(const std::string& path) {
  return Unsupported("this platform cannot lock files");
}
Status Platform::TryLock(int, bool) { return Status::Ok(); }
Result<std::vector<MountInfo>> Platform::Mounts() {
  return Unsupported("this platform cannot read the mount table");
}

Status OsPlatform::MakeDirs(const std::string& path) {
  if (path.empty()) return InvalidArgument("empty directory path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return FromErrno(errno, "cannot create directory " + part);
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return InvalidArgument(path + " exists and is not a directory");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> OsPlatform::ListDir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return FromErrno(errno, "cannot list " + path);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Status OsPlatform::RemoveDir(const std::string& path) {
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
    return FromErrno(errno, "cannot remove directory " + path);
  }
  return Status::Ok();
}

Result<int> OsPlatform::LockFile(const std::string& path) {
  DAXSTORE_ASSIGN_OR_RETURN(int fd, Open(path, O_RDWR | O_CREAT, 0644));
  int rc;
  do {
    rc = ::flock(fd, LOCK_EX);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int e = errno;
    Close(fd);
    return FromErrno(e, "cannot lock " + path);
  }
  return fd;
}

Status OsPlatform::TryLock(int fd, bool exclusive) {
  int rc;
  do {
    rc = ::flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return Status::Ok();
  if (errno == EWOULDBLOCK) return Busy("locked by another open file");
  return FromErrno(errno, "cannot lock");
}

}  // namespace daxstore
