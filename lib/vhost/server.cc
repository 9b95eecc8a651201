#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "daxstore/vhost_blk.h"
#include "vhost/channel.h"
#include "vhost/session.h"

namespace daxstore {
namespace {

Status BindSocket(const std::string& path, int* out) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(sa.sun_path))
    return InvalidArgument("socket path '" + path +
                           "' is empty or longer than 107 bytes");
  std::memcpy(sa.sun_path, path.data(), path.size());
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Busy(path +
                  " exists and is not a socket; remove it or pick "
                  "another --socket path");
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && connect(probe, reinterpret_cast<sockaddr*>(&sa),
                                      sizeof(sa)) == 0;
    if (probe >= 0) close(probe);
    if (live) return Busy("another server is listening on " + path);
    unlink(path.c_str());  // stale socket from an earlier run
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return FromErrno(errno, "creating a unix socket");
  // Only the owner may connect: the socket is created 0600 (umask is
  // process-wide, but it only ever narrows what others create meanwhile).
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  int err = errno;
  umask(old);
  if (rc != 0 || listen(fd, 1) != 0) {
    if (rc == 0) err = errno;
    close(fd);
    return FromErrno(err, "binding " + path);
  }
  *out = fd;
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<VhostBlkServer>> VhostBlkServer::Create(
    Image* image, const VhostBlkOptions& options) {
  if (options.queues == 0 || options.queues > vhost::kMaxQueues)
    return InvalidArgument("--queues must be 1 to 64");
  if (options.serial.size() > 20)
    return InvalidArgument("--serial is longer than 20 bytes");
  std::unique_ptr<VhostBlkServer> s(new VhostBlkServer());
  s->image_ = image;
  s->options_ = options;
  s->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->stop_fd_ < 0) return FromErrno(errno, "eventfd");
  DAXSTORE_RETURN_IF_ERROR(BindSocket(options.socket_path, &s->listen_fd_));
  return s;
}

VhostBlkServer::~VhostBlkServer() {
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(options_.socket_path.c_str());
  }
  if (stop_fd_ >= 0) close(stop_fd_);
}

void VhostBlkServer::Stop() {
  uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof(one));
}

Status VhostBlkServer::Run() {
  for (;;) {
    pollfd p{stop_fd_, POLLIN, 0};
    if (poll(&p, 1, 0) > 0) return Status::Ok();
    DAXSTORE_RETURN_IF_ERROR(ServeOne());
  }
}

Status VhostBlkServer::ServeOne() {
  pollfd p[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FromErrno(errno, "waiting for a front end");
    if (p[1].revents) return Status::Ok();
    int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return FromErrno(errno, "accepting a front end");
    }
    connections_.fetch_add(1);
    Status st = Serve(conn);
    close(conn);
    if (!st.ok())
      std::fprintf(stderr, "daxstore vhost: dropping the connection: %s\n",
                   st.message().c_str());
    return Status::Ok();
  }
}

Status VhostBlkServer::Serve(int conn) {
  vhost::BlkDevice dev;
  dev.image = image_;
  dev.read_only = options_.read_only;
  dev.serial = options_.serial;
  vhost::Session session(dev, options_.queues);
  std::vector<uint8_t> reply;
  for (;;) {
    vhost::Message msg;  // its fds are closed at the end of each round
    DAXSTORE_ASSIGN_OR_RETURN(
        vhost::ReadOutcome r,
        vhost::ReadMessage(conn, stop_fd_, options_.message_timeout_ms, &msg));
    if (r != vhost::ReadOutcome::kMessage) return Status::Ok();
    bool has_reply = false;
    Status st =
        session.Handle(msg.hdr, msg.payload, msg.fds.fds_, &reply, &has_reply);
    if (has_reply)
      DAXSTORE_RETURN_IF_ERROR(vhost::WriteReply(conn, msg.hdr.request, reply,
                                                 options_.message_timeout_ms));
    DAXSTORE_RETURN_IF_ERROR(st);
  }
}

}  // namespace daxstore
