#include "vhost/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace daxstore::vhost {
namespace {

// Waits for fd to be ready for `events`; false on timeout or stop.
Result<bool> WaitFor(int fd, short events, int stop_fd, int timeout_ms) {
  pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
  for (;;) {
    int n = poll(p, stop_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FromErrno(errno, "poll on the vhost-user socket");
    if (n == 0) return InvalidArgument("front end timed out mid-message");
    if (stop_fd >= 0 && p[1].revents) return false;
    return true;
  }
}

}  // namespace

FdList::~FdList() {
  for (int fd : fds_) close(fd);
}

Result<ReadOutcome> ReadMessage(int fd, int stop_fd, int timeout_ms,
                                Message* msg) {
  msg->payload.clear();
  DAXSTORE_ASSIGN_OR_RETURN(bool ready, WaitFor(fd, POLLIN, stop_fd, -1));
  if (!ready) return ReadOutcome::kStopped;
  auto* hdr = reinterpret_cast<uint8_t*>(&msg->hdr);
  size_t got = 0;
  while (got < sizeof(MessageHeader)) {
    if (got > 0) {
      DAXSTORE_ASSIGN_OR_RETURN(ready,
                                WaitFor(fd, POLLIN, stop_fd, timeout_ms));
      if (!ready) return ReadOutcome::kStopped;
    }
    iovec iov{hdr + got, sizeof(MessageHeader) - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FromErrno(errno, "reading from the vhost-user socket");
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr;
         c = CMSG_NXTHDR(&mh, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; ++i) {
        int f;
        std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        msg->fds.fds_.push_back(f);
      }
    }
    if (mh.msg_flags & MSG_CTRUNC)
      return InvalidArgument("message carries more than 8 file descriptors");
    if (msg->fds.fds_.size() > kMaxFds)
      return InvalidArgument("message carries too many file descriptors");
    if (n == 0) {
      if (got == 0) return ReadOutcome::kClosed;
      return InvalidArgument("connection closed mid-message");
    }
    got += static_cast<size_t>(n);
  }
  if (msg->hdr.size > kMaxPayload)
    return InvalidArgument("message payload of " +
                           std::to_string(msg->hdr.size) + " bytes");
  msg->payload.resize(msg->hdr.size);
  got = 0;
  while (got < msg->payload.size()) {
    DAXSTORE_ASSIGN_OR_RETURN(ready, WaitFor(fd, POLLIN, stop_fd, timeout_ms));
    if (!ready) return ReadOutcome::kStopped;
    ssize_t n = recv(fd, msg->payload.data() + got, msg->payload.size() - got,
                     MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return FromErrno(errno, "reading from the vhost-user socket");
    if (n == 0) return InvalidArgument("connection closed mid-message");
    got += static_cast<size_t>(n);
  }
  return ReadOutcome::kMessage;
}

Status WriteReply(int fd, uint32_t request, const std::vector<uint8_t>& payload,
                  int timeout_ms) {
  std::vector<uint8_t> buf(sizeof(MessageHeader) + payload.size());
  MessageHeader h{request, kVersion | kReplyFlag,
                  static_cast<uint32_t>(payload.size())};
  std::memcpy(buf.data(), &h, sizeof(h));
  if (!payload.empty())
    std::memcpy(buf.data() + sizeof(h), payload.data(), payload.size());
  size_t sent = 0;
  while (sent < buf.size()) {
    DAXSTORE_ASSIGN_OR_RETURN(bool ready, WaitFor(fd, POLLOUT, -1, timeout_ms));
    (void)ready;
    ssize_t n = send(fd, buf.data() + sent, buf.size() - sent,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return FromErrno(errno, "writing to the vhost-user socket");
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace daxstore::vhost
