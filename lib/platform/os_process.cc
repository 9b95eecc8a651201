// Process half of OsPlatform (user, programs, exec, signals), and the
// Platform defaults for implementations without them.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>

#include "platform/os_platform.h"

namespace daxstore {

Result<uint32_t> Platform::UserId() {
  return Unsupported("this platform has no users");
}
Result<std::string> Platform::FindProgram(const std::string&) {
  return Unsupported("this platform cannot run programs");
}
Status Platform::MakePrivateDir(const std::string&) {
  return Unsupported("this platform cannot create directories");
}
Status Platform::Exec(const std::vector<std::string>&, const ExecOptions&) {
  return Unsupported("this platform cannot run programs");
}
Status Platform::OnStopSignals(void (*)(int)) {
  return Unsupported("this platform has no signals");
}
Status Platform::OnProgressSignal(void (*)(int)) {
  return Unsupported("this platform has no signals");
}
Status Platform::Rename(const std::string& from, const std::string&) {
  return Unsupported("this platform cannot rename " + from);
}

Result<uint32_t> OsPlatform::UserId() { return ::getuid(); }

Result<std::string> OsPlatform::FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return NotFound(name + " is not in any directory of PATH");
}

Status OsPlatform::MakePrivateDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return FromErrno(errno, "cannot create " + path);
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      st.st_uid != ::getuid() || (st.st_mode & 077) != 0) {
    return InvalidArgument(path +
                           " is not a private directory of yours (mode 0700)");
  }
  return Status::Ok();
}

Status OsPlatform::Exec(const std::vector<std::string>& argv,
                        const ExecOptions& options) {
  if (argv.empty()) return InvalidArgument("no program to run");
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  mode_t old = 0;
  if (options.umask >= 0) old = ::umask(static_cast<mode_t>(options.umask));
  ::execv(args[0], args.data());
  int err = errno;
  if (options.umask >= 0) ::umask(old);
  return FromErrno(err, "cannot run " + argv[0]);
}

Status OsPlatform::OnStopSignals(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM}) {
    if (::sigaction(sig, &sa, nullptr) != 0) {
      return FromErrno(errno, "cannot install a signal handler");
    }
  }
  return Status::Ok();
}

Status OsPlatform::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return FromErrno(errno, "cannot rename " + from + " to " + to);
  }
  return Status::Ok();
}

Status OsPlatform::OnProgressSignal(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // a copy's reads and writes go on
  if (::sigaction(SIGUSR1, &sa, nullptr) != 0) {
    return FromErrno(errno, "cannot install a SIGUSR1 handler");
  }
  return Status::Ok();
}

}  // namespace daxstore
