// Unix-socket half of OsPlatform (what the servers listen and talk on),
// and the Platform defaults for implementations without sockets.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "platform/os_platform.h"

namespace daxstore {

Result<SocketPath> Platform::ProbeUnixSocket(const std::string&) {
  return Unsupported("this platform has no unix sockets");
}
Result<int> Platform::ListenUnix(const std::string&, int) {
  return Unsupported("this platform has no unix sockets");
}
Result<int> Platform::Accept(int) {
  return Unsupported("this platform has no unix sockets");
}
Result<int> Platform::ConnectUnix(const std::string&) {
  return Unsupported("this platform has no unix sockets");
}
Result<Received> Platform::Receive(int, void*, size_t, std::vector<int>*,
                                   size_t) {
  return Unsupported("this platform has no unix sockets");
}
Result<size_t> Platform::Send(int, const void*, size_t) {
  return Unsupported("this platform has no unix sockets");
}
Result<size_t> Platform::SendWithFds(int, const void*, size_t,
                                     std::span<const int>) {
  return Unsupported("this platform cannot pass descriptors");
}

namespace {

Status SocketAddress(const std::string& path, sockaddr_un* sa) {
  *sa = {};
  sa->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa->sun_path)) {
    return InvalidArgument("socket path '" + path +
                           "' is empty or longer than 107 bytes");
  }
  std::memcpy(sa->sun_path, path.data(), path.size());
  return Status::Ok();
}

}  // namespace

Result<SocketPath> OsPlatform::ProbeUnixSocket(const std::string& path) {
  sockaddr_un sa;
  DAXSTORE_RETURN_IF_ERROR(SocketAddress(path, &sa));
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return SocketPath::kAbsent;
    return FromErrno(errno, "cannot inspect " + path);
  }
  if (!S_ISSOCK(st.st_mode)) return SocketPath::kNotSocket;
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return FromErrno(errno, "creating a unix socket");
  bool live =
      ::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
  ::close(probe);
  return live ? SocketPath::kLive : SocketPath::kStale;
}

Result<int> OsPlatform::ListenUnix(const std::string& path, int backlog) {
  sockaddr_un sa;
  DAXSTORE_RETURN_IF_ERROR(SocketAddress(path, &sa));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno, "creating a unix socket");
  // Only the owner may connect: the socket is created 0600 (umask is
  // process-wide, but it only ever narrows what others create meanwhile).
  mode_t old = ::umask(0177);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  int err = errno;
  ::umask(old);
  if (rc == 0 && ::listen(fd, backlog) != 0) {
    err = errno;
    ::unlink(path.c_str());
    rc = -1;
  }
  if (rc != 0) {
    ::close(fd);
    return FromErrno(err, "binding " + path);
  }
  return fd;
}

Result<int> OsPlatform::Accept(int listen_fd) {
  for (;;) {
    int conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn >= 0) return conn;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    return FromErrno(errno, "accepting a connection");
  }
}

Result<int> OsPlatform::ConnectUnix(const std::string& path) {
  sockaddr_un sa;
  DAXSTORE_RETURN_IF_ERROR(SocketAddress(path, &sa));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno, "creating a unix socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
    return fd;
  }
  int err = errno;
  ::close(fd);
  if (err == ENOENT || err == ECONNREFUSED) {
    return NotFound("nothing listens on " + path, err);
  }
  return FromErrno(err, "connecting to " + path);
}

Result<Received> OsPlatform::Receive(int fd, void* buf, size_t len,
                                     std::vector<int>* fds, size_t max_fds) {
  iovec iov{buf, len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  // Room for max_fds descriptors, aligned for cmsghdr.
  std::vector<cmsghdr> control;
  if (fds != nullptr && max_fds > 0) {
    size_t space = CMSG_SPACE(sizeof(int) * max_fds);
    control.resize((space + sizeof(cmsghdr) - 1) / sizeof(cmsghdr));
    mh.msg_control = control.data();
    mh.msg_controllen = space;
  }
  ssize_t n;
  do {
    n = ::recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  Received r;
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return FromErrno(errno, "receiving from a socket");
    }
    r.would_block = true;
    return r;
  }
  if (mh.msg_controllen > 0) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr;
         c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; ++i) {
        int f;
        std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds->push_back(f);
      }
    }
  }
  r.bytes = static_cast<size_t>(n);
  r.fds_truncated = (mh.msg_flags & MSG_CTRUNC) != 0;
  return r;
}

Result<size_t> OsPlatform::Send(int fd, const void* buf, size_t len) {
  ssize_t n;
  do {
    n = ::send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK) return size_t{0};
  return FromErrno(errno, "sending on a socket");
}

Result<size_t> OsPlatform::SendWithFds(int fd, const void* buf, size_t len,
                                       std::span<const int> fds) {
  if (fds.empty()) return Send(fd, buf, len);
  if (len == 0) return InvalidArgument("descriptors need at least one byte");
  iovec iov{const_cast<void*>(buf), len};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<cmsghdr> control(
      (CMSG_SPACE(sizeof(int) * fds.size()) + sizeof(cmsghdr) - 1) /
      sizeof(cmsghdr));
  mh.msg_control = control.data();
  mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  ssize_t n;
  do {
    n = ::sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK) return size_t{0};
  return FromErrno(errno, "sending descriptors on a socket");
}

}  // namespace daxstore
