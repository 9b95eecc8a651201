// Paths, file durability and the process environment for OsPlatform, and
// the Platform defaults for implementations without them.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "platform/os_platform.h"

namespace daxstore {

Result<FileInfo> Platform::StatPath(const std::string& path) {
  return Unsupported("this platform cannot look up " + path);
}
Status Platform::SyncFile(int) {
  return Unsupported("this platform cannot sync files");
}
Status Platform::SyncData(int) {
  return Unsupported("this platform cannot sync files");
}
Result<std::string> Platform::AbsolutePath(const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  return Unsupported("this platform has no working directory for " + path);
}
std::optional<std::string> Platform::Environment(const std::string&) {
  return std::nullopt;
}
bool Platform::IsTerminal(int) { return false; }

Result<FileInfo> OsPlatform::StatPath(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FromErrno(errno, path);
  return FileInfoOf(st);
}

Status OsPlatform::SyncFile(int fd) {
  if (::fsync(fd) != 0) return FromErrno(errno, "fsync");
  return Status::Ok();
}

Status OsPlatform::SyncData(int fd) {
  if (::fdatasync(fd) != 0) return FromErrno(errno, "fdatasync");
  return Status::Ok();
}

Result<std::string> OsPlatform::AbsolutePath(const std::string& path) {
  if (path.empty()) return InvalidArgument("an empty path has no location");
  if (path.front() == '/') return path;
  std::string cwd(256, '\0');
  while (::getcwd(cwd.data(), cwd.size()) == nullptr) {
    if (errno != ERANGE)
      return FromErrno(errno, "cannot read the working directory");
    cwd.resize(cwd.size() * 2);
  }
  cwd.resize(cwd.find('\0'));
  std::string rel = path;
  if (rel.rfind("./", 0) == 0) rel.erase(0, 2);
  return cwd == "/" ? "/" + rel : cwd + "/" + rel;
}

std::optional<std::string> OsPlatform::Environment(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

bool OsPlatform::IsTerminal(int fd) { return ::isatty(fd) == 1; }

}  // namespace daxstore
