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
Result<std::optional<ByteRange>> Platform::NextData(int, uint64_t) {
  return Unsupported("this platform cannot find a file's data extents");
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

Result<std::optional<ByteRange>> OsPlatform::NextData(int fd, uint64_t from) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return FromErrno(errno, "fstat");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (from >= size) return std::optional<ByteRange>{};
  off_t start = ::lseek(fd, static_cast<off_t>(from), SEEK_DATA);
  if (start < 0 && errno == ENXIO) return std::optional<ByteRange>{};
  if (start < 0 && errno == EINVAL) {  // no SEEK_DATA here: all data
    return std::optional<ByteRange>(ByteRange{from, size - from});
  }
  if (start < 0) return FromErrno(errno, "lseek SEEK_DATA");
  off_t end = ::lseek(fd, start, SEEK_HOLE);
  if (end < 0) return FromErrno(errno, "lseek SEEK_HOLE");
  return std::optional<ByteRange>(ByteRange{
      static_cast<uint64_t>(start), static_cast<uint64_t>(end - start)});
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
